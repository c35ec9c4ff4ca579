"""Contract tests: Slack's event payloads, as its documentation shows them (tests/fixtures/slack/),
through the handlers `cxslack listen` runs, against the sandbox as Slack and Coralogix.

Each payload must turn into exactly what a person would expect in the Case timeline: one comment
per human reply, an edit that updates that comment, a deletion that deletes it, and nothing for
bots, for odd or incomplete events, or for an edit that changed nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxslack.events import make_handler
from cxslack.sandbox.coralogix import case_uuid
from cxslack.state.interface import Accepted

from .conftest import Cli, sandbox_admin, sandbox_messages, tracked_case

FIXTURES = Path(__file__).parent / "fixtures" / "slack"


def payload(name: str, **values: str) -> dict[str, Any]:
    """A fixture with its {{PLACEHOLDERS}} filled in (every one must be given)."""
    text = (FIXTURES / f"{name}.json").read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    assert "{{" not in text, re.findall(r"\{\{\w+\}\}", text)
    return dict(json.loads(text))


def comments(sb: Any, case: str = "CASE-1") -> list[dict[str, Any]]:
    found = httpx.get(f"{sb.url}/_sandbox/coralogix/comments", params={"case": case}).json()["comments"]
    return [e["eventData"]["comment"] for e in found]


@pytest.fixture
def thread(cli: Cli, cx: Any) -> dict[str, str]:
    """CASE-1 posted to #payments-alerts by a two-way-sync integration: where replies go."""
    root = tracked_case(cli, cx)
    return {
        "CHANNEL": root["channel"],
        "ROOT_TS": root["ts"],
        "TS": "1800000000.000200",
        "TS2": "1800000100.000300",
    }


def test_a_plain_reply_becomes_one_comment(cx: Any, thread: dict[str, str]) -> None:
    handle = make_handler()
    envelope = payload("message_reply", **thread)
    assert handle(envelope).action == "comment"
    handle(envelope)  # Slack's retry of the same event
    [comment] = comments(cx)
    text = comment["unsafeText"]
    assert "Rolled back the deploy" in text and "alice@example.com" in text
    # Slack's permalink of a message in a thread (docs.slack.dev/reference/methods/chat.getPermalink)
    channel, ts, root = thread["CHANNEL"], thread["TS"], thread["ROOT_TS"]
    assert text.endswith(f"/archives/{channel}/p{ts.replace('.', '')}?thread_ts={root}&cid={channel}")


@pytest.mark.parametrize("edit", ["message_changed", "message_changed_no_inner_ts"])
def test_an_edit_updates_the_comment_it_made(cx: Any, thread: dict[str, str], edit: str) -> None:
    handle = make_handler()
    handle(payload("message_reply", **thread))
    assert handle(payload(edit, **thread)).action == "edit"
    assert handle(payload(edit, **thread)).action == "skipped"  # the same edit again
    [comment] = comments(cx)  # updated in place: no "edited" comment stacked under it
    assert (
        "Rolled back deploy 4" in comment["unsafeText"]
        and "Rolled back the deploy" not in comment["unsafeText"]
    )
    assert "pNone" not in comment["unsafeText"]
    assert f"/p{thread['TS'].replace('.', '')}?thread_ts={thread['ROOT_TS']}&" in comment["unsafeText"]


def test_an_edit_of_a_reply_never_seen_syncs_it_once(cx: Any, thread: dict[str, str]) -> None:
    handle = make_handler()
    assert handle(payload("message_changed_no_inner_ts", **thread)).action == "comment"
    assert handle(payload("message_changed", **thread)).action == "edit"
    [comment] = comments(cx)
    assert "Rolled back deploy 42" in comment["unsafeText"] and "pNone" not in comment["unsafeText"]


