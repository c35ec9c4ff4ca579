"""`cxslack listen` end to end: the sandbox delivers real events to the real listener process,
over HTTP (signed) and over Socket Mode, and the handlers sync replies and unfurl Case URLs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cxslack.sandbox.events import SIGNING_SECRET

from .conftest import Cli, sandbox_admin, sandbox_messages, tracked_case, wait_for


def comments(sandbox: Any) -> list[str]:
    events = httpx.get(f"{sandbox.url}/_sandbox/coralogix/comments", params={"case": "CASE-1"}).json()[
        "comments"
    ]
    return [str(e["eventData"]["comment"].get("unsafeText", "")) for e in events]


@pytest.fixture(params=["http", "socket-mode"])
def listening(request: pytest.FixtureRequest, cli: Cli, cx: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A tracked Case thread, and `cxslack listen` receiving the sandbox's events over one transport."""
    root = tracked_case(cli, cx)
    env = {**os.environ, "CXSLACK_SLACK_SIGNING_SECRET": SIGNING_SECRET}
    args = ["--http", "127.0.0.1:0"]
    if request.param == "socket-mode":
        env["CXSLACK_SLACK_APP_TOKEN"] = sandbox_admin(cx, "app-token")["token"]
        args = ["--socket-mode"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxslack", "listen", *args], env=env, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    line = ""
    while "Listening" not in line and "Connected" not in line:
        line = proc.stderr.readline()
        assert line, "listen exited early"
    if request.param == "http":
        url = re.search(r"(http://\S+/slack/events)", line)
        assert url is not None
        sandbox_admin(cx, "events/subscribe", url=url.group(1))
    try:
        yield cx, root
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_replies_become_exactly_one_comment_each(listening: tuple[Any, dict[str, Any]]) -> None:
    cx, root = listening
    member = sandbox_admin(
        cx, "reply", channel=root["channel"], thread_ts=root["ts"], user="U0ALICE", text="Rolled back"
    )
    wait_for(lambda: len(comments(cx)) == 1)
    event_id = next(e["event_id"] for e in httpx.get(f"{cx.url}/_sandbox/events").json()["events"]
                    if e["envelope"]["event"].get("ts") == member["ts"])  # fmt: skip
    sandbox_admin(cx, "events/redeliver", event_id=event_id, count=3)  # the same event three more times
    sandbox_admin(
        cx,
        "reply",
        channel=root["channel"],
        thread_ts=root["ts"],
        user="U0EXTERNAL",
        text="Seen from our side",
    )
    texts = wait_for(lambda: (t := comments(cx)) and len(t) == 2 and t)
    assert "alice@example.com" in texts[0] and "Rolled back" in texts[0]
    assert "Seen from our side" in texts[1] and "erin@partner.example" not in texts[1]
    time.sleep(0.5)  # let any duplicate that would arrive do so
    assert len(comments(cx)) == 2


def test_a_pasted_case_url_unfurls(listening: tuple[Any, dict[str, Any]], cli: Cli) -> None:
    cx, _ = listening
    link = cli.ok("cases", "show", "CASE-2", "-o", "json").json()["link"]
    shared = sandbox_admin(cx, "post", channel="general", user="U0BOB", text=f"see {link}")

    def unfurled() -> str:
        message = next(m for m in sandbox_messages(cx, "general") if m["ts"] == shared["ts"])
        return str(message.get("unfurls") or "")

    assert "P2" in wait_for(unfurled)
    httpx.post(
        f"{cx.url}/_sandbox/coralogix/cases/update", json={"id": "CASE-2", "status": "CASE_STATUS_RESOLVED"}
    ).raise_for_status()
    cli.ok("cases", "notify", "CASE-2", "--connector", "on-call")
    assert "Resolved" in unfurled()


def test_a_bad_signature_is_refused_and_nothing_is_processed(cli: Cli, cx: Any) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "cxslack", "listen", "--http", "127.0.0.1:0"],
                            env={**os.environ, "CXSLACK_SLACK_SIGNING_SECRET": SIGNING_SECRET}, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stderr is not None
    line = ""
    while "Listening" not in line:
        line = proc.stderr.readline()
    url = re.search(r"(http://\S+)/slack/events", line)
    assert url is not None
    try:
        body = b'{"type": "event_callback", "event_id": "EvForged", "event": {"type": "message"}}'
        stale = str(int(time.time()) - 600)
        for headers in ({}, {"X-Slack-Signature": "v0=deadbeef", "X-Slack-Request-Timestamp": str(int(time.time()))},
                        {"X-Slack-Signature": "v0=deadbeef", "X-Slack-Request-Timestamp": stale}):  # fmt: skip
            assert (
                httpx.post(f"{url.group(1)}/slack/events", content=body, headers=headers).status_code == 401
            )
        health = httpx.get(f"{url.group(1)}/healthz").json()
        assert health["processed"] == 0 and health["inbox_depth"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_a_coralogix_outage_delays_but_loses_nothing(listening: tuple[Any, dict[str, Any]]) -> None:
    cx, root = listening
    sandbox_admin(cx, "faults", method="coralogix.cases.comment", kind="status", status=503, count=6)
    for n in range(3):
        sandbox_admin(
            cx,
            "reply",
            channel=root["channel"],
            thread_ts=root["ts"],
            user="U0BOB",
            text=f"during the outage {n}",
        )
    texts = wait_for(lambda: (t := comments(cx)) and len(t) == 3 and t, timeout=60)
    assert [t.split("\n")[1] for t in texts] == [f"during the outage {n}" for n in range(3)]
