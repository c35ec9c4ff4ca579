"""The Slack sandbox over real loopback sockets: httpx plays the browser, slack_sdk plays cxslack."""

from __future__ import annotations

import base64
import hashlib
import html
import http.client
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import typer
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from typer.testing import CliRunner

from cxslack.errors import EXIT_USAGE, UsageError
from cxslack.sandbox import CLIENT_ID, CLIENT_SECRET, SlackSandbox
from cxslack.sandbox.server import DEFAULT_BOT_SCOPES
from cxslack.sandbox.traffic import IN_FLIGHT

REDIRECT = "https://localhost:53682/slack/callback"  # registered by the `sandbox` fixture below
HTTP = httpx.Client(timeout=10)  # one client: building one per call costs more than the call
PRODUCT_SCOPES = (
    "chat:write,chat:write.customize,chat:write.public,users:read,users:read.email,links:read,links:write"
)


# -- helpers ------------------------------------------------------------------------------
@pytest.fixture
def sandbox(sandbox: SlackSandbox) -> SlackSandbox:
    """The shared fixture's sandbox, with this module's callback URL in its app's Redirect URLs."""
    sandbox.register_redirect_url(REDIRECT)
    return sandbox


def admin(sb: SlackSandbox, path: str, **body: Any) -> dict[str, Any]:
    response = HTTP.post(f"{sb.url}/_sandbox/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def api(sb: SlackSandbox, method: str, token: str | None = None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return HTTP.post(sb.api_url + method, data=params, headers=headers)


def web(sb: SlackSandbox, token: str | None = None) -> WebClient:
    # no retry handlers: a test sees exactly what the sandbox answered
    return WebClient(token=token, base_url=sb.api_url, retry_handlers=[])


def slack_error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as info:
        call()
    return info.value.response.data


def bot_token(sb: SlackSandbox, *scopes: str) -> str:
    return sb.issue_token(scopes=list(scopes) if scopes else None)["access_token"]


def lookup_token(sb: SlackSandbox) -> str:
    """The product's bot scopes plus cxslack's own channels:read and groups:read."""
    return bot_token(sb, *DEFAULT_BOT_SCOPES, "channels:read", "groups:read")


def admin_token(sb: SlackSandbox) -> str:
    return sb.issue_token(scopes=["chat:write"], user_scopes=["admin"])["authed_user"]["access_token"]


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def click(sb: SlackSandbox, decision: str = "allow", **query: str) -> dict[str, str]:
    """Open the authorize page, submit its form like a browser, return the callback's query."""
    params = {
        "client_id": CLIENT_ID,
        "scope": PRODUCT_SCOPES,
        "redirect_uri": REDIRECT,
        "state": "st-1",
        **query,
    }
    page = HTTP.get(sb.authorize_url, params=params)
    assert page.status_code == 200, page.text
    action = re.search(r"<form method=post action=(\S+)>", page.text)
    assert action is not None
    form = {
        name: html.unescape(value) for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)
    }
    assert f"<button type=submit name=decision value={decision} id={decision}>" in page.text
    answer = HTTP.post(sb.url + action.group(1), data={**form, "decision": decision})
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def exchange(sb: SlackSandbox, code: str, **params: str) -> httpx.Response:
    return HTTP.post(
        sb.api_url + "oauth.v2.access",
        data={"code": code, "redirect_uri": REDIRECT, "client_id": CLIENT_ID, **params},
    )


# -- OAuth --------------------------------------------------------------------------------
def test_install_allow_then_exchange_gives_bot_and_user_tokens(sandbox: SlackSandbox) -> None:
    callback = click(sandbox, user_scope="admin")
    assert callback["state"] == "st-1"

    installed = web(sandbox).oauth_v2_access(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=callback["code"], redirect_uri=REDIRECT
    )  # slack_sdk: HTTP Basic credentials and a multipart body
    assert installed["access_token"].startswith("xoxb-")
    assert installed["token_type"] == "bot"
    assert installed["scope"] == PRODUCT_SCOPES
    assert installed["team"] == {"id": "T0SANDBOX", "name": "Sandbox Workspace"}
    assert installed["enterprise"] is None and installed["is_enterprise_install"] is False
    assert installed["bot_user_id"] and installed["app_id"]
    user = installed["authed_user"]
    assert user["token_type"] == "user" and user["scope"] == "admin"
    assert user["access_token"].startswith("xoxp-")
    assert "expires_in" not in installed and "refresh_token" not in installed

    me = web(sandbox, installed["access_token"]).auth_test()
    assert me["bot_id"] and me["user_id"] == installed["bot_user_id"] and me["team_id"] == "T0SANDBOX"


def test_deny_redirects_with_access_denied(sandbox: SlackSandbox) -> None:
    assert click(sandbox, decision="deny", state="s-9") == {"error": "access_denied", "state": "s-9"}


def test_code_is_single_use(sandbox: SlackSandbox) -> None:
    code = click(sandbox)["code"]
    assert exchange(sandbox, code, client_secret=CLIENT_SECRET).json()["ok"] is True
    assert exchange(sandbox, code, client_secret=CLIENT_SECRET).json()["error"] == "code_already_used"


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"redirect_uri": "https://localhost:53682/other"}, "bad_redirect_uri"),
        ({"client_secret": "wrong"}, "bad_client_secret"),
        ({"client_id": "someone-else"}, "invalid_client_id"),
        ({"code": "1.nope"}, "invalid_code"),
        ({"grant_type": "password"}, "invalid_grant_type"),
    ],
)
def test_exchange_errors(sandbox: SlackSandbox, override: dict[str, str], error: str) -> None:
    code = click(sandbox)["code"]
    params = {"code": code, "client_secret": CLIENT_SECRET, **override}
    answer = exchange(sandbox, **params)
    assert answer.status_code == 200
    assert answer.json() == {"ok": False, "error": error}


