"""The sandbox app's Redirect URLs and PKCE switch hold installs to what Slack holds them to.

One test (or more) per row of the rules table in src/cxslack/sandbox/redirects.py, plus how a
user sets them (`sandbox serve --redirect-url/--pkce`, the admin API) and what cxslack says
when Slack refuses its redirect URI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import httpx
import pytest

from cxslack.oauth.redirect import DEFAULT_REDIRECT_URI
from cxslack.sandbox import CLIENT_ID, CLIENT_SECRET, SlackSandbox
from cxslack.sandbox.redirects import registration_problem

from .conftest import Cli, add_integration
from .oauth_browser import press, sandbox_env, start

HTTP = httpx.Client(timeout=10)
OTHER = "https://localhost:8443/slack/oauth/callback"


def admin(sb: SlackSandbox, path: str, **body: Any) -> httpx.Response:
    return HTTP.post(f"{sb.url}/_sandbox/{path}", json=body)


def authorize(sb: SlackSandbox, **params: str) -> httpx.Response:
    query = {"client_id": CLIENT_ID, "scope": "chat:write", "state": "st", **params}
    return HTTP.get(sb.authorize_url, params=query)


def allow(sb: SlackSandbox, **params: str) -> httpx.Response:
    """Press Allow on the authorize page (the form's POST) without loading it first."""
    form = {"client_id": CLIENT_ID, "scope": "chat:write", "state": "st", "decision": "allow", **params}
    return HTTP.post(sb.authorize_url, data=form)


def exchange(sb: SlackSandbox, code: str, **params: str) -> dict[str, Any]:
    data = {"code": code, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **params}
    return dict(HTTP.post(sb.api_url + "oauth.v2.access", data=data).json())


def code_of(answer: httpx.Response) -> str:
    assert answer.status_code == 302, answer.text
    return str(httpx.URL(answer.headers["location"]).params["code"])


# -- the settings: defaults, admin API, serve flags ------------------------------------------
def test_the_default_app_has_cxslacks_default_redirect_registered(sandbox: SlackSandbox) -> None:
    got = HTTP.get(f"{sandbox.url}/_sandbox/redirect-urls").json()
    assert got == {"ok": True, "redirect_urls": [DEFAULT_REDIRECT_URI], "pkce_enabled": False}
    assert HTTP.get(f"{sandbox.url}/_sandbox/settings").json()["settings"]["redirect_urls"] == [
        DEFAULT_REDIRECT_URI
    ]


def test_admin_api_adds_and_replaces_redirect_urls_and_reset_restores_them() -> None:
    with SlackSandbox(redirect_urls=[OTHER]) as sb:
        added = admin(sb, "redirect-urls", add=DEFAULT_REDIRECT_URI).json()
        assert added["redirect_urls"] == [OTHER, DEFAULT_REDIRECT_URI]
        assert admin(sb, "redirect-urls", add=OTHER).json()["redirect_urls"] == [OTHER, DEFAULT_REDIRECT_URI]
        assert admin(sb, "redirect-urls", redirect_urls=[]).json()["redirect_urls"] == []
        admin(sb, "reset")
        assert HTTP.get(f"{sb.url}/_sandbox/redirect-urls").json()["redirect_urls"] == [
            OTHER
        ]  # the serve flags'
        assert admin(sb, "redirect-urls", bogus=1).status_code == 400


@pytest.mark.parametrize(
    ("url", "pkce", "refused"),
    [
        # an app without PKCE (a confidential client): https only (slack-api.md "Redirect URL rules")
        ("http://127.0.0.1:8976/cb", False, True),
        ("http://localhost:8976/cb", False, True),
        ("myapp://auth", False, True),
        ("https://localhost:8976/cb", False, False),
        ("https://example.com/slack/oauth", False, False),
        # a PKCE app (a public client): http on loopback and custom schemes too (using-pkce)
        ("http://127.0.0.1:8976/cb", True, False),
        ("http://localhost:8976/cb", True, False),
        ("http://[::1]:8976/cb", True, False),
        ("myapp://auth", True, False),
        ("http://example.com/cb", True, True),
        # never a URL with a fragment, a relative one, or not a URL
        ("https://localhost:8976/cb#x", False, True),
        ("/slack/oauth/callback", True, True),
        ("https://localhost:99999/cb", False, True),
        ("", False, True),
    ],
)
def test_registration_refuses_what_slacks_settings_refuse(
    sandbox: SlackSandbox, url: str, pkce: bool, refused: bool
) -> None:
    assert (registration_problem(url, pkce=pkce) is not None) == refused
    answer = admin(sandbox, "redirect-urls", redirect_urls=[url], pkce_enabled=pkce)
    assert answer.status_code == (400 if refused else 200), answer.text
    if refused:
        assert answer.json()["error"] == "invalid_redirect_url"
        assert HTTP.get(f"{sandbox.url}/_sandbox/redirect-urls").json()["redirect_urls"] == [
            DEFAULT_REDIRECT_URI
        ]


def test_settings_cannot_sneak_http_into_an_app_without_pkce(sandbox: SlackSandbox) -> None:
    assert admin(sandbox, "settings", redirect_urls=["http://127.0.0.1:1/cb"]).status_code == 400
    assert admin(sandbox, "redirect-urls", add="http://127.0.0.1:1/cb", pkce_enabled=True).status_code == 200
    # turning PKCE off would leave an http redirect a confidential app cannot have
    turned_off = admin(sandbox, "settings", pkce_enabled=False)
    assert turned_off.status_code == 400 and turned_off.json()["error"] == "invalid_redirect_url"
    with pytest.raises(ValueError, match="https"):
        SlackSandbox(redirect_urls=["http://127.0.0.1:1/cb"])
    with SlackSandbox() as other, pytest.raises(ValueError, match="https"):
        other.register_redirect_url("http://localhost:2/cb")


def test_serve_registers_the_flags_redirect_urls_and_refuses_http_without_pkce(cli: Cli) -> None:
    refused = cli("sandbox", "serve", "--redirect-url", "http://127.0.0.1:8976/cb")
    assert refused.exit_code == 2
    assert "https" in refused.stderr and "--pkce" in refused.stderr
    proc = subprocess.Popen([sys.executable, "-m", "cxslack", "sandbox", "serve", "--pkce", "--redirect-url",
                             "http://127.0.0.1:8976/cb", "--redirect-url", OTHER],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})  # fmt: skip
    try:
        assert proc.stderr is not None
        banner, url = "", ""
        for line in proc.stderr:
            banner += line
            if line.startswith("Slack sandbox listening on "):
                url = line.split()[4]
            if line.startswith("Press Ctrl-C"):
                break
        assert (
            f"Redirect URLs registered in the app (PKCE enabled): http://127.0.0.1:8976/cb, {OTHER}" in banner
        )
        assert (
            "--redirect-uri http://127.0.0.1:8976/cb" in banner
        )  # the install line names the registered one
        got = HTTP.get(f"{url}/_sandbox/redirect-urls").json()
        assert got["redirect_urls"] == ["http://127.0.0.1:8976/cb", OTHER] and got["pkce_enabled"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_serve_registers_the_configured_redirect_uri_by_default(cli: Cli) -> None:
    cli.ok("app", "configure", "--client-id", "123.456", "--redirect-uri", OTHER)
    proc = subprocess.Popen([sys.executable, "-m", "cxslack", "sandbox", "serve"], stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "NO_COLOR": "1"})  # fmt: skip
    try:
        assert proc.stderr is not None
        banner = ""
        for line in proc.stderr:
            banner += line
            if line.startswith("Press Ctrl-C"):
                break
        assert f"Redirect URLs registered in the app: {DEFAULT_REDIRECT_URI}, {OTHER}" in banner
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


