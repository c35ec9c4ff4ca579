"""Each rule of sandbox/rules.py, checked against the running sandbox over real sockets.

The rules are Slack's (each row names its docs.slack.dev page): a rule that stopped holding
would let a client that only works against a lenient sandbox pass its tests.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cxslack.oauth.redirect import DEFAULT_REDIRECT_URI
from cxslack.sandbox import CLIENT_ID, SlackSandbox, slack_api
from cxslack.sandbox.rules import DOCS, RULES, ChannelArg

HTTP = httpx.Client(timeout=10)
ALL_BOT = [
    "chat:write", "chat:write.public", "chat:write.customize", "channels:join", "channels:history",
    "groups:history", "channels:read", "groups:read", "links:write", "users:read", "users:read.email",
]  # fmt: skip
PUBLIC, PRIVATE = ("C0ALERTS", "alerts"), ("G0PRIVATEDB", "private-db")  # the bot is in both


def call(sb: SlackSandbox, method: str, token: str, **params: Any) -> dict[str, Any]:
    return dict(
        HTTP.post(sb.api_url + method, data=params, headers={"Authorization": f"Bearer {token}"}).json()
    )


def bot(sb: SlackSandbox, *scopes: str) -> str:
    return str(sb.issue_token(scopes=list(scopes))["access_token"])


def admin(sb: SlackSandbox, path: str, **body: Any) -> dict[str, Any]:
    response = HTTP.post(f"{sb.url}/_sandbox/{path}", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def post(sb: SlackSandbox, channel: str = "alerts") -> str:
    return str(call(sb, "chat.postMessage", bot(sb, *ALL_BOT), channel=channel, text="x")["ts"])


# Arguments that satisfy each method apart from the rule under test (channels filled in per test).
ARGS: dict[str, dict[str, Any]] = {
    "chat.postMessage": {"text": "x"},
    "chat.postEphemeral": {"text": "x", "user": "U0ALICE"},
    "chat.update": {"text": "y"},
    "chat.getPermalink": {},  # its message_ts is the test's ts: args()
    "chat.unfurl": {"unfurls": '{"https://example.com": {"text": "x"}}'},
    "conversations.join": {},
    "conversations.info": {},
    "conversations.history": {},
    "conversations.replies": {},
    "users.info": {"user": "U0BOB"},
    "users.lookupByEmail": {"email": "bob@example.com"},
    "team.accessLogs": {},
    "files.getUploadURLExternal": {"filename": "chart.png", "length": 3},
    "files.completeUploadExternal": {},  # its file is uploaded per call: args()
}


def args(sb: SlackSandbox, method: str, token: str) -> dict[str, Any]:
    """ARGS, and for files.completeUploadExternal a file whose bytes are up (steps 1 and 2)."""
    if method != "files.completeUploadExternal":
        return dict(ARGS[method])
    reserved = call(sb, "files.getUploadURLExternal", token, filename="c.png", length=3)
    assert HTTP.post(reserved["upload_url"], content=b"png").status_code == 200
    return {"files": f'[{{"id": "{reserved["file_id"]}"}}]'}


def test_every_method_the_sandbox_serves_has_a_rule_naming_its_source() -> None:
    served = {name for name, m in slack_api._METHODS.items() if not m.public}
    assert served == set(RULES)
    for rule in RULES.values():
        assert rule.source == DOCS + rule.method.lower()


@pytest.mark.parametrize("method", sorted(m for m, r in RULES.items() if r.scope))
def test_missing_scope_names_needed_and_provided(sandbox: SlackSandbox, method: str) -> None:
    rule = RULES[method]
    provided = "users:read" if rule.scope != "users:read" else "chat:write"
    if rule.user_token_only:
        token = sandbox.issue_token(scopes=["chat:write"], user_scopes=[provided])["authed_user"][
            "access_token"
        ]
    else:
        token = bot(sandbox, provided)
    params = {**ARGS[method], "channel": PUBLIC[0], "ts": "1.000001"}
    answer = call(sandbox, method, token, **params)
    assert answer == {"ok": False, "error": "missing_scope", "needed": rule.scope, "provided": provided}


@pytest.mark.parametrize("method", sorted(m for m, r in RULES.items() if r.channel_scopes))
def test_channel_kind_decides_the_scope(sandbox: SlackSandbox, method: str) -> None:
    rule = RULES[method]
    assert rule.public_scope and rule.private_scope
    ts = post(sandbox, "alerts")
    private_ts = post(sandbox, "private-db")
    neither = call(sandbox, method, bot(sandbox, "chat:write"), channel=PUBLIC[0], ts=ts)
    assert (neither["error"], neither["needed"]) == (
        "missing_scope",
        f"{rule.public_scope},{rule.private_scope}",
    )
    if method == "conversations.list":
        public_only = bot(sandbox, rule.public_scope)
        assert call(sandbox, method, public_only, types="public_channel")["ok"] is True
        refused = call(sandbox, method, public_only, types="public_channel,private_channel")
    else:
        assert call(sandbox, method, bot(sandbox, rule.public_scope), channel=PUBLIC[0], ts=ts)["ok"] is True
        refused = call(sandbox, method, bot(sandbox, rule.public_scope), channel=PRIVATE[0], ts=private_ts)
        assert call(sandbox, method, bot(sandbox, rule.private_scope), channel=PRIVATE[0], ts=private_ts)[
            "ok"
        ]
        wrong_kind = call(sandbox, method, bot(sandbox, rule.private_scope), channel=PUBLIC[0], ts=ts)
        assert (wrong_kind["error"], wrong_kind["needed"]) == ("missing_scope", rule.public_scope)
    assert (refused["error"], refused["needed"], refused["provided"]) == (
        "missing_scope",
        rule.private_scope,
        rule.public_scope,
    )


@pytest.mark.parametrize("method", sorted(m for m, r in RULES.items() if r.channel is ChannelArg.ID))
def test_id_only_methods_refuse_a_name(sandbox: SlackSandbox, method: str) -> None:
    rule = RULES[method]
    token = bot(sandbox, *ALL_BOT, "files:write")
    ts = post(sandbox, "alerts")
    if method == "chat.unfurl":  # only a link a person shared (link_shared) can be unfurled
        ts = admin(sandbox, "post", channel="alerts", user="U0BOB", text="https://example.com")["ts"]
    for name in ("alerts", "#alerts"):
        answer = call(sandbox, method, token, ts=ts, message_ts=ts, **{rule.channel_param: name},
                      **args(sandbox, method, token))  # fmt: skip
        assert answer == {"ok": False, "error": rule.name_error}, (method, name)
    assert call(sandbox, method, token, ts=ts, message_ts=ts, **{rule.channel_param: "C0ALERTS"},
                **args(sandbox, method, token))["ok"] is True  # fmt: skip


def test_a_permalink_is_slacks_format_and_names_the_thread_of_a_reply(sandbox: SlackSandbox) -> None:
    token = bot(sandbox, "users:read")  # "No scope required": none of chat:*
    root = post(sandbox, "alerts")
    reply = call(sandbox, "chat.postMessage", bot(sandbox, *ALL_BOT), channel="C0ALERTS", text="r",
                 thread_ts=root)["ts"]  # fmt: skip
    base = "https://sandbox-workspace.slack.com/archives/C0ALERTS/p"
    assert call(sandbox, "chat.getPermalink", token, channel="C0ALERTS", message_ts=root) == {
        "ok": True, "channel": "C0ALERTS", "permalink": base + root.replace(".", "")}  # fmt: skip
    threaded = call(sandbox, "chat.getPermalink", token, channel="C0ALERTS", message_ts=reply)["permalink"]
    assert threaded == f"{base}{reply.replace('.', '')}?thread_ts={root}&cid=C0ALERTS"
    missing = call(sandbox, "chat.getPermalink", token, channel="C0ALERTS", message_ts="1.000001")
    assert missing == {"ok": False, "error": "message_not_found"}


def test_post_message_takes_a_name_and_answers_with_the_id(sandbox: SlackSandbox) -> None:
    token = bot(sandbox, "chat:write", "chat:write.public")
    for ref in ("payments-alerts", "#payments-alerts", "C0PAYMENTSALERTS"):
        answer = call(sandbox, "chat.postMessage", token, channel=ref, text="x")
        assert answer["ok"] and answer["channel"] == "C0PAYMENTSALERTS"


def test_posting_by_name_does_not_make_the_bot_a_member_joining_by_id_does(sandbox: SlackSandbox) -> None:
    token = bot(sandbox, *ALL_BOT)
    ts = call(sandbox, "chat.postMessage", token, channel="payments-alerts", text="x")["ts"]
    for method in ("conversations.history", "conversations.replies"):
        assert call(sandbox, method, token, channel="C0PAYMENTSALERTS", ts=ts) == {
            "ok": False,
            "error": "not_in_channel",
        }
    assert (
        call(sandbox, "conversations.join", token, channel="payments-alerts")["error"] == "channel_not_found"
    )
    assert (
        call(sandbox, "conversations.join", token, channel="C0PAYMENTSALERTS")["channel"]["is_member"] is True
    )
    assert call(sandbox, "conversations.replies", token, channel="C0PAYMENTSALERTS", ts=ts)["ok"] is True


@pytest.mark.parametrize("method", sorted(m for m, r in RULES.items() if r.channel is not ChannelArg.NONE))
def test_a_private_channel_without_the_bot_is_invisible(sandbox: SlackSandbox, method: str) -> None:
    admin(sandbox, "post", channel="secure-ops", text="a person's message")
    token = bot(sandbox, *ALL_BOT, "files:write")
    where = {RULES[method].channel_param: "G0SECUREOPS"}
    answer = call(sandbox, method, token, ts="1.000001", **where, **args(sandbox, method, token))
    assert answer == {"ok": False, "error": "channel_not_found"}


def test_conversations_list_shows_private_channels_to_members_only(sandbox: SlackSandbox) -> None:
    listed = call(sandbox, "conversations.list", bot(sandbox, "channels:read", "groups:read"),
                  types="public_channel,private_channel", limit=1000)  # fmt: skip
    names = {c["name"]: c["is_member"] for c in listed["channels"]}
    assert names["private-db"] is True and "secure-ops" not in names and names["payments-alerts"] is False
    assert (
        call(sandbox, "conversations.list", bot(sandbox, "channels:read"), types="mpim")["needed"]
        == "mpim:read"
    )


def test_admin_scope_only_on_user_tokens(sandbox: SlackSandbox) -> None:
    answer = call(sandbox, "team.accessLogs", bot(sandbox, "admin"))
    assert answer == {"ok": False, "error": "not_allowed_token_type"}
    user = sandbox.issue_token(scopes=["chat:write"], user_scopes=["admin"])["authed_user"]["access_token"]
    assert call(sandbox, "team.accessLogs", user)["ok"] is True


def test_every_answer_carries_the_granted_scopes(sandbox: SlackSandbox) -> None:
    token = bot(sandbox, "chat:write", "users:read")
    response = HTTP.post(sandbox.api_url + "users.lookupByEmail", data={"token": token, "email": "x@y"})
    assert response.headers["x-oauth-scopes"] == "chat:write,users:read"


# -- files: the three upload steps ---------------------------------------------------------------
def test_an_upload_needs_its_announced_length_once_and_a_thread_parent(sandbox: SlackSandbox) -> None:
    token = bot(sandbox, *ALL_BOT, "files:write")
    assert (
        call(sandbox, "files.getUploadURLExternal", token, filename="c.png", length=0)["error"]
        == "missing_argument"
    )
    too_long = call(
        sandbox, "files.getUploadURLExternal", token, filename="c.png", length=3, alt_txt="x" * 1001
    )
    assert too_long["error"] == "alt_txt_too_large"
    reserved = call(sandbox, "files.getUploadURLExternal", token, filename="c.png", length=3)
    assert HTTP.post(reserved["upload_url"], content=b"four").status_code == 400  # not the announced length
    assert HTTP.post(reserved["upload_url"], content=b"png").status_code == 200
    assert HTTP.post(reserved["upload_url"], content=b"png").status_code == 400  # once per URL
    assert HTTP.post(reserved["upload_url"] + "x", content=b"png").status_code == 404
    files = f'[{{"id": "{reserved["file_id"]}", "title": "Chart"}}]'
    root = post(sandbox, "alerts")
    reply = call(sandbox, "chat.postMessage", token, channel="C0ALERTS", text="r", thread_ts=root)["ts"]
    for thread_ts in (reply, "1.000001"):  # a reply's ts, or no message: "use its parent instead"
        answer = call(
            sandbox,
            "files.completeUploadExternal",
            token,
            files=files,
            channel_id="C0ALERTS",
            thread_ts=thread_ts,
        )
        assert answer["error"] == "invalid_arguments"
    shared = call(
        sandbox, "files.completeUploadExternal", token, files=files, channel_id="C0ALERTS", thread_ts=root
    )
    assert shared["files"] == [{"id": reserved["file_id"], "title": "Chart"}]
    again = call(
        sandbox, "files.completeUploadExternal", token, files=files, channel_id="C0ALERTS", thread_ts=root
    )
    assert again["error"] == "file_not_found"  # "This method can only be called once"
    replies = call(sandbox, "conversations.replies", token, channel="C0ALERTS", ts=root)["messages"]
    assert [m["files"][0]["id"] for m in replies if m.get("files")] == [reserved["file_id"]]


def test_sharing_a_file_needs_membership_whatever_chat_write_public_allows(sandbox: SlackSandbox) -> None:
    token = bot(sandbox, *ALL_BOT, "files:write")
    root = call(sandbox, "chat.postMessage", token, channel="payments-alerts", text="x")["ts"]  # not a member
    answer = call(sandbox, "files.completeUploadExternal", token, channel_id="C0PAYMENTSALERTS", thread_ts=root,
                  **args(sandbox, "files.completeUploadExternal", token))  # fmt: skip
    assert answer == {"ok": False, "error": "not_in_channel"}


def test_a_file_can_be_shared_by_channels_too_under_the_same_rules(sandbox: SlackSandbox) -> None:
    """`channels` ("comma-separated string of channel IDs") is the other documented way to say where."""
    token = bot(sandbox, *ALL_BOT, "files:write")
    both = call(sandbox, "files.completeUploadExternal", token, channels="C0GENERAL, C0ALERTS",
                **args(sandbox, "files.completeUploadExternal", token))  # fmt: skip
    assert both["ok"] is True
    for channel in ("C0GENERAL", "C0ALERTS"):
        history = call(sandbox, "conversations.history", token, channel=channel)["messages"]
        assert history[0]["files"][0]["id"] == both["files"][0]["id"]
    root = post(sandbox, "alerts")
    refused = {
        "C0GENERAL,C0PAYMENTSALERTS": "not_in_channel",  # the bot is not in the second one
        "C0GENERAL,alerts": "invalid_arguments",  # a name, not an ID
    }
    for channels, error in refused.items():
        answer = call(sandbox, "files.completeUploadExternal", token, channels=channels,
                      **args(sandbox, "files.completeUploadExternal", token))  # fmt: skip
        assert answer["error"] == error, channels
    two_threads = call(sandbox, "files.completeUploadExternal", token, channels="C0ALERTS,C0GENERAL", thread_ts=root,
                       **args(sandbox, "files.completeUploadExternal", token))  # fmt: skip
    assert two_threads["error"] == "invalid_arguments"  # "only one channel when using thread_ts"
    one = call(sandbox, "files.completeUploadExternal", token, channels="C0ALERTS", thread_ts=root,
               **args(sandbox, "files.completeUploadExternal", token))  # fmt: skip
    assert one["ok"] is True


# -- the authorize page ------------------------------------------------------------------------
def authorize_page(sb: SlackSandbox, **params: str) -> httpx.Response:
    return HTTP.get(sb.authorize_url, params={"client_id": CLIENT_ID, "state": "s", **params})


@pytest.mark.parametrize("scope", ["openid", "email", "profile"])
def test_sign_in_with_slack_scopes_are_not_part_of_the_v2_install(sandbox: SlackSandbox, scope: str) -> None:
    page = authorize_page(sandbox, scope="chat:write", user_scope=f"admin,{scope}",
                          redirect_uri=DEFAULT_REDIRECT_URI)  # fmt: skip
    assert page.status_code == 400 and "Sign in with Slack" in page.text
    assert authorize_page(sandbox, scope="chat:write", user_scope="admin",
                          redirect_uri=DEFAULT_REDIRECT_URI).status_code == 200  # fmt: skip


@pytest.mark.parametrize("redirect", ["http://127.0.0.1:8976/cb", DEFAULT_REDIRECT_URI])
def test_pkce_desktop_redirects_cannot_request_bot_scopes(sandbox: SlackSandbox, redirect: str) -> None:
    pkce = {"code_challenge": "x" * 43, "code_challenge_method": "S256", "redirect_uri": redirect}
    if redirect.startswith("http://"):  # only a PKCE app may register a plain-http loopback redirect
        HTTP.post(f"{sandbox.url}/_sandbox/redirect-urls", json={"add": redirect, "pkce_enabled": True})
    refused = authorize_page(sandbox, scope="chat:write", **pkce)
    assert refused.status_code == 400 and "cannot request bot scopes" in refused.text
    assert authorize_page(sandbox, user_scope="admin", **pkce).status_code == 200
    # an https redirect of an app without PKCE (a confidential client with its secret) may
    HTTP.post(
        f"{sandbox.url}/_sandbox/settings",
        json={"pkce_enabled": False, "redirect_urls": [DEFAULT_REDIRECT_URI]},
    )
    assert authorize_page(sandbox, scope="chat:write", redirect_uri=DEFAULT_REDIRECT_URI).status_code == 200
