"""Which host names mean this machine: one answer for OAuth redirects, `listen` and the sandbox."""

from __future__ import annotations

import ipaddress
import re

# The loopback names a redirect URI may use, and the address to bind for each. A certificate's
# SANs and Slack's exact redirect matching need a name, so these three, not every 127/8 address.
LOOPBACK_BIND = {"localhost": "127.0.0.1", "127.0.0.1": "127.0.0.1", "::1": "::1"}


def is_loopback(host: str) -> bool:
    """`localhost`, or any loopback address (127.0.0.0/8, ::1; IPv6 in brackets or not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def is_valid_host(host: str) -> bool:
    """An IP literal (IPv6 with or without brackets) or a DNS name (RFC 1123 labels, ≤ 253)."""
    try:
        ipaddress.ip_address(host.strip("[]") if host.startswith("[") else host)
        return True
    except ValueError:
        pass
    name = host.removesuffix(".")
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))