def test_code_expires_after_ten_minutes(sandbox: SlackSandbox) -> None:
    code = click(sandbox)["code"]
    admin(sandbox, "clock", advance=601)
    assert exchange(sandbox, code, client_secret=CLIENT_SECRET).json()["error"] == "invalid_code"


def test_pkce_public_client(sandbox: SlackSandbox) -> None:
    """PKCE to a localhost redirect installs user scopes only (Slack: desktop redirects cannot
    request bot scopes)."""
    verifier = "v" * 43
    admin(sandbox, "settings", pkce_enabled=True)
    code = click(sandbox, scope="", user_scope="admin", code_challenge=s256(verifier),
                 code_challenge_method="S256")["code"]  # fmt: skip

    assert exchange(sandbox, code, code_verifier="w" * 43).json()["error"] == "invalid_code_verifier"
    assert exchange(sandbox, code).json()["error"] == "invalid_code_verifier"
    answer = exchange(sandbox, code, code_verifier=verifier).json()
    assert answer["ok"] is True and "access_token" not in answer
    assert answer["authed_user"]["access_token"].startswith("xoxp-")


def test_pkce_exchange_needs_pkce_enabled_app(sandbox: SlackSandbox) -> None:
    verifier = "v" * 43
    code = click(sandbox, scope="", user_scope="admin", code_challenge=s256(verifier),
                 code_challenge_method="S256")["code"]  # fmt: skip
    assert exchange(sandbox, code, code_verifier=verifier).json()["error"] == "pkce_not_allowed"
    # not even on top of the secret: PKCE arguments are for apps with PKCE enabled
    # (docs.slack.dev/authentication/using-pkce: "Once the PKCE setting is enabled, your app may use the
    # PKCE arguments"), so a confidential app's code_verifier is refused as well
    with_secret = exchange(sandbox, code, code_verifier=verifier, client_secret=CLIENT_SECRET).json()
    assert with_secret["error"] == "pkce_not_allowed"


def test_token_rotation_and_refresh(sandbox: SlackSandbox) -> None:
    admin(sandbox, "settings", token_rotation=True, expires_in=60)
    installed = exchange(
        sandbox, click(sandbox, user_scope="admin")["code"], client_secret=CLIENT_SECRET
    ).json()
    assert installed["access_token"].startswith("xoxe.xoxb-1-")
    assert installed["refresh_token"].startswith("xoxe-1-") and installed["expires_in"] == 60
    assert installed["authed_user"]["access_token"].startswith("xoxe.xoxp-1-")
    assert installed["authed_user"]["refresh_token"].startswith("xoxe-1-")

    admin(sandbox, "clock", advance=61)
    assert api(sandbox, "auth.test", installed["access_token"]).json()["error"] == "token_expired"

    def refresh(refresh_token: str) -> dict[str, Any]:
        return (
            web(sandbox)
            .oauth_v2_access(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                grant_type="refresh_token",
                refresh_token=refresh_token,
            )
            .data
        )

    renewed = refresh(installed["refresh_token"])
    assert renewed["token_type"] == "bot" and renewed["access_token"].startswith("xoxe.xoxb-1-")
    assert renewed["refresh_token"] != installed["refresh_token"] and renewed["expires_in"] == 60
    assert web(sandbox, renewed["access_token"]).auth_test()["ok"] is True
    assert slack_error(lambda: refresh(installed["refresh_token"]))["error"] == "invalid_refresh_token"
    assert refresh(installed["authed_user"]["refresh_token"])["token_type"] == "user"


def test_declined_scopes_are_not_granted(sandbox: SlackSandbox) -> None:
    admin(sandbox, "settings", decline_scopes=["links:read", "links:write"])
    granted = (
        exchange(sandbox, click(sandbox)["code"], client_secret=CLIENT_SECRET).json()["scope"].split(",")
    )
    assert "links:write" not in granted and "chat:write" in granted


def test_authorize_page_escapes_everything_it_echoes(sandbox: SlackSandbox) -> None:
    evil = '"><script>alert(1)</script>'
    params = {"client_id": CLIENT_ID, "scope": f"chat:write,{evil}", "redirect_uri": f"{REDIRECT}?x={evil}",
              "state": evil}  # fmt: skip
    refused = HTTP.get(sandbox.authorize_url, params=params)  # unregistered: the error page echoes it
    assert refused.status_code == 400 and "<script>" not in refused.text
    assert html.escape(evil) in refused.text
    sandbox.register_redirect_url(f"{REDIRECT}?x={evil}")
    page = HTTP.get(sandbox.authorize_url, params=params)
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert html.escape(evil) in page.text
    assert page.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    "query",
    [
        {"client_id": "unknown", "scope": "chat:write", "redirect_uri": REDIRECT},
        {"client_id": CLIENT_ID, "scope": "chat:write", "redirect_uri": "javascript:alert(1)"},
        {"client_id": CLIENT_ID, "redirect_uri": REDIRECT},
        {"client_id": CLIENT_ID, "scope": "chat:write", "redirect_uri": REDIRECT, "code_challenge": "abc"},
    ],
)
def test_authorize_page_refuses_bad_requests(sandbox: SlackSandbox, query: dict[str, str]) -> None:
    page = HTTP.get(sandbox.authorize_url, params=query)
    assert page.status_code == 400
    assert "decision" not in page.text


