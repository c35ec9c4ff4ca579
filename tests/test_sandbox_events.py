"""The sandbox's Events API: signed HTTP deliveries with Slack's retries, and Socket Mode over a WebSocket."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from cxslack.sandbox import SIGNING_SECRET, SlackSandbox

HTTP = httpx.Client(timeout=10)


def admin(sb: SlackSandbox, path: str, **body: Any) -> dict[str, Any]:
    response = HTTP.post(f"{sb.url}/_sandbox/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def web_api(sb: SlackSandbox, token: str, method: str, **body: Any) -> dict[str, Any]:
    answer = HTTP.post(sb.api_url + method, headers={"Authorization": f"Bearer {token}"}, json=body).json()
    assert answer["ok"], answer
    return dict(answer)


def events(sb: SlackSandbox) -> list[dict[str, Any]]:
    return list(HTTP.get(f"{sb.url}/_sandbox/events").json()["events"])


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def envelope(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def challenge(self) -> str | None:
        """The challenge of a url_verification request (None for anything else)."""
        try:
            doc = json.loads(self.body)
        except ValueError:
            return None  # a form post (interactivity), not JSON
        return (
            str(doc["challenge"]) if isinstance(doc, dict) and doc.get("type") == "url_verification" else None
        )


@dataclass
class Receiver:
    """A request URL for the sandbox: records every request and answers from a script."""

    statuses: list[int] = field(default_factory=list)  # answers for the next requests; then 200
    slow_first: float = 0.0  # seconds the first request waits before answering
    gate: threading.Event | None = None  # when set, every request waits for it
    requests: list[Received] = field(default_factory=list)
    verifications: list[Received] = field(default_factory=list)  # url_verification requests
    url: str = ""

    def answer(self, received: Received) -> int:
        if received.challenge is not None:
            self.verifications.append(received)
            return self.statuses.pop(0) if self.statuses else 200
        self.requests.append(received)
        if self.gate is not None:
            self.gate.wait(10)
        if self.slow_first and len(self.requests) == 1:
            time.sleep(self.slow_first)
        return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recorder = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received = Received(dict(self.headers.items()), body)
            status = recorder.answer(received)
            # a request URL answers Slack's url_verification with the challenge, as Bolt does
            reply = received.challenge or "" if status == 200 else ""
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    yield recorder
    if recorder.gate is not None:
        recorder.gate.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def subscribed(sandbox: SlackSandbox, receiver: Receiver) -> Receiver:
    admin(sandbox, "events/subscribe", url=receiver.url, retry_delay=0)
    return receiver


def delivered(sb: SlackSandbox, receiver: Receiver) -> list[dict[str, Any]]:
    assert sb.events.drain(10)
    return [r.envelope for r in receiver.requests]


# -- HTTP ----------------------------------------------------------------------------------
def test_http_delivery_is_an_event_callback_signed_like_slack(
    sandbox: SlackSandbox, subscribed: Receiver
) -> None:
    posted = admin(sandbox, "post", channel="alerts", user="U0BOB", text="disk full on db-1")
    assert sandbox.events.drain(10)
    [request] = subscribed.requests
    assert SignatureVerifier(SIGNING_SECRET).is_valid_request(request.body, request.headers)
    assert request.headers["Content-Type"] == "application/json"
    assert "X-Slack-Retry-Num" not in request.headers
    envelope = request.envelope
    assert envelope["type"] == "event_callback"
    assert envelope["event_id"].startswith("Ev")
    assert (envelope["team_id"], envelope["api_app_id"]) == ("T0SANDBOX", "A0SANDBOX")
    assert isinstance(envelope["event_time"], int)
    assert {"token", "authorizations", "is_ext_shared_channel", "event_context", "context_team_id"} <= set(
        envelope
    )
    assert envelope["authorizations"][0]["is_bot"] is True and envelope["event_context"].startswith("4-")
    event = envelope["event"]
    assert event["type"] == "message" and "subtype" not in event
    assert (event["channel"], event["user"], event["text"]) == ("C0ALERTS", "U0BOB", "disk full on db-1")
    assert event["ts"] == event["event_ts"] == posted["ts"]
    assert event["channel_type"] == "channel"


def test_every_change_in_a_channel_is_an_event(sandbox: SlackSandbox, subscribed: Receiver) -> None:
    root = admin(sandbox, "post", channel="alerts", text="see https://eu2.coralogix.com/#/cases/42 now")
    reply = admin(sandbox, "reply", channel="alerts", thread_ts=root["ts"], user="U0CAROL", text="on it")
    bot = sandbox.issue_token()["access_token"]
    metadata = {"event_type": "cx_case", "event_payload": {"case": "42"}}
    posted = web_api(sandbox, bot, "chat.postMessage", channel="alerts", text="Case 42", metadata=metadata)
    web_api(sandbox, bot, "chat.update", channel=posted["channel"], ts=posted["ts"], text="Case 42 ✔")
    admin(sandbox, "edit", channel="alerts", ts=reply["ts"], text="on it (edited)")
    admin(sandbox, "delete", channel="alerts", ts=reply["ts"])

    envelopes = delivered(sandbox, subscribed)
    kinds = [(e["event"]["type"], e["event"].get("subtype")) for e in envelopes]
    assert kinds == [
        ("message", None), ("link_shared", None), ("message", None), ("message", None),
        ("message", "message_changed"), ("message", "message_changed"), ("message", "message_deleted"),
    ]  # fmt: skip
    assert len({e["event_id"] for e in envelopes}) == len(envelopes)
    _, link, in_thread, from_bot, updated, edited, deleted = (e["event"] for e in envelopes)
    assert link == {
        "type": "link_shared", "channel": "C0ALERTS", "is_bot_user_member": True, "user": "U0BOB",
        "message_ts": root["ts"],
        "unfurl_id": root["unfurl_id"], "source": "conversations_history", "event_ts": root["ts"],
        "links": [{"url": "https://eu2.coralogix.com/#/cases/42", "domain": "eu2.coralogix.com"}],
    }  # fmt: skip
    assert (in_thread["thread_ts"], in_thread["parent_user_id"], in_thread["user"]) == (
        root["ts"],
        "U0BOB",
        "U0CAROL",
    )
    assert (from_bot["bot_id"], from_bot["app_id"], from_bot["metadata"]) == (
        "B0SANDBOX",
        "A0SANDBOX",
        metadata,
    )
    assert "subtype" not in from_bot
    assert (updated["previous_message"]["text"], updated["message"]["text"]) == ("Case 42", "Case 42 ✔")
    assert updated["message"]["ts"] == posted["ts"]
    assert (edited["previous_message"]["text"], edited["message"]["text"]) == ("on it", "on it (edited)")
    assert (deleted["deleted_ts"], deleted["previous_message"]["text"]) == (reply["ts"], "on it (edited)")


def test_a_thread_parent_with_replies_cannot_be_deleted(sandbox: SlackSandbox) -> None:
    root = admin(sandbox, "post", channel="alerts", text="root")
    admin(sandbox, "reply", channel="alerts", thread_ts=root["ts"], text="reply")
    response = HTTP.post(f"{sandbox.url}/_sandbox/delete", json={"channel": "alerts", "ts": root["ts"]})
    assert (response.status_code, response.json()["error"]) == (409, "has_replies")


def test_failed_deliveries_are_retried_three_times_with_slacks_headers(
    sandbox: SlackSandbox, subscribed: Receiver
) -> None:
    subscribed.statuses = [500, 503]
    admin(sandbox, "post", channel="alerts", text="first")
    assert sandbox.events.drain(10)
    retries = [
        (r.headers.get("X-Slack-Retry-Num"), r.headers.get("X-Slack-Retry-Reason"))
        for r in subscribed.requests
    ]
    assert retries == [(None, None), ("1", "http_error"), ("2", "http_error")]
    assert len({r.envelope["event_id"] for r in subscribed.requests}) == 1
    [record] = events(sandbox)
    assert record["outcome"] == "delivered"
    assert [a.get("status") for a in record["attempts"]] == [500, 503, 200]

    subscribed.statuses = [500] * 4
    admin(sandbox, "post", channel="alerts", text="second")
    assert sandbox.events.drain(10)
    assert len(subscribed.requests) == 3 + 4  # the first try and three retries
    assert events(sandbox)[-1]["outcome"] == "failed"


def test_a_slow_answer_is_retried_as_a_timeout(sandbox: SlackSandbox, receiver: Receiver) -> None:
    admin(sandbox, "events/subscribe", url=receiver.url, retry_delay=0, timeout=0.1)
    receiver.slow_first = 0.3
    admin(sandbox, "post", channel="alerts", text="hello")
    assert sandbox.events.drain(10)
    assert receiver.requests[1].headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert [a.get("error") for a in events(sandbox)[0]["attempts"]][:1] == ["timeout"]


def test_delivery_never_blocks_the_request_that_made_the_event(
    sandbox: SlackSandbox, subscribed: Receiver
) -> None:
    subscribed.gate = threading.Event()
    started = time.monotonic()
    admin(sandbox, "post", channel="alerts", text="one")
    admin(sandbox, "post", channel="alerts", text="two")
    assert time.monotonic() - started < 1.0
    subscribed.gate.set()
    assert [e["event"]["text"] for e in delivered(sandbox, subscribed)] == ["one", "two"]


def test_redeliver_sends_the_same_event_as_retries(sandbox: SlackSandbox, subscribed: Receiver) -> None:
    admin(sandbox, "post", channel="alerts", text="hello")
    assert sandbox.events.drain(10)
    [first] = events(sandbox)
    assert admin(sandbox, "events/redeliver", event_id=first["event_id"], count=2)["redelivered"] == 2
    envelopes = delivered(sandbox, subscribed)
    assert [e["event_id"] for e in envelopes] == [first["event_id"]] * 3
    assert [r.headers.get("X-Slack-Retry-Num") for r in subscribed.requests] == [None, "1", "2"]
    missing = HTTP.post(f"{sandbox.url}/_sandbox/events/redeliver", json={"event_id": "EvNOPE"})
    assert (missing.status_code, missing.json()["error"]) == (404, "event_not_found")


def test_another_signing_secret_plays_a_misconfigured_app(sandbox: SlackSandbox, receiver: Receiver) -> None:
    admin(sandbox, "events/subscribe", url=receiver.url, signing_secret="some-other-secret")
    admin(sandbox, "post", channel="alerts", text="hello")
    assert sandbox.events.drain(10)
    [request] = receiver.requests
    assert not SignatureVerifier(SIGNING_SECRET).is_valid_request(request.body, request.headers)
    assert "signing_secret" not in json.dumps(HTTP.get(f"{sandbox.url}/_sandbox/events").json())


# -- url_verification -------------------------------------------------------------------------
def test_a_request_url_is_saved_only_after_it_answers_the_challenge(
    sandbox: SlackSandbox, receiver: Receiver
) -> None:
    admin(sandbox, "events/subscribe", url=receiver.url)
    [check] = receiver.verifications
    assert SignatureVerifier(SIGNING_SECRET).is_valid_request(check.body, check.headers)
    assert set(check.envelope) == {"token", "challenge", "type"} and check.envelope["challenge"]

    receiver.statuses = [401]  # an app that refuses the request (say, a wrong signing secret)
    refused = HTTP.post(f"{sandbox.url}/_sandbox/events/subscribe", json={"url": receiver.url + "?v=2"})
    assert (refused.status_code, refused.json()["error"]) == (400, "url_verification_failed")
    assert HTTP.get(f"{sandbox.url}/_sandbox/events").json()["subscription"]["url"] == receiver.url
    nobody = HTTP.post(f"{sandbox.url}/_sandbox/events/subscribe", json={"url": "http://127.0.0.1:9/x"})
    assert nobody.json()["error"] == "url_verification_failed"


# -- which events reach the app ------------------------------------------------------------------
def test_message_events_come_only_from_channels_the_bot_is_in(
    sandbox: SlackSandbox, subscribed: Receiver
) -> None:
    admin(sandbox, "post", channel="payments-alerts", text="the bot is not here")
    admin(sandbox, "post", channel="secure-ops", text="nor here")
    token = sandbox.issue_token()["access_token"]
    web_api(
        sandbox, token, "chat.postMessage", channel="payments-alerts", text="posted by name"
    )  # not a member
    assert delivered(sandbox, subscribed) == []
    admin(sandbox, "invite", channel="secure-ops")
    web_api(sandbox, token, "conversations.join", channel="C0PAYMENTSALERTS")
    admin(sandbox, "post", channel="payments-alerts", text="now it is")
    admin(sandbox, "post", channel="secure-ops", text="here too")
    assert [e["event"]["channel"] for e in delivered(sandbox, subscribed)] == [
        "C0PAYMENTSALERTS",
        "G0SECUREOPS",
    ]


def test_link_shared_comes_from_any_channel_saying_whether_the_bot_is_in_it(
    sandbox: SlackSandbox, subscribed: Receiver
) -> None:
    admin(
        sandbox, "post", channel="payments-alerts", text="see https://team.app.coralogix.com/#/cases/CASE-1"
    )
    [shared] = [e["event"] for e in delivered(sandbox, subscribed)]
    assert shared["type"] == "link_shared" and shared["is_bot_user_member"] is False
    assert shared["source"] == "conversations_history" and shared["channel"] == "C0PAYMENTSALERTS"


def test_links_typed_in_the_composer_arrive_from_channel_composer(
    sandbox: SlackSandbox, subscribed: Receiver
) -> None:
    typed = admin(sandbox, "compose", text="https://team.app.coralogix.com/#/cases/CASE-2", user="U0CAROL")
    [event] = [e["event"] for e in delivered(sandbox, subscribed)]
    assert event["channel"] == "COMPOSER" and event["source"] == "composer"
    assert event["unfurl_id"] == typed["unfurl_id"] and not event["message_ts"].replace(".", "").isdigit()
    token = sandbox.issue_token()["access_token"]
    unfurls = {"https://team.app.coralogix.com/#/cases/CASE-2": {"text": "CASE-2"}}
    answer = HTTP.post(sandbox.api_url + "chat.unfurl", headers={"Authorization": f"Bearer {token}"},
                       json={"unfurl_id": event["unfurl_id"], "source": "composer", "unfurls": unfurls}).json()  # fmt: skip
    assert answer["ok"] is True


def test_nothing_is_delivered_or_kept_without_a_subscriber(sandbox: SlackSandbox) -> None:
    admin(sandbox, "post", channel="alerts", text="hello")
    listing = HTTP.get(f"{sandbox.url}/_sandbox/events").json()
    assert (listing["transport"], listing["events"]) == (None, [])


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"url": "ftp://x"}, "invalid_url"),
        ({"verbose": True}, "unknown_setting"),
        ({"timeout": -1}, "invalid_setting"),
    ],
)
def test_subscribe_refuses_bad_settings(sandbox: SlackSandbox, body: dict[str, Any], error: str) -> None:
    response = HTTP.post(f"{sandbox.url}/_sandbox/events/subscribe", json=body)
    assert (response.status_code, response.json()["error"]) == (400, error)


def test_reset_forgets_subscription_history_and_app_tokens(
    sandbox: SlackSandbox, subscribed: Receiver
) -> None:
    token = admin(sandbox, "app-token")["token"]
    admin(sandbox, "post", channel="alerts", text="hello")
    assert sandbox.events.drain(10)
    admin(sandbox, "reset")
    assert HTTP.get(f"{sandbox.url}/_sandbox/events").json()["events"] == []
    assert open_connection(sandbox, token)["error"] == "invalid_auth"


# -- Socket Mode ---------------------------------------------------------------------------
def open_connection(sb: SlackSandbox, token: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return dict(HTTP.post(sb.api_url + "apps.connections.open", headers=headers).json())


@contextmanager
def socket(sb: SlackSandbox) -> Iterator[ClientConnection]:
    """A Socket Mode connection as an app opens one, past its `hello`."""
    answer = open_connection(sb, admin(sb, "app-token")["token"])
    with connect(answer["url"], open_timeout=5) as connection:
        assert json.loads(connection.recv(timeout=5))["type"] == "hello"
        yield connection


def test_apps_connections_open_takes_only_app_level_tokens(sandbox: SlackSandbox) -> None:
    token = admin(sandbox, "app-token")["token"]
    assert token[:5] == "xapp-"
    answer = open_connection(sandbox, token)
    assert answer["ok"] and answer["url"].startswith(
        f"ws://127.0.0.1:{sandbox.events._ensure_gateway().port}/link/?ticket="
    )
    bot = sandbox.issue_token()["access_token"]
    assert open_connection(sandbox, bot)["error"] == "not_allowed_token_type"
    assert open_connection(sandbox, None)["error"] == "not_authed"
    assert open_connection(sandbox, "xapp-1-A0SANDBOX-0-unknown")["error"] == "invalid_auth"
    assert HTTP.get(f"{sandbox.url}/_sandbox/events").json()["transport"] == "socket"


def test_socket_mode_delivers_envelopes_and_resends_unacked_ones(sandbox: SlackSandbox) -> None:
    with socket(sandbox) as connection:
        admin(sandbox, "events/subscribe", socket_mode=True, ack_timeout=0.2)
        posted = admin(sandbox, "post", channel="alerts", text="hello")
        envelope = json.loads(connection.recv(timeout=5))
        assert envelope["type"] == "events_api" and envelope["accepts_response_payload"] is False
        assert envelope["retry_attempt"] == 0
        payload = envelope["payload"]
        assert payload["type"] == "event_callback" and payload["event"]["ts"] == posted["ts"]
        # not acked within ack_timeout: the same event again, in a new envelope
        again = json.loads(connection.recv(timeout=5))
        assert (again["retry_attempt"], again["retry_reason"]) == (1, "timeout")
        assert again["payload"]["event_id"] == payload["event_id"]
        assert again["envelope_id"] != envelope["envelope_id"]
        connection.send(json.dumps({"envelope_id": again["envelope_id"]}))
        assert sandbox.events.drain(5)
    [record] = events(sandbox)
    assert record["outcome"] == "delivered" and record["transport"] == "socket"
    assert record["attempts"][-1]["acked"] == again["envelope_id"]


def test_socket_events_wait_for_a_connection(sandbox: SlackSandbox) -> None:
    with socket(sandbox):
        pass
    admin(sandbox, "post", channel="alerts", text="while nobody is connected")
    with socket(sandbox) as connection:
        envelope = json.loads(connection.recv(timeout=5))
        assert envelope["payload"]["event"]["text"] == "while nobody is connected"
        connection.send(json.dumps({"envelope_id": envelope["envelope_id"]}))
        assert sandbox.events.drain(5)


def test_a_ticket_opens_one_connection_and_disconnect_asks_to_reconnect(sandbox: SlackSandbox) -> None:
    url = open_connection(sandbox, admin(sandbox, "app-token")["token"])["url"]
    with connect(url, open_timeout=5) as connection:
        connection.recv(timeout=5)  # hello
        with pytest.raises(InvalidStatus):
            connect(url, open_timeout=5)
        assert admin(sandbox, "events/disconnect")["connections"] == 1
        assert json.loads(connection.recv(timeout=5))["type"] == "disconnect"