# -- authorize: exact match, never a redirect to an unregistered URL ---------------------------
@pytest.mark.parametrize(
    "sent",
    [
        "https://localhost:8977/slack/oauth/callback",  # another port
        "https://localhost:8976/slack/oauth/callback/",  # another path
        "https://localhost:8976/slack/oauth",  # a parent path
        "https://127.0.0.1:8976/slack/oauth/callback",  # another host spelling
        "http://localhost:8976/slack/oauth/callback",  # another scheme
        "https://localhost:8976/slack/oauth/callback?x=1",  # another query
        "https://attacker.example/slack/oauth/callback",
    ],
)
def test_authorize_sends_no_code_to_an_unregistered_redirect(sandbox: SlackSandbox, sent: str) -> None:
    page = authorize(sandbox, redirect_uri=sent)
    assert page.status_code == 400 and "location" not in page.headers
    assert "redirect_uri did not match any configured URIs" in page.text and "decision" not in page.text
    pressed = allow(sandbox, redirect_uri=sent)  # the form posted straight, without the page
    assert pressed.status_code == 400 and "location" not in pressed.headers
    admin(sandbox, "settings", auto_approve=True)  # not even when Allow is pressed for everyone
    assert authorize(sandbox, redirect_uri=sent).status_code == 400
    assert sandbox.workspace.codes == {}
    assert authorize(sandbox, redirect_uri=DEFAULT_REDIRECT_URI).status_code == 302  # the registered one


