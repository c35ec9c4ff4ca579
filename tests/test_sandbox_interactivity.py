"""The sandbox's interactivity: a person clicks a button, Slack sends block_actions to the app over
HTTP (signed, form-encoded) or Socket Mode, and the app answers that person alone through
response_url or chat.postEphemeral."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier
from websockets.sync.client import connect

from cxslack.sandbox import SIGNING_SECRET, SlackSandbox
from tests.test_sandbox_events import Receiver, admin, receiver, web_api  # noqa: F401 (the fixture)

HTTP = httpx.Client(timeout=10)
CONFIRM = {
    "title": {"type": "plain_text", "text": "Resolve CASE-1?"},
    "text": {"type": "plain_text", "text": "It is resolved in Coralogix as you."},
    "confirm": {"type": "plain_text", "text": "Resolve"},
    "deny": {"type": "plain_text", "text": "Cancel"},
}
BUTTONS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "CASE-1 is *Active*"}},
    {
        "type": "actions",
        "block_id": "case_actions",
        "elements": [
            {"type": "button", "action_id": "case_acknowledge", "value": "CASE-1",
             "text": {"type": "plain_text", "text": "Acknowledge"}, "style": "primary"},
            {"type": "button", "action_id": "case_resolve", "value": "CASE-1",
             "text": {"type": "plain_text", "text": "Resolve"}, "confirm": CONFIRM},
        ],
    },
]  # fmt: skip


def bot(sandbox: SlackSandbox, *scopes: str) -> str:
    return str(sandbox.issue_token(scopes=list(scopes) or None)["access_token"])


def posted(sandbox: SlackSandbox) -> dict[str, Any]:
    return web_api(sandbox, bot(sandbox), "chat.postMessage", channel="alerts", text="CASE-1", blocks=BUTTONS)


def ephemeral(sandbox: SlackSandbox, **query: str) -> list[dict[str, Any]]:
    return list(HTTP.get(f"{sandbox.url}/_sandbox/ephemeral", params=query).json()["ephemeral"])


def test_a_click_is_a_signed_form_post_of_block_actions(sandbox: SlackSandbox, receiver: Receiver) -> None:  # noqa: F811
    admin(sandbox, "events/subscribe", interactivity_url=receiver.url)
    message = posted(sandbox)
    sent = admin(
        sandbox, "click", channel="alerts", ts=message["ts"], action_id="case_acknowledge", user="U0BOB"
    )
    assert sent["sent"] and sent["delivery"].startswith("Ia")
    assert sandbox.events.drain(10)
    [request] = receiver.requests
    assert SignatureVerifier(SIGNING_SECRET).is_valid_request(request.body, request.headers)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    [raw] = parse_qs(request.body.decode())["payload"]
    payload = json.loads(raw)
    assert payload == sent["payload"] and payload["type"] == "block_actions"
    assert payload["user"] == {"id": "U0BOB", "username": "bob", "name": "bob", "team_id": "T0SANDBOX"}
    assert payload["team"]["id"] == "T0SANDBOX" and payload["channel"]["id"] == "C0ALERTS"
    assert payload["container"] == {"type": "message", "message_ts": message["ts"], "channel_id": "C0ALERTS",
                                    "is_ephemeral": False}  # fmt: skip
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"]) == (
        "case_acknowledge",
        "case_actions",
        "CASE-1",
    )
    assert action["text"]["text"] == "Acknowledge" and action["action_ts"] > message["ts"]
    assert payload["message"]["blocks"] == BUTTONS and payload["response_url"].startswith(sandbox.url)
    # Slack does not retry a click over HTTP; the sandbox can, as a test of the app's dedupe
    admin(sandbox, "events/redeliver", event_id=sent["delivery"], count=2)
    assert sandbox.events.drain(10) and len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1


def test_a_slack_connect_guest_clicks_with_their_own_team(sandbox: SlackSandbox) -> None:
    message = posted(sandbox)
    sent = admin(
        sandbox, "click", channel="alerts", ts=message["ts"], action_id="case_acknowledge", user="U0EXTERNAL"
    )
    assert not sent["sent"]  # no interactivity URL: the click goes nowhere
    assert sent["payload"]["user"]["team_id"] == "T0OTHER" and sent["payload"]["team"]["id"] == "T0SANDBOX"


def test_only_buttons_on_the_message_can_be_clicked_and_a_denied_confirm_sends_nothing(
    sandbox: SlackSandbox,
    receiver: Receiver,  # noqa: F811
) -> None:
    admin(sandbox, "events/subscribe", interactivity_url=receiver.url)
    message = posted(sandbox)
    missing = HTTP.post(
        f"{sandbox.url}/_sandbox/click",
        json={"channel": "alerts", "ts": message["ts"], "action_id": "case_close"},
    )
    assert missing.status_code == 404 and missing.json()["error"] == "button_not_found"
    denied = admin(
        sandbox, "click", channel="alerts", ts=message["ts"], action_id="case_resolve", confirm=False
    )
    assert denied["sent"] is False and receiver.requests == []
    assert admin(sandbox, "click", channel="alerts", ts=message["ts"], action_id="case_resolve")["sent"]


def test_response_url_answers_one_person_replaces_by_default_and_runs_out(sandbox: SlackSandbox) -> None:
    message = posted(sandbox)
    sent = admin(
        sandbox, "click", channel="alerts", ts=message["ts"], action_id="case_acknowledge", user="U0CAROL"
    )
    url = sent["payload"]["response_url"]
    answer = {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": "You are not a member of the team.",
    }
    assert HTTP.post(url, json=answer).json() == {"ok": True}
    [seen] = ephemeral(sandbox, user="U0CAROL")
    assert (seen["channel"], seen["text"], seen["via"]) == ("C0ALERTS", answer["text"], "response_url")
    assert ephemeral(sandbox, user="U0BOB") == []
    HTTP.post(url, json={"text": "replaced"})  # neither replace_original nor delete_original: Slack replaces
    texts = {
        m["ts"]: m["text"]
        for m in httpx.get(f"{sandbox.url}/_sandbox/messages", params={"channel": "alerts"}).json()[
            "messages"
        ]
    }
    assert texts[message["ts"]] == "replaced"
    for _ in range(3):
        assert HTTP.post(url, json=answer).status_code == 200
    assert HTTP.post(url, json=answer).json()["error"] == "used_url"  # the sixth use
    again = posted(sandbox)  # the first message lost its buttons when it was replaced
    fresh = admin(sandbox, "click", channel="alerts", ts=again["ts"], action_id="case_acknowledge")["payload"]
    admin(sandbox, "clock", advance=31 * 60)
    assert HTTP.post(fresh["response_url"], json=answer).json()["error"] == "expired_url"


def test_chat_post_ephemeral(sandbox: SlackSandbox) -> None:
    token = bot(sandbox)
    answer = web_api(sandbox, token, "chat.postEphemeral", channel="C0ALERTS", user="U0BOB", text="only you")
    assert answer["message_ts"]
    [seen] = ephemeral(sandbox, user="U0BOB")
    assert (seen["channel"], seen["text"], seen["via"]) == ("C0ALERTS", "only you", "chat.postEphemeral")

    def refused(token: str, **args: Any) -> str:
        body = HTTP.post(sandbox.api_url + "chat.postEphemeral", headers={"Authorization": f"Bearer {token}"},
                         json=args).json()  # fmt: skip
        assert not body["ok"]
        return str(body["error"])

    assert refused(bot(sandbox, "users:read"), channel="C0ALERTS", user="U0BOB", text="x") == "missing_scope"
    assert refused(token, channel="C0ALERTS", user="U0NOBODY", text="x") == "user_not_in_channel"
    assert refused(token, channel="C0ALERTS", user="U0BOB") == "no_text"
    assert refused(token, channel="old-alerts", user="U0BOB", text="x") == "is_archived"
    assert refused(token, channel="secure-ops", user="U0BOB", text="x") == "channel_not_found"


@pytest.mark.parametrize(
    "change",
    [
        {"text": {"type": "plain_text", "text": "A" * 76}},
        {"text": {"type": "mrkdwn", "text": "Acknowledge"}},
        {"style": "warning"},
        {"value": "v" * 2001},
        {"confirm": {**CONFIRM, "deny": {"type": "plain_text", "text": ""}}},
    ],
)
def test_buttons_slack_would_refuse_are_invalid_blocks(sandbox: SlackSandbox, change: dict[str, Any]) -> None:
    button = {
        "type": "button",
        "action_id": "a",
        "value": "v",
        "text": {"type": "plain_text", "text": "Go"},
        **change,
    }
    blocks = [{"type": "actions", "elements": [button]}]
    body = HTTP.post(sandbox.api_url + "chat.postMessage", headers={"Authorization": f"Bearer {bot(sandbox)}"},
                     json={"channel": "alerts", "text": "x", "blocks": blocks}).json()  # fmt: skip
    assert body["error"] == "invalid_blocks", body


def test_a_click_over_socket_mode_is_an_interactive_envelope(sandbox: SlackSandbox) -> None:
    token = admin(sandbox, "app-token")["token"]
    opened = HTTP.post(
        sandbox.api_url + "apps.connections.open", headers={"Authorization": f"Bearer {token}"}
    ).json()
    message = posted(sandbox)
    with connect(opened["url"]) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        sent = admin(sandbox, "click", channel="alerts", ts=message["ts"], action_id="case_acknowledge")
        envelope = json.loads(ws.recv(timeout=10))
        while envelope["type"] == "events_api":  # the post of the message itself, first
            ws.send(json.dumps({"envelope_id": envelope["envelope_id"]}))
            envelope = json.loads(ws.recv(timeout=10))
        assert envelope["type"] == "interactive" and envelope["payload"] == sent["payload"]
        ws.send(json.dumps({"envelope_id": envelope["envelope_id"]}))
        assert sandbox.events.drain(10)
    [delivery] = [
        d
        for d in HTTP.get(f"{sandbox.url}/_sandbox/events").json()["events"]
        if d["event_id"] == sent["delivery"]
    ]
    assert delivery["outcome"] == "delivered" and delivery["type"] == "block_actions"