# -- auth ---------------------------------------------------------------------------------
def test_auth_test_reports_granted_scopes_in_header(sandbox: SlackSandbox) -> None:
    token = bot_token(sandbox, "chat:write", "users:read")
    answer = web(sandbox, token).auth_test()
    assert answer.headers["x-oauth-scopes"] == "chat:write,users:read"
    assert set(answer.data) >= {"ok", "url", "team", "user", "team_id", "user_id", "bot_id", "app_id"}


@pytest.mark.parametrize(("token", "error"), [(None, "not_authed"), ("xoxb-unknown", "invalid_auth")])
def test_unknown_or_missing_token(sandbox: SlackSandbox, token: str | None, error: str) -> None:
    assert api(sandbox, "auth.test", token).json() == {"ok": False, "error": error}


def test_token_accepted_as_bearer_or_post_parameter_only(sandbox: SlackSandbox) -> None:
    """Slack reads the token from the Authorization header or a POST parameter: never from the
    query string (apps made after 2021-02-24) nor from inside a JSON body."""
    token = lookup_token(sandbox)
    url = sandbox.api_url + "conversations.info"
    assert HTTP.post(url, data={"token": token, "channel": "C0GENERAL"}).json()["ok"] is True
    multipart = HTTP.post(url, files={"token": (None, token), "channel": (None, "C0GENERAL")})
    assert multipart.json()["ok"] is True
    assert HTTP.get(url, params={"token": token, "channel": "C0GENERAL"}).json() == {
        "ok": False, "error": "not_authed"}  # fmt: skip
    in_json = HTTP.post(url, json={"token": token, "channel": "C0GENERAL"}).json()
    assert in_json == {"ok": False, "error": "not_authed"}
    headers = {"Authorization": f"Bearer {token}"}
    assert HTTP.get(url, params={"channel": "C0GENERAL"}, headers=headers).json()["ok"] is True
    assert (
        HTTP.post(url, json={"channel": "C0GENERAL"}, headers=headers).json()["channel"]["name"] == "general"
    )
    broken = HTTP.post(url, content=b"{", headers={**headers, "Content-Type": "application/json"})
    assert broken.json() == {"ok": False, "error": "invalid_json"}


def test_auth_revoke_dry_run_then_revoked(sandbox: SlackSandbox) -> None:
    token = bot_token(sandbox)
    assert web(sandbox, token).auth_revoke(test=True)["revoked"] is False
    assert web(sandbox, token).auth_revoke()["revoked"] is True
    assert api(sandbox, "auth.test", token).json()["error"] == "token_revoked"


def test_admin_revoke_and_uninstall(sandbox: SlackSandbox) -> None:
    first, second = bot_token(sandbox), bot_token(sandbox)
    assert admin(sandbox, "revoke", token=first)["revoked"] == 1
    assert api(sandbox, "auth.test", first).json()["error"] == "token_revoked"
    assert api(sandbox, "auth.test", second).json()["ok"] is True

    admin(sandbox, "uninstall")
    assert api(sandbox, "auth.test", second).json()["error"] == "account_inactive"
    assert api(sandbox, "auth.test", bot_token(sandbox)).json()["ok"] is True  # a reinstall works again


# -- scopes and channels ------------------------------------------------------------------
def test_missing_scope_names_needed_and_provided(sandbox: SlackSandbox) -> None:
    client = web(sandbox, bot_token(sandbox, "chat:write"))
    assert slack_error(lambda: client.users_info(user="U0ALICE")) == {
        "ok": False,
        "error": "missing_scope",
        "needed": "users:read",
        "provided": "chat:write",
    }
    customized = slack_error(
        lambda: client.chat_postMessage(channel="general", text="hi", username="Coralogix")
    )
    assert customized["needed"] == "chat:write.customize"


def test_post_by_id_hash_name_or_name(sandbox: SlackSandbox) -> None:
    client = web(sandbox, bot_token(sandbox))
    for ref in ("C0ALERTS", "#alerts", "alerts"):
        assert client.chat_postMessage(channel=ref, text=f"via {ref}")["channel"] == "C0ALERTS"


def test_private_channel_looks_missing_to_a_non_member(sandbox: SlackSandbox) -> None:
    client = web(sandbox, lookup_token(sandbox))
    assert (
        slack_error(lambda: client.chat_postMessage(channel="secure-ops", text="x"))["error"]
        == "channel_not_found"
    )
    assert (
        slack_error(lambda: client.conversations_info(channel="G0SECUREOPS"))["error"] == "channel_not_found"
    )
    assert client.chat_postMessage(channel="private-db", text="x")["channel"] == "G0PRIVATEDB"
    assert client.conversations_info(channel="G0PRIVATEDB")["channel"]["is_private"] is True


def test_archived_channel(sandbox: SlackSandbox) -> None:
    client = web(sandbox, lookup_token(sandbox))
    assert (
        slack_error(lambda: client.chat_postMessage(channel="old-alerts", text="x"))["error"] == "is_archived"
    )
    assert slack_error(lambda: client.conversations_join(channel="C0OLDALERTS"))["error"] == "is_archived"
    admin(sandbox, "unarchive", channel="old-alerts")
    assert client.chat_postMessage(channel="old-alerts", text="x")["ok"] is True
    admin(sandbox, "archive", channel="alerts")
    assert client.conversations_info(channel="C0ALERTS")["channel"]["is_archived"] is True


