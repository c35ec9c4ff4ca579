"""Keep secrets out of every output: Slack tokens, webhook URLs, client secrets, API keys.

Known secret values (whatever cxslack read from credentials.toml or the environment) are
registered at runtime and replaced wherever they appear; token-shaped strings are masked by
pattern even when nobody registered them.
"""

from __future__ import annotations

import re
import threading

_PATTERNS = (
    # xoxb-…, xoxp-…, xoxe.xoxb-…, xoxe-…, xapp-…: keep the prefix so people can tell them apart
    (re.compile(r"\b(xox[abpeorsc](?:\.xox[abp])?|xapp)-[A-Za-z0-9-]+"), r"\1-****"),
    (re.compile(r"https://hooks\.slack\.com/[^\s\"'<>]+"), "https://hooks.slack.com/****"),
)
# Credentials inside a URL (`https://user:password@proxy/…`, e.g. in CXSLACK_SLACK_API_URL): the
# user part too, since `https://TOKEN@host` is a common way to pass a token.
_URL_CREDENTIALS = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@\"'<>]+@")
_known: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value so any later output containing it is masked."""
    if value and len(value) >= 6:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, mask(value))
    if "xox" in text or "xapp-" in text or "hooks.slack.com" in text:  # the patterns' literal prefixes
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
    if "@" in text and "://" in text:
        text = _URL_CREDENTIALS.sub(r"\1****@", text)
    return text


def mask(value: str) -> str:
    """`xoxb-123-abc` → `xoxb-****`; anything else → `****`."""
    match = re.match(r"(xox[abpeorsc]|xapp)-", value)
    if match:
        return f"{match.group(1)}-****"
    return "****"
