"""The pages the browser shows when Slack sends it back to the loopback callback.

Small, self-contained (no external resources) and escaped: parts of a failure page come from the
callback's query string, which anyone can make a browser request.
"""

from __future__ import annotations

import html

from cxslack.errors import CxError

# The callback URL carries the authorization code: load nothing, run nothing, leak no Referer.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
)

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#1d1c1d}"
    "h1{font-size:1.4em}"
)
_BACK_TO_TERMINAL = "Return to the terminal for what to do next."
_FAILURE_TITLES = {
    "authorization_declined": "Slack was not connected",
    "state_mismatch": "This link does not belong to the current sign-in",
}


def _page(title: str, *paragraphs: str) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} · cxslack</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def success_page() -> str:
    return _page(
        "Slack is connected", "Slack is connected. You can close this tab and return to the terminal."
    )


def still_working_page() -> str:
    return _page(
        "Still finishing", "cxslack is still completing the installation with Slack.", _BACK_TO_TERMINAL
    )


def error_page(error: CxError) -> str:
    """The page for a callback that ended the flow with `error` (declined, forged, Slack error)."""
    title = _FAILURE_TITLES.get(error.code, "Slack could not be connected")
    return _page(title, error.message, _BACK_TO_TERMINAL)


def not_found_page() -> str:
    return _page("Not found", "This address is not the Slack sign-in callback.")


def already_used_page() -> str:
    return _page(
        "This sign-in link was already used",
        "cxslack accepts one callback per sign-in, and this one has been used or has expired.",
        _BACK_TO_TERMINAL,
    )
