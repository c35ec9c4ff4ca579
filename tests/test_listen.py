"""`cxslack listen`'s transport half: signatures, the durable inbox, retries, dead letters, shutdown,
Socket Mode, over real loopback sockets; handlers here are fakes (the real ones have their own tests)."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxslack.errors import AuthError, CxError
from cxslack.listen import Listener, RetryableError
from cxslack.sandbox import SIGNING_SECRET, SlackSandbox
from cxslack.sandbox.events import signed_headers
from cxslack.state.inbox import Inbox
from tests.conftest import Cli, scan

SECRET = "listen-test-signing-secret"
HTTP = httpx.Client(timeout=10)
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (\S+) (\S+) (\S+) → (handled|retrying in \S+|dead-letter) \((Ev\w+|-), "
)


def envelope(n: int, text: str = "hello") -> dict[str, Any]:
    """An event_callback as Slack sends it: event id Ev00000001, message ts 1700000000.000001, …"""
    return {
        "type": "event_callback",
        "event_id": f"Ev{n:08d}",
        "event_time": 1700000000 + n,
        "team_id": "T0SANDBOX",
        "api_app_id": "A0SANDBOX",
        "event": {
            "type": "message",
            "channel": "C0ALERTS",
            "user": "U0BOB",
            "text": text,
            "ts": f"1700000000.{n:06d}",
        },
    }


@dataclass
class FakeHandler:
    """Records every call; `failures[event_id]` are raised by the next calls for that event."""

    failures: dict[str, list[Exception]] = field(default_factory=dict)
    gate: threading.Event | None = None  # when given, every call waits for it
    calls: list[str] = field(default_factory=list)
    handled: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, envelope: dict[str, Any]) -> None:
        self.calls.append(envelope["event_id"])
        if self.gate is not None:
            self.gate.wait(10)
        pending = self.failures.get(envelope["event_id"])
        if pending:
            raise pending.pop(0)
        self.handled.append(envelope)

    @property
    def handled_ids(self) -> list[str]:
        return [e["event_id"] for e in self.handled]


@dataclass
class Running:
    listener: Listener
    port: int
    log: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(
        self,
        doc: dict[str, Any],
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        retry_num: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A delivery signed like Slack's (with `secret`, at `timestamp`), optionally marked as a retry."""
        body = json.dumps(doc).encode()
        sent = signed_headers(secret, body, retry_num=retry_num or 0, timestamp=timestamp)
        return HTTP.post(f"{self.url}/slack/events", content=body, headers={**sent, **(headers or {})})

    def health(self) -> dict[str, Any]:
        return dict(HTTP.get(f"{self.url}/healthz").json())


@pytest.fixture
def events_dir(tmp_path: Path) -> Path:
    return tmp_path / "events"


@pytest.fixture
def listen(events_dir: Path) -> Iterator[Callable[..., Running]]:
    """Start an in-process listener over HTTP with a fake handler; stopped after the test."""
    started: list[Listener] = []

    def start(handler: Callable[[dict[str, Any]], None], **options: Any) -> Running:
        log: list[str] = []
        listener = Listener(
            handler,
            Inbox(events_dir),
            signing_secret=SECRET,
            log=log.append,
            backoff=0.001,
            backoff_cap=0.004,
            **options,
        )
        started.append(listener)
        return Running(listener, listener.serve_http("127.0.0.1", 0), log)

    yield start
    for listener in started:
        listener.stop()


def stored(events_dir: Path, kind: str = "inbox") -> list[str]:
    return sorted(p.name for p in (events_dir / kind).iterdir())


# -- HTTP: signatures and answers ------------------------------------------------------------
def test_a_signed_event_is_acked_then_processed_with_one_log_line(listen: Callable[..., Running]) -> None:
    handler = FakeHandler()
    running = listen(handler)
    response = running.post(envelope(1))
    assert (response.status_code, response.content) == (200, b"")
    assert running.listener.drain(5)
    assert handler.handled == [envelope(1)]
    [line] = running.log
    match = LOG_LINE.match(line)
    assert match and match.groups() == ("message", "C0ALERTS", "1700000000.000001", "handled", "Ev00000001")
    assert SECRET not in line and "hello" not in line  # no secrets, no message text