def test_public_channel_needs_membership_or_chat_write_public(sandbox: SlackSandbox) -> None:
    client = web(sandbox, bot_token(sandbox, "chat:write", "channels:join"))
    assert (
        slack_error(lambda: client.chat_postMessage(channel="payments-alerts", text="x"))["error"]
        == "not_in_channel"
    )
    joined = client.conversations_join(channel="C0PAYMENTSALERTS")
    assert joined["channel"]["is_member"] is True
    assert client.chat_postMessage(channel="payments-alerts", text="x")["ok"] is True
    assert client.conversations_join(channel="C0PAYMENTSALERTS")["warning"] == "already_in_channel"

    public = web(sandbox, bot_token(sandbox, "chat:write", "chat:write.public"))
    assert public.chat_postMessage(channel="cases", text="x")["ok"] is True


def test_join_refuses_private_channels(sandbox: SlackSandbox) -> None:
    client = web(sandbox, bot_token(sandbox))
    error = slack_error(lambda: client.conversations_join(channel="G0PRIVATEDB"))
    assert error["error"] == "method_not_supported_for_channel_type"


def test_no_text_and_invalid_blocks(sandbox: SlackSandbox) -> None:
    client = web(sandbox, bot_token(sandbox))
    assert api(sandbox, "chat.postMessage", client.token, channel="general").json()["error"] == "no_text"
    bad = slack_error(lambda: client.chat_postMessage(channel="general", text="x", blocks=[{"no": "type"}]))
    assert bad["error"] == "invalid_blocks"
    posted = client.chat_postMessage(channel="general", text="fallback", blocks=[{"type": "divider"}])
    assert posted["message"]["blocks"] == [{"type": "divider"}]


def test_kick_and_invite_change_membership(sandbox: SlackSandbox) -> None:
    client = web(sandbox, lookup_token(sandbox))
    admin(sandbox, "kick", channel="general")
    assert client.conversations_info(channel="C0GENERAL")["channel"]["is_member"] is False
    admin(sandbox, "invite", channel="secure-ops")
    assert client.conversations_info(channel="G0SECUREOPS")["channel"]["is_member"] is True


def test_conversations_list_pages_with_cursor(sandbox: SlackSandbox) -> None:
    client = web(sandbox, lookup_token(sandbox))
    names, cursor, pages = [], None, 0
    while True:
        page = client.conversations_list(types="public_channel,private_channel", limit=5, cursor=cursor)
        names += [c["name"] for c in page["channels"]]
        pages += 1
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and len(names) == len(set(names)) == 13
    assert "private-db" in names and "secure-ops" not in names and "old-alerts" in names

    public_live = client.conversations_list(exclude_archived=True, limit=1000)["channels"]
    assert {c["name"] for c in public_live} == set(names) - {"private-db", "old-alerts"}
    assert slack_error(lambda: client.conversations_list(cursor="bm9wZQ=="))["error"] == "invalid_cursor"


# -- messages, threads, metadata ----------------------------------------------------------
def test_thread_replies_history_and_metadata(sandbox: SlackSandbox) -> None:
    client = web(sandbox, bot_token(sandbox))
    metadata = {"event_type": "case_created", "event_payload": {"case_id": "CASE-1"}}
    parent = client.chat_postMessage(channel="alerts", text="Case opened", metadata=metadata)
    bob = admin(
        sandbox, "reply", channel="alerts", thread_ts=parent["ts"], user="bob@example.com", text="on it"
    )
    ours = client.chat_postMessage(channel="alerts", text="ack", thread_ts=parent["ts"], reply_broadcast=True)

    replies = client.conversations_replies(channel="C0ALERTS", ts=parent["ts"])
    assert [m["ts"] for m in replies["messages"]] == [parent["ts"], bob["ts"], ours["ts"]]
    assert replies["messages"][0]["reply_count"] == 2 and replies["messages"][1]["user"] == "U0BOB"
    assert replies["has_more"] is False

    first = client.conversations_replies(channel="C0ALERTS", ts=parent["ts"], limit=1)
    assert first["has_more"] is True
    rest = client.conversations_replies(
        channel="C0ALERTS", ts=parent["ts"], limit=5, cursor=first["response_metadata"]["next_cursor"]
    )
    assert [m["ts"] for m in rest["messages"]] == [bob["ts"], ours["ts"]]
    later = client.conversations_replies(channel="C0ALERTS", ts=parent["ts"], oldest=bob["ts"])
    assert [m["ts"] for m in later["messages"]] == [ours["ts"]]

    history = client.conversations_history(channel="C0ALERTS", include_all_metadata=True)
    assert [m["ts"] for m in history["messages"]] == [
        ours["ts"],
        parent["ts"],
    ]  # newest first, broadcast shown
    assert history["messages"][1]["metadata"] == metadata
    assert "metadata" not in client.conversations_history(channel="C0ALERTS")["messages"][1]

    stored = admin_get(sandbox, "messages", channel="alerts")["messages"]
    assert [m["ts"] for m in stored] == [parent["ts"], bob["ts"], ours["ts"]]
    assert stored[0]["metadata"] == metadata