def test_odd_message_changed_events_change_nothing(cx: Any, thread: dict[str, str]) -> None:
    handle = make_handler()
    handle(payload("message_reply", **thread))
    before = comments(cx)
    assert handle(payload("message_changed_previous_only", **thread)).action == "skipped"
    assert handle(payload("message_changed_unfurl", **thread)).action == "skipped"  # text unchanged
    assert comments(cx) == before


def test_a_deletion_deletes_the_comment(cx: Any, thread: dict[str, str]) -> None:
    handle = make_handler()
    handle(payload("message_reply", **thread))
    assert handle(payload("message_deleted", **thread)).action == "delete"
    assert handle(payload("message_deleted", **thread)).action == "skipped"
    assert comments(cx) == []
    assert handle(payload("message_changed", **thread)).action == "skipped"  # an edit after it: nothing


def test_a_deletion_coralogix_refuses_marks_the_comment(
    cx: Any, thread: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = make_handler()
    handle(payload("message_reply", **thread))
    sandbox_admin(cx, "faults", method="coralogix.events.delete_comment", kind="status", status=403, count=1)
    assert handle(payload("message_deleted", **thread)).action == "delete"
    [comment] = comments(cx)
    assert (
        "deleted this reply in Slack" in comment["unsafeText"] and "Rolled back" not in comment["unsafeText"]
    )


def test_a_thread_broadcast_is_one_comment_and_bots_are_none(cx: Any, thread: dict[str, str]) -> None:
    handle = make_handler()
    assert handle(payload("thread_broadcast", **thread)).action == "comment"
    bot = {**thread, "TS": "1800000000.000900"}
    assert handle(payload("bot_message", **bot)).action == "skipped"
    [comment] = comments(cx)
    assert "Root cause found" in comment["unsafeText"]


def test_events_with_missing_fields_are_skipped_not_guessed(cx: Any, thread: dict[str, str]) -> None:
    handle = make_handler()
    broken = payload("message_reply", **thread)
    for change in (
        {"ts": None},
        {"ts": 17},
        {"channel": None},
        {"channel": "COMPOSER"},
        {"thread_ts": ["x"]},
    ):
        event = {**broken["event"], **change}
        result = handle({**broken, "event": {k: v for k, v in event.items() if v is not None}})
        assert result is None or result.action == "skipped", change
    assert handle({**broken, "event": "not an object"}) is None
    assert comments(cx) == []


# -- link_shared -------------------------------------------------------------------------------
@pytest.fixture
def shared(cli: Cli, cx: Any) -> dict[str, str]:
    """A person posts CASE-2's URL in #general; what link_shared would name."""
    from tests.conftest import install

    install(cli, cx, "Payments")
    link = cli.ok("cases", "show", "CASE-2", "-o", "json").json()["link"]
    posted = sandbox_admin(cx, "post", channel="general", user="U0BOB", text=f"see {link}")
    return {"CHANNEL": posted["channel"], "TS": posted["ts"], "UNFURL_ID": posted["unfurl_id"],
            "URL": link, "DOMAIN": httpx.URL(link).host}  # fmt: skip


def unfurled(cx: Any, ts: str) -> str:
    return str(next(m for m in sandbox_messages(cx, "general") if m["ts"] == ts).get("unfurls") or "")


@pytest.mark.parametrize("fixture", ["link_shared", "link_shared_legacy"])
def test_link_shared_with_or_without_unfurl_id(cx: Any, shared: dict[str, str], fixture: str) -> None:
    values = {k: v for k, v in shared.items() if fixture == "link_shared" or k != "UNFURL_ID"}
    assert make_handler()(payload(fixture, **values)) == [case_uuid(2)]
    text = unfurled(cx, shared["TS"])
    assert "P2" in text and "Acknowledged" in text and "userId" not in text


def test_a_link_in_the_composer_unfurls_by_unfurl_id_only(cli: Cli, cx: Any, shared: dict[str, str]) -> None:
    typed = sandbox_admin(cx, "compose", text=shared["URL"], user="U0BOB")
    event = payload("link_shared_composer", MESSAGE_TS=typed["message_ts"], UNFURL_ID=typed["unfurl_id"],
                    URL=shared["URL"], DOMAIN=shared["DOMAIN"])  # fmt: skip
    calls_before = httpx.get(f"{cx.url}/_sandbox/calls").json()["methods"].get("chat.unfurl", 0)
    assert make_handler()(event)  # previewed
    assert httpx.get(f"{cx.url}/_sandbox/calls").json()["methods"]["chat.unfurl"] == calls_before + 1
    without_id = payload("link_shared_composer", MESSAGE_TS=typed["message_ts"], UNFURL_ID="",
                         URL=shared["URL"], DOMAIN=shared["DOMAIN"])  # fmt: skip
    assert make_handler()(without_id) == []  # nothing could address it: no call at all
    assert httpx.get(f"{cx.url}/_sandbox/calls").json()["methods"]["chat.unfurl"] == calls_before + 1


# -- Socket Mode -------------------------------------------------------------------------------
def test_a_socket_mode_envelope_reaches_the_inbox_and_is_acked(thread: dict[str, str]) -> None:
    from slack_sdk.socket_mode.request import SocketModeRequest

    from cxslack.listen.socket_mode import SocketModeTransport

    accepted: list[dict[str, Any]] = []
    acks: list[str] = []

    class Inbox:
        def accept(self, envelope: dict[str, Any], raw: bytes | None = None) -> Accepted:
            accepted.append(envelope)
            return Accepted.STORED

    class Client:
        def send_socket_mode_response(self, response: Any) -> None:
            acks.append(response.envelope_id)

    doc = payload("socket_mode_events_api", **thread)
    request = SocketModeRequest.from_dict(doc)
    assert request is not None
    transport = SocketModeTransport.__new__(SocketModeTransport)  # the handler alone: no connection
    transport.inbox, transport.log = Inbox(), lambda line: None  # type: ignore[assignment]
    transport._on_request(Client(), request)
    assert accepted == [doc["payload"]] and acks == [doc["envelope_id"]]
    assert make_handler()(accepted[0]).action == "comment"


# -- the other message subtypes a Case thread may hold (docs.slack.dev/reference/events/message) --
def reply_with(thread: dict[str, str], event_id: str, **changes: Any) -> dict[str, Any]:
    """message_reply with its event changed (a key set to None is removed)."""
    envelope = payload("message_reply", **thread)
    event = {**envelope["event"], **changes}
    return {**envelope, "event_id": event_id, "event": {k: v for k, v in event.items() if v is not None}}


def test_a_me_message_and_a_file_alone_are_replies_too(cx: Any, thread: dict[str, str]) -> None:
    handle = make_handler()
    me = reply_with(thread, "Ev0ME", subtype="me_message", text="is rolling back", blocks=None)
    assert handle(me).action == "comment"
    files = [{"id": "F0LOG", "name": "rollback.log", "title": "rollback.log", "mimetype": "text/plain"}]
    upload = reply_with(thread, "Ev0FILE", subtype="file_share", ts=thread["TS2"], text="", blocks=None,
                        files=files, upload=False, display_as_bot=False)  # fmt: skip
    assert handle(upload).action == "comment"
    texts = [c["unsafeText"] for c in comments(cx)]
    assert any("is rolling back" in t for t in texts) and any("rollback.log" in t for t in texts)


def test_what_slack_or_an_app_says_in_the_thread_is_never_a_comment(cx: Any, thread: dict[str, str]) -> None:
    handle = make_handler()
    root, bot = thread["ROOT_TS"], {"bot_id": "B0SANDBOX", "app_id": "A0SANDBOX", "user": "U0SANDBOXBOT"}
    events = [
        # a person joined the channel: Slack's notice, no thread of its own
        reply_with(thread, "Ev0JOIN", subtype="channel_join", text="<@U0ALICE> has joined the channel",
                   thread_ts=None, blocks=None, client_msg_id=None),
        # the root got a reply: Slack's notice about the parent
        reply_with(thread, "Ev0REPLIED", subtype="message_replied", hidden=True, text=None, user=None,
                   blocks=None, message={"type": "message", "ts": root, "thread_ts": root, "reply_count": 1,
                   "text": "CASE-1", **bot}),
        # our app's own reply, posted with a token that left bot_id out, and another app's
        reply_with(thread, "Ev0OWNAPP", app_id="A0SANDBOX", user="U0INSTALLER"),
        reply_with(thread, "Ev0OTHERBOT", ts=thread["TS2"], bot_profile={"id": "B0OTHER", "app_id": "A0OTHER"},
                   user="U0OTHERBOTUSER"),
        # cxslack updated its root (chat.update), and another bot edited its reply
        reply_with(thread, "Ev0ROOTEDIT", subtype="message_changed", hidden=True, text=None, user=None,
                   blocks=None, message={"type": "message", "ts": root, "thread_ts": root, "text": "CASE-1 ack",
                   "edited": {"user": "U0SANDBOXBOT", "ts": "1800000200.000100"}, **bot},
                   previous_message={"type": "message", "ts": root, "thread_ts": root, "text": "CASE-1", **bot}),
        reply_with(thread, "Ev0BOTEDIT", subtype="message_changed", hidden=True, text=None, user=None,
                   blocks=None, message={"type": "message", "subtype": "bot_message", "bot_id": "B0DEPLOYBOT",
                   "app_id": "A0DEPLOY", "ts": "1800000000.000900", "thread_ts": root, "text": "deploy 43"},
                   previous_message={"type": "message", "subtype": "bot_message", "bot_id": "B0DEPLOYBOT",
                   "ts": "1800000000.000900", "thread_ts": root, "text": "deploy 42"}),
    ]  # fmt: skip
    for envelope in events:
        result = handle(envelope)
        assert result is None or result.action == "skipped", (envelope["event_id"], result)
    assert comments(cx) == []


def test_a_link_shared_in_a_slack_connect_channel_is_placed_by_its_authorization(
    cx: Any, shared: dict[str, str]
) -> None:
    """In a Slack Connect channel (`is_ext_shared_channel`) the envelope's team_id is where the link
    was posted — another organisation's workspace; `authorizations` names the installation."""
    event = payload("link_shared", **shared)
    external = {**event, "team_id": "T0PARTNER", "context_team_id": "T0PARTNER", "is_ext_shared_channel": True,
                "authorizations": [{"enterprise_id": None, "team_id": "T0SANDBOX", "user_id": "U0SANDBOXBOT",
                                    "is_bot": True, "is_enterprise_install": False}]}  # fmt: skip
    external["event"] = {**event["event"], "user": "U0PARTNER"}
    assert make_handler()(external) == [case_uuid(2)]
    assert "P2" in unfurled(cx, shared["TS"])
    elsewhere = {**external, "authorizations": [{**external["authorizations"][0], "team_id": "T0PARTNER"}]}
    assert make_handler()(elsewhere) is None  # an installation cxslack does not hold: nothing to do


@pytest.mark.parametrize("reason", ["warning", "refresh_requested", "link_disabled"])
def test_a_socket_mode_disconnect_is_explained(reason: str) -> None:
    """Slack's `disconnect` message (docs.slack.dev/apis/events-api/using-socket-mode): the SDK
    reconnects; the operator is told why, and what to do when Socket Mode was turned off."""
    from cxslack.listen.socket_mode import SocketModeTransport

    lines: list[str] = []
    transport = SocketModeTransport.__new__(SocketModeTransport)
    transport.log = lines.append  # type: ignore[method-assign]
    transport._on_raw(json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "h"}}))
    transport._on_raw(json.dumps({"type": "hello", "num_connections": 1}))
    [line] = lines
    assert reason in line and (("cxslack listen --http" in line) is (reason == "link_disabled"))