@pytest.mark.parametrize(
    "tamper",
    [
        {"secret": "some-other-secret"},
        {"age": 310},  # older than Slack's 5 minutes: a replay
        {"age": -310},
        {"headers": {"X-Slack-Request-Timestamp": "yesterday"}},
        {"headers": {"X-Slack-Signature": "v0=" + "0" * 64}},
    ],
    ids=["wrong-secret", "stale", "future", "bad-timestamp", "forged"],
)
def test_a_bad_or_stale_signature_is_401_and_nothing_is_stored(
    listen: Callable[..., Running], events_dir: Path, tamper: dict[str, Any]
) -> None:
    handler = FakeHandler()
    running = listen(handler)
    if "age" in tamper:
        tamper = {"timestamp": int(time.time()) - tamper["age"]}
    response = running.post(envelope(1), **tamper)
    assert response.status_code == 401
    assert stored(events_dir) == [] and handler.calls == []
    assert running.health()["inbox_depth"] == 0


def test_an_unsigned_request_is_401(listen: Callable[..., Running], events_dir: Path) -> None:
    running = listen(FakeHandler())
    response = HTTP.post(f"{running.url}/slack/events", json=envelope(1))
    assert response.status_code == 401
    assert stored(events_dir) == []


def test_url_verification_answers_the_challenge(listen: Callable[..., Running]) -> None:
    running = listen(FakeHandler())
    challenge = {
        "type": "url_verification",
        "token": "legacy",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
    }
    response = running.post(challenge)
    assert (response.status_code, response.json()) == (200, {"challenge": challenge["challenge"]})
    assert HTTP.post(f"{running.url}/slack/events", json=challenge).status_code == 401


def test_app_rate_limited_is_acknowledged_and_told_to_the_operator(listen: Callable[..., Running]) -> None:
    """Slack's `app_rate_limited` (docs.slack.dev/apis/events-api, "Rate limiting"): a 200, nothing
    stored, and a log line saying events were dropped and how to catch up."""
    handler = FakeHandler()
    running = listen(handler)
    notice = {"token": "legacy", "type": "app_rate_limited", "team_id": "T0SANDBOX",
              "minute_rate_limited": 1518467820, "api_app_id": "A0SANDBOX"}  # fmt: skip
    assert running.post(notice).status_code == 200
    assert running.health()["rate_limited_notices"] == 1 and running.health()["inbox_depth"] == 0
    assert any("app_rate_limited" in line and "cxslack sync" in line for line in running.log)
    assert handler.calls == []


def test_routes_other_than_events_and_health(listen: Callable[..., Running]) -> None:
    running = listen(FakeHandler())
    assert HTTP.get(f"{running.url}/slack/events").status_code == 405
    assert HTTP.post(f"{running.url}/healthz").status_code == 405
    assert HTTP.get(f"{running.url}/").status_code == 404
    malformed = running.post({"type": "event_callback", "event": {}})  # no event_id
    assert malformed.status_code == 400


def test_the_ack_does_not_wait_for_the_handler(listen: Callable[..., Running]) -> None:
    gate = threading.Event()
    handler = FakeHandler(gate=gate)
    running = listen(handler)
    started = time.monotonic()
    assert [running.post(envelope(n)).status_code for n in (1, 2, 3)] == [200] * 3
    assert time.monotonic() - started < 1.0  # the handler is still blocked on the first event
    assert running.health()["inbox_depth"] == 3
    gate.set()
    assert running.listener.drain(5)
    assert handler.handled_ids == ["Ev00000001", "Ev00000002", "Ev00000003"]