def admin_get(sb: SlackSandbox, path: str, **query: str) -> dict[str, Any]:
    response = HTTP.get(f"{sb.url}/_sandbox/{path}", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def test_reading_threads_follows_channel_type_and_membership(sandbox: SlackSandbox) -> None:
    client = web(sandbox, bot_token(sandbox, "chat:write", "channels:history"))
    private = client.chat_postMessage(channel="private-db", text="x")
    error = slack_error(lambda: client.conversations_replies(channel="G0PRIVATEDB", ts=private["ts"]))
    assert error["error"] == "missing_scope" and error["needed"] == "groups:history"

    public = client.chat_postMessage(channel="general", text="x")
    admin(sandbox, "kick", channel="general")
    error = slack_error(lambda: client.conversations_replies(channel="C0GENERAL", ts=public["ts"]))
    assert error["error"] == "not_in_channel"
    full = web(sandbox, bot_token(sandbox))
    admin(sandbox, "kick", channel="private-db")
    assert slack_error(lambda: full.conversations_replies(channel="G0PRIVATEDB", ts=private["ts"]))[
        "error"
    ] == ("channel_not_found")
    assert slack_error(lambda: full.conversations_replies(channel="C0ALERTS", ts="1.000001"))["error"] == (
        "thread_not_found"
    )


def test_chat_update(sandbox: SlackSandbox) -> None:
    client = web(sandbox, bot_token(sandbox))
    posted = client.chat_postMessage(channel="alerts", text="Case P3")
    updated = client.chat_update(channel="C0ALERTS", ts=posted["ts"], text="Case P1")
    assert updated["text"] == "Case P1" and updated["message"]["edited"]["user"] == posted["message"]["user"]
    human = admin(sandbox, "post", channel="alerts", text="hello")
    assert slack_error(lambda: client.chat_update(channel="C0ALERTS", ts=human["ts"], text="x"))["error"] == (
        "cant_update_message"
    )
    assert slack_error(lambda: client.chat_update(channel="C0ALERTS", ts="1.000001", text="x"))["error"] == (
        "message_not_found"
    )


def test_unfurl_by_unfurl_id_or_channel_and_ts(sandbox: SlackSandbox) -> None:
    shared = admin(
        sandbox, "post", channel="cases", user="U0CAROL", text="look <https://cx.example/cases/42>"
    )
    assert shared["links"] == ["https://cx.example/cases/42"] and shared["unfurl_id"]
    client = web(sandbox, bot_token(sandbox))
    first = {
        "https://cx.example/cases/42": {
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "P1"}}]
        }
    }
    assert client.chat_unfurl(unfurl_id=shared["unfurl_id"], source="conversations_history", unfurls=first)[
        "ok"
    ]
    second = {"https://cx.example/cases/42": {"text": "P2"}}
    assert client.chat_unfurl(channel="C0CASES", ts=shared["ts"], unfurls=second)["ok"]
    assert admin_get(sandbox, "messages", channel="C0CASES")["messages"][0]["unfurls"] == second

    no_scope = web(sandbox, bot_token(sandbox, "chat:write"))
    error = slack_error(lambda: no_scope.chat_unfurl(channel="C0CASES", ts=shared["ts"], unfurls=second))
    assert error["needed"] == "links:write"


def test_unfurl_only_what_link_shared_offered_addressed_as_documented(sandbox: SlackSandbox) -> None:
    """chat.unfurl: URLs no link_shared event offered for that message are cannot_unfurl_url;
    `source` is composer or conversations_history and comes with unfurl_id."""
    shared = admin(sandbox, "post", channel="cases", user="U0CAROL", text="see https://cx.example/cases/7")
    client = web(sandbox, bot_token(sandbox))
    other = {"https://cx.example/cases/8": {"text": "not in the message"}}
    for target in ({"channel": "C0CASES", "ts": shared["ts"]},
                   {"unfurl_id": shared["unfurl_id"], "source": "conversations_history"}):  # fmt: skip
        assert (
            slack_error(lambda t=target: client.chat_unfurl(unfurls=other, **t))["error"]
            == "cannot_unfurl_url"
        )
    mine = {"https://cx.example/cases/7": {"text": "CASE-7"}}
    bot_post = client.chat_postMessage(channel="C0CASES", text="https://cx.example/cases/7")
    assert (
        slack_error(lambda: client.chat_unfurl(channel="C0CASES", ts=bot_post["ts"], unfurls=mine))["error"]
        == "cannot_unfurl_url"
    )  # nobody shared it: no link_shared, nothing to unfurl
    for bad in ({"unfurl_id": shared["unfurl_id"], "source": "history"},
                {"unfurl_id": shared["unfurl_id"]}, {"source": "composer"}):  # fmt: skip
        assert (
            slack_error(lambda b=bad: client.chat_unfurl(unfurls=mine, **b))["error"] == "invalid_arguments"
        )
    assert client.chat_unfurl(unfurl_id=shared["unfurl_id"], source="conversations_history", unfurls=mine)[
        "ok"
    ]


# -- users and access logs ----------------------------------------------------------------
def test_users_info_gives_the_locale_only_when_asked(sandbox: SlackSandbox) -> None:
    client = web(sandbox, bot_token(sandbox))
    assert "locale" not in client.users_info(user="U0ALICE")["user"]
    assert client.users_info(user="U0ALICE", include_locale=True)["user"]["locale"] == "en-US"


