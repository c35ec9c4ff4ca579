"""Which redirect URIs cxslack can listen on, and where to bind for each.

Slack sends the browser back to the redirect URI, so it must point at a listener on this
machine's loopback interface (RFC 8252 §7.3) and nowhere else. Slack only accepts plain http
redirects for PKCE (public) apps, so the default is https on localhost with a local certificate.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from cxslack.errors import UsageError
from cxslack.hosts import LOOPBACK_BIND

# A fixed port, not an ephemeral one: Slack compares the redirect URL with the ones registered in
# the app's settings exactly, port included, so the port has to be known when the app is set up.
DEFAULT_CALLBACK_PORT = 8976
DEFAULT_CALLBACK_PATH = "/slack/oauth/callback"
DEFAULT_REDIRECT_URI = f"https://localhost:{DEFAULT_CALLBACK_PORT}{DEFAULT_CALLBACK_PATH}"

# host as written in the URI → the IP literal to bind; never a name lookup, never a wildcard
_HINT = (
    f"Use https://localhost:PORT/PATH (the default is {DEFAULT_REDIRECT_URI}), or http://127.0.0.1:PORT/PATH "
    "with --pkce for PKCE apps, and register the same URL under Redirect URLs in the Slack app's OAuth settings."
)


@dataclass(frozen=True)
class RedirectTarget:
    """A validated redirect URI and the loopback socket that receives it."""

    uri: str  # exactly as given: Slack compares it character for character
    scheme: str  # "https" (TLS listener) or "http"
    host: str  # as written, lower-cased, without brackets: "localhost", "127.0.0.1", "::1"
    bind_ip: str
    port: int  # 0 only in tests: any free port
    path: str

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def bind_address(self) -> str:
        """`127.0.0.1:8976` or `[::1]:8976`, for messages."""
        ip = f"[{self.bind_ip}]" if ":" in self.bind_ip else self.bind_ip
        return f"{ip}:{self.port}"

    def with_port(self, port: int) -> RedirectTarget:
        """The same target on the port actually bound (when the URI asked for port 0)."""
        if port == self.port:
            return self
        parts = urlsplit(self.uri)
        host = parts.netloc.rsplit(":", 1)[0]  # keeps the brackets of an IPv6 literal
        uri = urlunsplit(parts._replace(netloc=f"{host}:{port}"))
        return dataclasses.replace(self, uri=uri, port=port)


def parse_redirect_uri(uri: str, *, pkce: bool) -> RedirectTarget:
    """Validate a `--redirect-uri` value; anything cxslack cannot listen on is a usage error."""

    def invalid(rule: str) -> UsageError:
        return UsageError("invalid_redirect_uri", f"invalid redirect URI {_shown(uri)}: {rule}", _HINT)

    if re.search(r"[\s\x00-\x1f\x7f]", uri):
        raise invalid("it cannot contain spaces or control characters")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise invalid("it is not a valid URL (bad host or port)") from None
    scheme, host = parts.scheme, parts.hostname or ""
    if scheme not in ("https", "http"):
        raise invalid("the scheme must be https (or http for PKCE apps)")
    if "@" in parts.netloc:
        raise invalid("it cannot carry a user name or password")
    if "#" in uri:
        raise invalid("it cannot have a #fragment")
    if host not in LOOPBACK_BIND:
        raise invalid("the host must be localhost, 127.0.0.1 or [::1]: cxslack listens on this machine only")
    if scheme == "http" and not pkce:
        # Slack's app settings refuse a plain http Redirect URL unless the app has PKCE turned on
        # (a public client), so the browser could never come back to it (reference: slack-api.md,
        # "Redirect URL rules"; docs.slack.dev/authentication/using-pkce).
        raise invalid("Slack accepts a plain http redirect URL only for PKCE apps (--pkce); use https")
    if port is None:
        raise invalid("the port must be explicit: Slack matches the registered redirect URL exactly")
    return RedirectTarget(
        uri=uri, scheme=scheme, host=host, bind_ip=LOOPBACK_BIND[host], port=port, path=parts.path or "/"
    )


def _shown(uri: str) -> str:
    """The URI for an error message, without any password it might carry."""
    return re.sub(r"//[^/?#]*@", "//****@", uri)