def test_healthz_reports_progress_without_secrets(listen: Callable[..., Running]) -> None:
    running = listen(FakeHandler())
    running.post(envelope(1))
    running.post(envelope(1), retry_num=1)
    assert running.listener.drain(5)
    response = HTTP.get(f"{running.url}/healthz")
    health = response.json()
    assert response.status_code == 200 and SECRET not in response.text
    assert health["status"] == "ok" and health["transport"] == "http"
    assert (health["inbox_depth"], health["processed"], health["dead_lettered"]) == (0, 1, 0)
    assert (health["duplicates"], health["retries_received"]) == (1, 1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", health["last_event_at"])
    assert health["uptime_seconds"] >= 0


# -- the inbox: once, in order, durable ------------------------------------------------------
def test_slack_retries_of_an_event_are_processed_once(listen: Callable[..., Running]) -> None:
    handler = FakeHandler()
    running = listen(handler)
    statuses = [running.post(envelope(1), retry_num=n).status_code for n in (0, 1, 2, 3)]
    assert statuses == [200] * 4  # a retry is acknowledged, so Slack stops
    assert running.listener.drain(5)
    assert handler.calls == ["Ev00000001"]


def test_an_outage_is_retried_until_it_ends_and_order_is_kept(listen: Callable[..., Running]) -> None:
    outage = [RetryableError("coralogix_unavailable", "Coralogix answered 503") for _ in range(6)]
    handler = FakeHandler(failures={"Ev00000001": outage})
    running = listen(handler)
    for n in (1, 2, 3):
        assert running.post(envelope(n)).status_code == 200
    assert running.listener.drain(5)
    assert handler.calls == ["Ev00000001"] * 7 + ["Ev00000002", "Ev00000003"]
    assert handler.handled_ids == ["Ev00000001", "Ev00000002", "Ev00000003"]
    retrying = [line for line in running.log if "→ retrying" in line]
    assert len(retrying) == 6 and "attempt 6: Coralogix answered 503" in retrying[-1]
    delays = [float(delay) for line in retrying for delay in re.findall(r"retrying in ([\d.]+)s", line)]
    assert delays == sorted(delays) and max(delays) == 0.004  # exponential, then capped


def test_a_permanent_failure_is_dead_lettered_and_the_listener_moves_on(
    listen: Callable[..., Running], events_dir: Path
) -> None:
    handler = FakeHandler(failures={"Ev00000001": [ValueError("no such case")]})
    running = listen(handler)
    running.post(envelope(1))
    running.post(envelope(2))
    assert running.listener.drain(5)
    assert handler.handled_ids == ["Ev00000002"]
    [dead] = stored(events_dir, "dead")
    letter = json.loads((events_dir / "dead" / dead).read_text())
    assert (letter["error"], letter["envelope"]) == ("ValueError: no such case", envelope(1))
    assert "→ dead-letter (Ev00000001, ValueError: no such case)" in running.log[0]
    running.post(envelope(1), retry_num=1)  # a redelivery of the dead event is not run again
    assert running.listener.drain(5)
    assert handler.calls == ["Ev00000001", "Ev00000002"]
    assert running.health()["dead_lettered"] == 1


def test_events_survive_a_restart_and_are_still_deduplicated(
    listen: Callable[..., Running], events_dir: Path
) -> None:
    down = FakeHandler(failures={"Ev00000001": [RetryableError("slack_unavailable", "503")] * 1000})
    first = listen(down)
    first.post(envelope(1))
    first.post(envelope(2))
    while not any("→ retrying" in line for line in first.log):
        time.sleep(0.001)
    assert first.listener.stop()  # mid-outage: both events stay on disk
    assert len(stored(events_dir)) == 2

    handler = FakeHandler()
    second = listen(handler)
    assert second.listener.drain(5)
    assert handler.handled_ids == ["Ev00000001", "Ev00000002"]
    second.post(envelope(2), retry_num=1)  # processed before the restart's end: still known
    second.post(envelope(3))
    assert second.listener.drain(5)
    assert handler.handled_ids == ["Ev00000001", "Ev00000002", "Ev00000003"]
    assert stored(events_dir) == []


def test_a_processed_event_is_still_known_after_a_restart(listen: Callable[..., Running]) -> None:
    first_handler, second_handler = FakeHandler(), FakeHandler()
    first = listen(first_handler)
    first.post(envelope(1))
    assert first.listener.drain(5)
    first.listener.stop()
    second = listen(second_handler)
    assert second.post(envelope(1), retry_num=3).status_code == 200
    assert second.listener.drain(5)
    assert (first_handler.calls, second_handler.calls) == (["Ev00000001"], [])


def test_a_disk_that_refuses_the_event_answers_500_so_slack_retries(
    listen: Callable[..., Running], events_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxslack.state import inbox

    handler = FakeHandler()
    running = listen(handler)
    real_write = inbox.atomic_write

    def full_disk(path: Path, data: bytes, mode: int = 0o600) -> None:
        monkeypatch.setattr(inbox, "atomic_write", real_write)  # the next write works again
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(inbox, "atomic_write", full_disk)
    assert running.post(envelope(1)).status_code == 500
    assert running.post(envelope(1), retry_num=1).status_code == 200
    assert running.listener.drain(5)
    assert handler.calls == ["Ev00000001"]


def test_one_listener_per_state_directory(listen: Callable[..., Running], events_dir: Path) -> None:
    listen(FakeHandler())
    with pytest.raises(CxError) as info:
        Listener(FakeHandler(), Inbox(events_dir), signing_secret=SECRET)
    assert info.value.code == "listener_running"


# -- HTTP: button clicks (block_actions at /slack/interactivity) -----------------------------
def click(n: int = 1, action_ts: str = "1700000100.000001", kind: str = "block_actions") -> dict[str, Any]:
    """A block_actions payload as Slack posts it for a button on a message."""
    return {
        "type": kind,
        "user": {"id": "U0BOB", "username": "bob", "team_id": "T0SANDBOX"},
        "team": {"id": "T0SANDBOX", "domain": "sandbox-workspace"},
        "api_app_id": "A0SANDBOX",
        "container": {"type": "message", "message_ts": f"1700000000.{n:06d}", "channel_id": "C0ALERTS"},
        "channel": {"id": "C0ALERTS", "name": "alerts"},
        "message": {"ts": f"1700000000.{n:06d}", "text": "CASE-1"},
        "response_url": "https://hooks.slack.com/actions/T0SANDBOX/1/abc",
        "trigger_id": "1.2.3",
        "actions": [{"type": "button", "action_id": "case_acknowledge", "block_id": "case_actions",
                     "value": "CASE-1", "action_ts": action_ts, "text": {"type": "plain_text", "text": "Acknowledge"}}],
    }  # fmt: skip


def post_click(running: Running, payload: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {**signed_headers(secret, body), "Content-Type": "application/x-www-form-urlencoded"}
    return HTTP.post(f"{running.url}/slack/interactivity", content=body, headers=headers)


def test_a_signed_click_is_acked_stored_once_and_handed_over(
    listen: Callable[..., Running], events_dir: Path
) -> None:
    handler = FakeHandler()
    running = listen(handler)
    for _ in range(3):  # the same payload three times: one click
        response = post_click(running, click())
        assert (response.status_code, response.content) == (200, b"")
    assert post_click(running, click(action_ts="1700000101.000002")).status_code == 200  # a second click
    assert running.listener.drain(5)
    assert [e["type"] for e in handler.handled] == ["block_actions"] * 2
    assert handler.handled[0]["payload"] == click() and handler.handled[0]["event_id"].startswith("Ia")
    assert running.health()["duplicates"] == 2 and running.health()["clicks_received"] == 4
    line = running.log[0]
    assert " block_actions/case_acknowledge C0ALERTS 1700000000.000001 → handled (Ia" in line
    assert "U0BOB" not in line and "hooks.slack.com" not in line


def test_a_badly_signed_click_is_401_and_nothing_is_stored(
    listen: Callable[..., Running], events_dir: Path
) -> None:
    handler = FakeHandler()
    running = listen(handler)
    assert post_click(running, click(), secret="some-other-secret").status_code == 401
    assert (
        HTTP.post(f"{running.url}/slack/interactivity", data={"payload": json.dumps(click())}).status_code
        == 401
    )
    assert stored(events_dir) == [] and handler.calls == [] and running.health()["clicks_received"] == 0


def test_other_interactions_are_acked_and_dropped_and_junk_is_400(
    listen: Callable[..., Running], events_dir: Path
) -> None:
    running = listen(FakeHandler())
    assert post_click(running, click(kind="view_submission")).status_code == 200
    for body in (b"payload=%7Bnot-json", b"nothing=here", b"payload=%5B%5D"):
        headers = {**signed_headers(SECRET, body), "Content-Type": "application/x-www-form-urlencoded"}
        assert (
            HTTP.post(f"{running.url}/slack/interactivity", content=body, headers=headers).status_code == 400
        )
    assert stored(events_dir) == []


# -- through the sandbox ---------------------------------------------------------------------
def admin(sb: SlackSandbox, path: str, **body: Any) -> dict[str, Any]:
    response = HTTP.post(f"{sb.url}/_sandbox/{path}", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_sandbox_deliveries_with_the_wrong_secret_are_refused(
    sandbox: SlackSandbox, listen: Callable[..., Running], events_dir: Path
) -> None:
    """A listener with another signing secret than Slack's: Slack's url_verification already fails,
    so Slack never saves the request URL, and the listener keeps nothing."""
    handler = FakeHandler()
    running = listen(handler)
    refused = HTTP.post(
        f"{sandbox.url}/_sandbox/events/subscribe",
        json={"url": f"{running.url}/slack/events", "retry_delay": 0, "signing_secret": "wrong"},
    )
    assert (refused.status_code, refused.json()["error"]) == (400, "url_verification_failed")
    admin(sandbox, "post", channel="alerts", text="hello")
    assert HTTP.get(f"{sandbox.url}/_sandbox/events").json()["events"] == []
    assert handler.calls == [] and stored(events_dir) == []


def test_socket_mode_end_to_end(sandbox: SlackSandbox, events_dir: Path) -> None:
    token = admin(sandbox, "app-token")["token"]
    handler = FakeHandler()
    log: list[str] = []
    with Listener(
        handler, Inbox(events_dir), app_token=token, api_url=sandbox.api_url, log=log.append
    ) as listener:
        listener.serve_socket_mode()
        posted = admin(sandbox, "post", channel="alerts", text="from a person")
        assert sandbox.events.drain(10) and listener.drain(5)
        [delivery] = HTTP.get(f"{sandbox.url}/_sandbox/events").json()["events"]
        assert (
            delivery["outcome"] == "delivered" and "acked" in delivery["attempts"][-1]
        )  # the ack reached Slack
        admin(sandbox, "events/redeliver", event_id=delivery["event_id"], count=2)
        assert sandbox.events.drain(10) and listener.drain(5)
        assert listener.health()["duplicates"] == 2
    [handled] = handler.handled
    assert handled["event_id"] == delivery["event_id"] and handled["event"]["ts"] == posted["ts"]
    assert len(log) == 1 and "→ handled" in log[0]


def test_sandbox_clicks_reach_the_listener_over_both_transports(
    sandbox: SlackSandbox, listen: Callable[..., Running], tmp_path: Path
) -> None:
    bot = sandbox.issue_token()["access_token"]
    blocks = [{"type": "actions", "block_id": "b", "elements": [
        {"type": "button", "action_id": "case_acknowledge", "value": "CASE-1", "text": {"type": "plain_text", "text": "Acknowledge"}}]}]  # fmt: skip
    posted = HTTP.post(sandbox.api_url + "chat.postMessage", headers={"Authorization": f"Bearer {bot}"},
                       json={"channel": "alerts", "text": "CASE-1", "blocks": blocks}).json()  # fmt: skip
    over_http = FakeHandler()
    running = listen(over_http)
    admin(
        sandbox,
        "events/subscribe",
        interactivity_url=f"{running.url}/slack/interactivity",
        signing_secret=SECRET,
    )
    sent = admin(sandbox, "click", channel="alerts", ts=posted["ts"], action_id="case_acknowledge")
    admin(sandbox, "events/redeliver", event_id=sent["delivery"], count=2)
    assert sandbox.events.drain(10) and running.listener.drain(5)
    assert [e["payload"] for e in over_http.handled] == [sent["payload"]]

    over_socket = FakeHandler()
    token = admin(sandbox, "app-token")["token"]
    with Listener(over_socket, Inbox(tmp_path / "socket-events"), app_token=token, api_url=sandbox.api_url,
                  log=lambda line: None) as listener:  # fmt: skip
        listener.serve_socket_mode()
        sent = admin(sandbox, "click", channel="alerts", ts=posted["ts"], action_id="case_acknowledge")
        assert sandbox.events.drain(10)
        admin(sandbox, "events/redeliver", event_id=sent["delivery"], count=2)
        assert sandbox.events.drain(10) and listener.drain(5)
    assert [e["payload"] for e in over_socket.handled if e["type"] == "block_actions"] == [sent["payload"]]


def test_socket_mode_reconnects_when_slack_asks(sandbox: SlackSandbox, events_dir: Path) -> None:
    token = admin(sandbox, "app-token")["token"]
    handler = FakeHandler()
    with Listener(
        handler, Inbox(events_dir), app_token=token, api_url=sandbox.api_url, log=lambda line: None
    ) as listener:
        listener.serve_socket_mode()
        assert admin(sandbox, "events/disconnect")["connections"] == 1
        admin(sandbox, "post", channel="alerts", text="after the refresh")
        assert sandbox.events.drain(10) and listener.drain(5)
    assert [e["event"]["text"] for e in handler.handled] == ["after the refresh"]
    assert HTTP.get(f"{sandbox.url}/_sandbox/calls").json()["methods"]["apps.connections.open"] >= 2


def test_socket_mode_with_a_refused_token(sandbox: SlackSandbox, events_dir: Path) -> None:
    listener = Listener(
        FakeHandler(),
        Inbox(events_dir),
        app_token="xapp-1-A0SANDBOX-1-0000",
        api_url=sandbox.api_url,
        log=lambda line: None,
    )
    with listener, pytest.raises(AuthError) as info:
        listener.serve_socket_mode()
    assert info.value.code == "app_token_invalid"


# -- the command -----------------------------------------------------------------------------
class ListenProcess:
    """`python -m cxslack listen …` in the background, its stderr read line by line."""

    def __init__(self, *args: str, env: dict[str, str], stdin: str = ""):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cxslack", "listen", *args],
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(stdin)
        self.proc.stdin.close()
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            self.stderr.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def finish(self, timeout: float = 20) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        while not self.lines.empty():
            self.stderr.append(self.lines.get())
        assert self.proc.stdout is not None
        scan("cxslack listen (subprocess)", self.proc.stdout.read(), "".join(self.stderr))
        return code

    def __enter__(self) -> ListenProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def test_sigterm_stops_the_listener_with_exit_0(slack: SlackSandbox) -> None:
    with ListenProcess("--http", "127.0.0.1:0", env={"CXSLACK_SLACK_SIGNING_SECRET": SIGNING_SECRET}) as proc:
        port = proc.wait_for(r"on http://127\.0\.0\.1:(\d+)/slack/events and button clicks").group(1)
        admin(slack, "events/subscribe", url=f"http://127.0.0.1:{port}/slack/events")
        admin(slack, "post", channel="alerts", text="hello")
        proc.wait_for(r"message C0ALERTS \S+ → handled")
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.finish() == 0
    assert "Stopped: 1 handled, 0 dead-lettered, 0 waiting" in proc.stderr[-1]


def test_once_exits_after_the_first_event_with_the_secret_from_stdin(slack: SlackSandbox) -> None:
    with ListenProcess(
        "--http", "127.0.0.1:0", "--once", "--signing-secret-stdin", env={}, stdin=SIGNING_SECRET + "\n"
    ) as proc:
        port = proc.wait_for(r"on http://127\.0\.0\.1:(\d+)/slack/events").group(1)
        admin(slack, "events/subscribe", url=f"http://127.0.0.1:{port}/slack/events")
        admin(slack, "post", channel="alerts", text="hello")
        assert proc.finish() == 0
    assert any(LOG_LINE.match(line) for line in proc.stderr)


def test_once_over_socket_mode(slack: SlackSandbox) -> None:
    token = admin(slack, "app-token")["token"]
    with ListenProcess("--socket-mode", "--once", env={"CXSLACK_SLACK_APP_TOKEN": token}) as proc:
        proc.wait_for(r"Connected to Slack over Socket Mode")
        admin(slack, "post", channel="alerts", text="hello")
        assert proc.finish() == 0
    assert any(LOG_LINE.match(line) for line in proc.stderr)


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--http", "127.0.0.1:0"], {}, "CXSLACK_SLACK_SIGNING_SECRET"),
        (["--socket-mode"], {}, "CXSLACK_SLACK_APP_TOKEN"),
        (["--socket-mode"], {"CXSLACK_SLACK_APP_TOKEN": "xoxb-not-an-app-token"}, "xapp-"),
        (["--socket-mode", "--http", "127.0.0.1:0"], {}, "--http"),
        (["--http", "3000"], {"CXSLACK_SLACK_SIGNING_SECRET": SECRET}, "HOST:PORT"),
        (["--http", "127.0.0.1:99999"], {"CXSLACK_SLACK_SIGNING_SECRET": SECRET}, "HOST:PORT"),
        (["--http", "::1:3000"], {"CXSLACK_SLACK_SIGNING_SECRET": SECRET}, "[::1]:3000"),
    ],
)
def test_usage_errors_exit_2_and_say_what_is_missing(
    cli: Cli, args: list[str], env: dict[str, str], named: str
) -> None:
    run = cli("listen", *args, env=env)
    assert run.exit_code == 2
    assert named in run.stderr
    assert "xoxb-not" not in run.stderr


def test_a_port_in_use_is_exit_1(cli: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = cli("listen", "--http", f"127.0.0.1:{port}", env={"CXSLACK_SLACK_SIGNING_SECRET": SECRET})
    assert run.exit_code == 1 and f"cannot listen on 127.0.0.1 port {port}" in run.stderr