def test_metadata_needs_an_event_type_and_an_event_payload(sandbox: SlackSandbox) -> None:
    client = web(sandbox, bot_token(sandbox))
    bad = ({"event_type": "cxslack_case"}, {"event_payload": {}}, {"event_type": "", "event_payload": {}},
           {"event_type": "x", "event_payload": [1]})  # fmt: skip
    channels = ("general", "alerts", "cases", "db-cases")  # one post each: 1 per second per channel
    for channel, metadata in zip(channels, bad, strict=True):
        error = slack_error(
            lambda c=channel, m=metadata: client.chat_postMessage(channel=c, text="x", metadata=m)
        )
        assert error["error"] == "invalid_metadata_format", metadata
    good = {"event_type": "cxslack_case", "event_payload": {"case_id": "CASE-1"}}
    assert (
        client.chat_postMessage(channel="sample-channel", text="x", metadata=good)["message"]["metadata"]
        == good
    )


def test_users_info_shows_email_only_with_users_read_email(sandbox: SlackSandbox) -> None:
    with_email = web(sandbox, bot_token(sandbox)).users_info(user="U0ALICE")["user"]
    assert with_email["profile"]["email"] == "alice@example.com" and with_email["team_id"] == "T0SANDBOX"
    without = web(sandbox, bot_token(sandbox, "users:read")).users_info(user="U0ALICE")["user"]
    assert "email" not in without["profile"]

    client = web(sandbox, bot_token(sandbox))
    assert client.users_lookupByEmail(email="bob@example.com")["user"]["id"] == "U0BOB"
    external = client.users_lookupByEmail(email="erin@partner.example")["user"]
    assert external["team_id"] == "T0OTHER"
    assert (
        slack_error(lambda: client.users_lookupByEmail(email="nobody@example.com"))["error"]
        == "users_not_found"
    )
    assert slack_error(lambda: client.users_info(user="U0NOBODY"))["error"] == "user_not_found"


def test_access_logs_need_an_admin_user_token_and_a_paid_plan(sandbox: SlackSandbox) -> None:
    no_admin = sandbox.issue_token(scopes=["chat:write"], user_scopes=["users:read"])["authed_user"]
    assert slack_error(web(sandbox, no_admin["access_token"]).team_accessLogs)["needed"] == "admin"
    assert slack_error(web(sandbox, bot_token(sandbox)).team_accessLogs)["error"] == "not_allowed_token_type"
    client = web(sandbox, admin_token(sandbox))
    assert len(client.team_accessLogs()["logins"]) == 3
    admin(sandbox, "settings", paid=False)
    assert slack_error(client.team_accessLogs)["error"] == "paid_only"


def test_access_logs_paging(sandbox: SlackSandbox) -> None:
    admin(sandbox, "access-logs", count=147, country="DE")
    client = web(sandbox, admin_token(sandbox))
    seen, cursor = [], None
    while True:
        page = client.team_accessLogs(limit=50, cursor=cursor)
        seen += page["logins"]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 150
    assert [e["date_first"] for e in seen] == sorted((e["date_first"] for e in seen), reverse=True)
    assert set(seen[0]) == {
        "user_id", "username", "date_first", "date_last", "count", "ip", "user_agent", "isp", "country", "region",
    }  # fmt: skip

    legacy = client.team_accessLogs(count=100, page=2)
    assert (
        legacy["paging"] == {"count": 100, "total": 150, "page": 2, "pages": 2}
        and len(legacy["logins"]) == 50
    )
    before = client.team_accessLogs(before=seen[10]["date_first"])
    assert before["logins"][0] == seen[10]
    assert slack_error(lambda: client.team_accessLogs(count=1, page=101))["error"] == "over_pagination_limit"


# -- rate limits and faults ---------------------------------------------------------------
def test_per_channel_rate_limit_with_retry_after(sandbox: SlackSandbox) -> None:
    token = bot_token(sandbox)
    statuses = [
        api(sandbox, "chat.postMessage", token, channel="general", text="x").status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 200]  # the burst
    limited = api(sandbox, "chat.postMessage", token, channel="#general", text="x")
    assert limited.status_code == 429
    assert limited.json() == {"ok": False, "error": "ratelimited"}
    assert int(limited.headers["Retry-After"]) >= 1
    assert (
        api(sandbox, "chat.postMessage", token, channel="alerts", text="x").status_code == 200
    )  # other channel

    calls = admin_get(sandbox, "calls")
    assert calls["ratelimited"] == 1 and calls["violations"] == []
    # one already on its way when the 429 was answered: refused, but not held against the client
    assert api(sandbox, "chat.postMessage", token, channel="C0GENERAL", text="in flight").status_code == 429
    assert admin_get(sandbox, "calls")["violations"] == []
    admin(sandbox, "clock", advance=IN_FLIGHT + 0.05)
    assert api(sandbox, "chat.postMessage", token, channel="C0GENERAL", text="too soon").status_code == 429
    violations = admin_get(sandbox, "calls")["violations"]
    assert [(v["method"], v["channel"]) for v in violations] == [("chat.postMessage", "C0GENERAL")]

    admin(sandbox, "clock", advance=int(limited.headers["Retry-After"]) + 1)
    assert api(sandbox, "chat.postMessage", token, channel="general", text="x").status_code == 200
    assert len(admin_get(sandbox, "calls")["violations"]) == 1


def test_rate_limits_can_be_switched_off(sandbox: SlackSandbox) -> None:
    admin(sandbox, "settings", rate_limits=False)
    token = bot_token(sandbox)
    assert {
        api(sandbox, "chat.postMessage", token, channel="general", text="x").status_code for _ in range(6)
    } == {200}