def test_authorize_without_redirect_uri_uses_the_configured_one(sandbox: SlackSandbox) -> None:
    admin(sandbox, "redirect-urls", redirect_urls=[OTHER, DEFAULT_REDIRECT_URI])
    answer = allow(sandbox)
    assert answer.headers["location"].startswith(OTHER + "?code=")
    assert exchange(sandbox, code_of(answer))["ok"] is True  # none sent to authorize: none needed here
    answer = allow(sandbox)
    assert exchange(sandbox, code_of(answer), redirect_uri=OTHER)["ok"] is True  # or the one it went to
    answer = allow(sandbox)
    assert (
        exchange(sandbox, code_of(answer), redirect_uri=DEFAULT_REDIRECT_URI)["error"] == "bad_redirect_uri"
    )
    admin(sandbox, "redirect-urls", redirect_urls=[])
    page = authorize(sandbox)
    assert page.status_code == 400 and "no Redirect URL" in page.text


# -- the exchange --------------------------------------------------------------------------------
def test_exchange_needs_the_redirect_uri_authorize_was_sent(sandbox: SlackSandbox) -> None:
    admin(sandbox, "redirect-urls", add=OTHER)
    for redirect, error in ((OTHER, "bad_redirect_uri"), (None, "bad_redirect_uri"),
                            (DEFAULT_REDIRECT_URI, None)):  # fmt: skip
        code = code_of(allow(sandbox, redirect_uri=DEFAULT_REDIRECT_URI))
        answer = exchange(sandbox, code, **({"redirect_uri": redirect} if redirect else {}))
        assert answer.get("error") == error, (redirect, answer)


def test_pkce_arguments_to_an_app_without_pkce_are_pkce_not_allowed(sandbox: SlackSandbox) -> None:
    code = code_of(allow(sandbox, redirect_uri=DEFAULT_REDIRECT_URI, scope="", user_scope="admin",
                         code_challenge="c" * 43, code_challenge_method="S256"))  # fmt: skip
    for secret in ({}, {"client_secret": CLIENT_SECRET}):
        data = {
            "code": code,
            "client_id": CLIENT_ID,
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "code_verifier": "v" * 43,
        }
        answer = HTTP.post(sandbox.api_url + "oauth.v2.access", data={**data, **secret}).json()
        assert answer == {"ok": False, "error": "pkce_not_allowed"}


def test_a_pkce_app_cannot_give_a_localhost_redirect_bot_scopes(sandbox: SlackSandbox) -> None:
    """using-pkce: "Desktop redirects are not allowed to request bot scopes" — a PKCE-enabled app's
    localhost redirect, even when this request carries no PKCE arguments."""
    admin(sandbox, "redirect-urls", add="http://127.0.0.1:8976/cb", pkce_enabled=True)
    for redirect in ("http://127.0.0.1:8976/cb", DEFAULT_REDIRECT_URI):
        page = authorize(sandbox, redirect_uri=redirect)
        assert page.status_code == 400 and "cannot request bot scopes" in page.text
        assert authorize(sandbox, redirect_uri=redirect, scope="", user_scope="admin").status_code == 200


# -- what cxslack says when Slack refuses its redirect ---------------------------------------------
def test_cxslack_says_to_register_the_redirect_when_slack_refuses_it(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    flow = start(["integrations", "authorize", "Payments", "--redirect-uri", "https://localhost:0/slack/oauth/callback",
                  "--no-browser", "--timeout", "2"], sandbox_env(sandbox))  # fmt: skip
    redirect_uri = httpx.URL(flow.url).params["redirect_uri"]
    with pytest.raises(httpx.HTTPStatusError):  # Slack's error page: the browser never comes back
        press(flow.url, register=False)
    code, _, err = flow.finish()
    assert code == 4
    assert f"register {redirect_uri} exactly" in " ".join(err.split())
    assert "--redirect-uri" in err and "OAuth" in err
