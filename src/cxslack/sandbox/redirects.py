"""The Slack app's Redirect URLs (OAuth & Permissions → Redirect URLs) and what Slack makes of them.

A real Slack app has a list of registered Redirect URLs and a PKCE switch in its settings; the
authorize page and `oauth.v2.access` hold every install to them. The sandbox's app has the same
settings (`AppSettings.redirect_urls`, `AppSettings.pkce_enabled`), set by `cxslack sandbox serve
--redirect-url URL --pkce`, `POST /_sandbox/redirect-urls` or `POST /_sandbox/settings`.

The rules, each with where Slack says so (tests/test_sandbox_redirects.py checks every row):

| rule | where | source |
|---|---|---|
| a redirect URL is an absolute URL without a #fragment | registration | RFC 6749 §3.1.2 (Slack's settings take URLs) |
| plain `http://` is refused for an ordinary (confidential) app: `https://` only | registration | shared/reference/slack-api.md "Redirect URL rules" |
| a PKCE-enabled app (a public client) may also register `http://localhost`/`127.0.0.1`/`[::1]` redirects and custom URI schemes (`myapp://auth`), not plain http elsewhere | registration | docs.slack.dev/authentication/using-pkce; docs.slack.dev/changelog/2026/03/30/pkce |
| `redirect_uri` at authorize must equal a registered URL exactly (scheme, host, port, path, query) | authorize | slack-api.md "The redirect URL registered in the Slack app must match exactly, port and path included"; docs.slack.dev/authentication/installing-with-oauth |
| an unregistered `redirect_uri` gets Slack's error page, never a redirect (a code is never sent to a URL the app did not register) | authorize | docs.slack.dev/authentication/installing-with-oauth; RFC 6749 §4.1.2.1 |
| `redirect_uri` left out at authorize: Slack sends the browser to the app's (first) configured Redirect URL; with none configured it is an error | authorize | docs.slack.dev/authentication/installing-with-oauth ("redirect_uri … optional"); slackapi/bolt-js#1115 |
| `oauth.v2.access` with a `redirect_uri` other than the one sent to authorize: `bad_redirect_uri` | exchange | docs.slack.dev/reference/methods/oauth.v2.access ("must match the originally submitted URI (if one was sent)"); slack-api.md |
| `code_verifier` (PKCE) sent to an app without PKCE enabled: `pkce_not_allowed` | exchange | docs.slack.dev/reference/methods/oauth.v2.access (errors); slack-api.md |
| a PKCE flow to a desktop (localhost or custom-scheme) redirect cannot request bot scopes | authorize | docs.slack.dev/authentication/using-pkce |
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cxslack.hosts import LOOPBACK_BIND
from cxslack.oauth.redirect import DEFAULT_REDIRECT_URI

# What a new sandbox app has registered: cxslack's own documented default redirect, so
# `cxslack integrations authorize NAME` works against `cxslack sandbox serve` out of the box.
DEFAULT_REDIRECT_URLS = (DEFAULT_REDIRECT_URI,)
UNREGISTERED = "redirect_uri did not match any configured URIs."


def registration_problem(url: object, *, pkce: bool) -> str | None:
    """Why Slack's app settings would refuse `url` as a Redirect URL, if they would."""
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        return f"{url!r} is not a URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return f"{url} is not a valid URL (bad host or port)"
    if "#" in url:
        return f"{url}: a redirect URL cannot have a #fragment"
    if not parts.scheme:
        return f"{url} is not an absolute URL"
    if parts.scheme == "https":
        return None if parts.hostname else f"{url} has no host"
    if not pkce:
        return (
            f"{url}: Slack's app settings accept only https:// redirect URLs for an app without PKCE "
            "(a confidential client); use https://localhost:PORT/PATH, or enable PKCE"
        )
    if parts.scheme == "http":
        if (parts.hostname or "") not in LOOPBACK_BIND:
            return f"{url}: plain http is only for localhost, 127.0.0.1 or [::1] redirects, even with PKCE"
        return None
    return None  # a custom URI scheme (myapp://auth): PKCE apps may use one


def is_desktop_redirect(uri: str) -> bool:
    """A localhost or custom-scheme redirect: what Slack calls a desktop redirect."""
    parts = urlsplit(uri)
    return parts.scheme not in ("http", "https") or (parts.hostname or "") in LOOPBACK_BIND


def registration_error(urls: object, *, pkce: bool) -> str | None:
    """The first problem with a whole list of Redirect URLs, if any."""
    if not isinstance(urls, list):
        return "redirect_urls must be a list of URLs"
    for url in urls:
        problem = registration_problem(url, pkce=pkce)
        if problem:
            return problem
    return None


def resolve(sent: str | None, registered: list[str]) -> tuple[str | None, str | None]:
    """(where the browser goes, why it cannot go anywhere) for the `redirect_uri` sent to authorize."""
    if not sent:
        if not registered:
            return None, "No redirect_uri was sent and the app has no Redirect URL configured."
        return registered[0], None
    if sent not in registered:  # exact, character for character: port and path included
        return None, f"{UNREGISTERED} Passed URI: {sent}"
    return sent, None