def test_method_tier_limits(sandbox: SlackSandbox) -> None:
    admin(sandbox, "settings", method_limits={"auth.test": 2})
    token = bot_token(sandbox)
    assert [api(sandbox, "auth.test", token).status_code for _ in range(3)] == [200, 200, 429]
    assert api(sandbox, "auth.test", token).headers["Retry-After"] == "30"
    admin(sandbox, "settings", method_limits={}, tier_limits=True)
    assert api(sandbox, "auth.test", token).status_code == 200


def test_fault_status(sandbox: SlackSandbox) -> None:
    token = bot_token(sandbox)
    admin(sandbox, "faults", method="auth.test", kind="status", status=503, count=2)
    assert [api(sandbox, "auth.test", token).status_code for _ in range(3)] == [503, 503, 200]
    admin(sandbox, "faults", method="chat.postMessage", kind="status", status=500)
    assert api(sandbox, "auth.test", token).status_code == 200  # another method is unaffected


def test_fault_ratelimit(sandbox: SlackSandbox) -> None:
    token = bot_token(sandbox)
    admin(sandbox, "faults", method="*", kind="ratelimit", retry_after=7)
    limited = api(sandbox, "users.info", token, user="U0BOB")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    admin(sandbox, "clock", advance=IN_FLIGHT + 0.05)
    again = api(sandbox, "users.info", token, user="U0BOB")  # the whole method waits out the window
    assert again.status_code == 429 and int(again.headers["Retry-After"]) <= 7
    assert api(sandbox, "auth.test", token).status_code == 200  # other methods do not
    assert [v["method"] for v in admin_get(sandbox, "calls")["violations"]] == ["users.info"]
    admin(sandbox, "clock", advance=7)
    assert api(sandbox, "users.info", token, user="U0BOB").status_code == 200


def test_calls_log_arrival_times_and_when_429s_were_answered(sandbox: SlackSandbox) -> None:
    token = bot_token(sandbox)
    admin(sandbox, "faults", method="conversations.join", kind="ratelimit", retry_after=3)
    assert api(sandbox, "conversations.join", token, channel="C0ALERTS").status_code == 429
    assert api(sandbox, "auth.test", token).status_code == 200
    arrivals = admin_get(sandbox, "calls")["arrivals"]
    assert [(a["method"], a.get("status")) for a in arrivals] == [
        ("conversations.join", 429),
        ("auth.test", None),
    ]
    assert arrivals[0]["channel"] == "C0ALERTS" and arrivals[0]["answered"] >= arrivals[0]["at"]
    assert arrivals[1]["at"] >= arrivals[0]["at"]


def test_workspace_wide_post_limit_holds_every_channel(sandbox: SlackSandbox) -> None:
    """docs.slack.dev/apis/web-api/rate-limits: one message per second per channel, "while also
    maintaining a workspace-wide limit" (no figure published: off unless set)."""
    admin(sandbox, "settings", workspace_post_rate=1.0, workspace_post_burst=2)
    token = bot_token(sandbox)
    codes = [api(sandbox, "chat.postMessage", token, channel=c, text="x").status_code
             for c in ("general", "alerts", "cases")]  # fmt: skip
    assert codes == [200, 200, 429]
    assert api(sandbox, "chat.postMessage", token, channel="db-cases", text="x").status_code == 429


@pytest.mark.parametrize("kind", ["late", "lost"])
def test_late_and_lost_answers_come_after_the_post_landed(sandbox: SlackSandbox, kind: str) -> None:
    """`late`: Slack stores the message but its answer reaches the client after the client's read
    timeout; `lost`: the connection drops after the request was sent. Either way the post is there."""
    token = bot_token(sandbox)
    admin(sandbox, "faults", method="chat.postMessage", kind=kind, seconds=1.0)
    with pytest.raises((httpx.ReadTimeout, httpx.RemoteProtocolError)):
        HTTP.post(sandbox.api_url + "chat.postMessage", data={"channel": "general", "text": "landed"},
                  headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(5, read=0.3))  # fmt: skip
    messages = HTTP.get(f"{sandbox.url}/_sandbox/messages", params={"channel": "general"}).json()["messages"]
    texts = [m["text"] for m in messages]
    assert texts.count("landed") == 1


def test_fault_latency(sandbox: SlackSandbox) -> None:
    token = bot_token(sandbox)
    admin(sandbox, "faults", kind="latency", seconds=0.05)
    started = time.monotonic()
    assert api(sandbox, "auth.test", token).json()["ok"] is True
    assert time.monotonic() - started >= 0.05


def test_fault_drop_closes_without_answering(sandbox: SlackSandbox) -> None:
    token = bot_token(sandbox)
    admin(sandbox, "faults", method="auth.test", kind="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        api(sandbox, "auth.test", token)
    assert api(sandbox, "auth.test", token).json()["ok"] is True


def test_a_fault_after_some_calls_strikes_mid_run(sandbox: SlackSandbox) -> None:
    token = bot_token(sandbox)
    admin(sandbox, "faults", method="auth.test", kind="status", status=503, after=2)
    assert [api(sandbox, "auth.test", token).status_code for _ in range(4)] == [200, 200, 503, 200]
    assert HTTP.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "drop", "after": -1}).status_code == 400


def test_faults_are_validated_and_clearable(sandbox: SlackSandbox) -> None:
    assert HTTP.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "explode"}).status_code == 400
    admin(sandbox, "faults", faults=[{"kind": "drop"}, {"kind": "status", "status": 502}])
    assert len(admin_get(sandbox, "calls")["pending_faults"]) == 2
    assert admin(sandbox, "faults", clear=True)["pending"] == []


# -- the server and its admin API ---------------------------------------------------------
def test_keep_alive_connection_serves_many_requests(sandbox: SlackSandbox) -> None:
    token = bot_token(sandbox)
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    try:
        for _ in range(3):
            connection.request("POST", "/api/auth.test", headers={"Authorization": f"Bearer {token}"})
            response = connection.getresponse()
            assert response.status == 200 and b'"ok":true' in response.read()
    finally:
        connection.close()


def test_server_logs_nothing(sandbox: SlackSandbox, capfd: pytest.CaptureFixture[str]) -> None:
    token = bot_token(sandbox)
    HTTP.get(sandbox.api_url + "auth.test", params={"token": token})  # refused: no token in URLs
    HTTP.get(f"{sandbox.url}/nowhere")
    assert capfd.readouterr().err == ""


def test_admin_api(sandbox: SlackSandbox) -> None:
    issued = admin(sandbox, "tokens", scopes=["chat:write"], user_scopes=["admin"])
    assert issued["scope"] == "chat:write" and issued["authed_user"]["scope"] == "admin"
    assert HTTP.post(f"{sandbox.url}/_sandbox/settings", json={"nope": 1}).status_code == 400
    assert HTTP.post(f"{sandbox.url}/_sandbox/settings", json={"paid": "yes"}).status_code == 400
    assert HTTP.post(f"{sandbox.url}/_sandbox/settings", json={"burst": 0}).status_code == 400
    assert admin_get(sandbox, "settings")["settings"]["per_channel_rate"] == 1.0
    assert HTTP.post(f"{sandbox.url}/_sandbox/archive", json={"channel": "nope"}).status_code == 404
    assert HTTP.get(f"{sandbox.url}/_sandbox/reset").status_code == 405
    assert HTTP.get(f"{sandbox.url}/nowhere").status_code == 404
    assert api(sandbox, "no.suchMethod", issued["access_token"]).json()["error"] == "unknown_method"

    web(sandbox, issued["access_token"]).chat_postMessage(channel="general", text="x")
    assert admin_get(sandbox, "calls")["methods"]["chat.postMessage"] == 1
    admin(sandbox, "reset")
    assert admin_get(sandbox, "calls")["total"] == 0
    assert admin_get(sandbox, "messages", channel="general")["messages"] == []
    assert api(sandbox, "auth.test", issued["access_token"]).json()["error"] == "invalid_auth"


def test_ipv6_loopback() -> None:
    try:
        server = SlackSandbox("::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert server.url.startswith("http://[::1]:")
        assert HTTP.post(server.api_url + "auth.test").json()["error"] == "not_authed"
    finally:
        server.stop()


# -- cxslack sandbox serve ----------------------------------------------------------------
def sandbox_cli() -> typer.Typer:
    from cxslack.cli.sandbox import app

    root = typer.Typer()
    root.add_typer(app, name="sandbox")
    return root


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])
def test_serve_refuses_a_non_loopback_host(host: str) -> None:
    result = CliRunner().invoke(sandbox_cli(), ["sandbox", "serve", "--host", host])
    assert isinstance(result.exception, UsageError)
    assert result.exception.exit_code == EXIT_USAGE
    assert "--allow-remote" in (result.exception.hint or "")


def test_serve_prints_exports_and_stops_on_sigterm() -> None:
    from cxslack.coralogix.client import CoralogixClient
    from cxslack.coralogix.config import resolve_settings
    from cxslack.sandbox.coralogix import CORALOGIX_API_KEY, CORALOGIX_SEND_KEY

    proc = subprocess.Popen(
        [sys.executable, "-m", "cxslack", "sandbox", "serve", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert proc.stderr is not None
        exports: dict[str, str] = {}
        for line in proc.stderr:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
            if line.startswith("Press Ctrl-C"):
                break
        assert exports["CXSLACK_SLACK_CLIENT_ID"] == CLIENT_ID
        assert exports["CXSLACK_SLACK_CLIENT_SECRET"] == CLIENT_SECRET
        assert exports["CXSLACK_SLACK_AUTHORIZE_URL"].endswith("/oauth/v2/authorize")
        answer = HTTP.post(exports["CXSLACK_SLACK_API_URL"] + "auth.test")
        assert answer.json() == {"ok": False, "error": "not_authed"}
        assert exports["CX_API_KEY"] == CORALOGIX_API_KEY and exports["CX_SEND_KEY"] == CORALOGIX_SEND_KEY
        with CoralogixClient(resolve_settings(environ=exports)) as client:
            assert client.get_case("CASE-1")["readableId"] == "CASE-1"
            assert client.send_logs([{"text": "hi"}], application="a", subsystem="s").entries == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_admin_creates_channels(sandbox: SlackSandbox) -> None:
    made = httpx.post(f"{sandbox.url}/_sandbox/channels", json={"name": "bench-001"})
    assert made.status_code == 200 and made.json()["channel"]["name"] == "bench-001"
    assert httpx.post(f"{sandbox.url}/_sandbox/channels", json={"name": "bench-001"}).status_code == 409
    assert httpx.post(f"{sandbox.url}/_sandbox/channels", json={"name": "Bad Name"}).status_code == 400
    token = sandbox.issue_token()["access_token"]
    posted = WebClient(token=token, base_url=sandbox.api_url).chat_postMessage(channel="bench-001", text="hi")
    assert posted["ok"]
