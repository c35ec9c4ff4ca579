"""`cxslack listen` as three replicas on one PostgreSQL: the sandbox's real events reach them
through a load balancer that hands every delivery to two replicas at once (as Slack's retries
do), and each reply still becomes exactly one comment, each pasted Case URL one unfurl; a replica
killed with SIGKILL mid-stream leaves its claimed work to the others; and a home's file state
copied over with `state copy` carries on without duplicates; and clicks on Case buttons, each
delivered to two replicas, act once."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from cxslack.sandbox.events import SIGNING_SECRET, signed_headers
from cxslack.store import Store

from .conftest import Cli, sandbox_admin, sandbox_messages, tracked_case, wait_for
from .postgres_fixture import assert_nowhere

pytestmark = pytest.mark.slow


@dataclass
class Replica:
    proc: subprocess.Popen[str]
    base: str
    log: list[str] = field(default_factory=list)

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.base}/healthz", timeout=5).json())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def start_replica(state_url: str) -> Replica:
    env = {**os.environ, "CXSLACK_SLACK_SIGNING_SECRET": SIGNING_SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxslack", "listen", "--http", "127.0.0.1:0", "--state-url", state_url],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    log: list[str] = []
    line = ""
    while "Listening" not in line:
        line = proc.stderr.readline()
        assert line, f"listen exited early: {''.join(log)}"
        log.append(line)
    url = re.search(r"(http://\S+)/slack/events", line)
    assert url is not None
    replica = Replica(proc, url.group(1), log)
    threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    return replica


class TwoAtOnce:
    """A load balancer that sends each delivery to two replicas at the same time (the second marked
    as Slack's retry), round robin; 200 when either stored it, 503 when neither could."""

    def __init__(self, replicas: list[Replica]):
        self.replicas = replicas
        self.turn = itertools.count()
        self.pool = ThreadPoolExecutor(8)
        balancer = self

        class Forward(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, answer = balancer.forward(self.path, body, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def forward(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        n = next(self.turn)
        pair = [self.replicas[n % len(self.replicas)], self.replicas[(n + 1) % len(self.replicas)]]
        keep = {
            k: v for k, v in headers.items() if k.lower().startswith("x-slack") or k.lower() == "content-type"
        }
        retry = {**keep, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}

        def send(replica: Replica, with_headers: dict[str, str]) -> tuple[int, bytes]:
            try:
                answer = httpx.post(f"{replica.base}{path}", content=body, headers=with_headers, timeout=5)
            except httpx.HTTPError:
                return 599, b""
            return answer.status_code, answer.content

        answers = list(self.pool.map(send, pair, [keep, retry]))
        return next((a for a in answers if a[0] == 200), (503, b""))

    def close(self) -> None:
        self.server.shutdown()
        self.pool.shutdown()


@dataclass
class Cluster:
    cx: Any
    cli: Cli
    roots: dict[str, dict[str, Any]]
    replicas: list[Replica]


@pytest.fixture
def cluster(cli: Cli, cx: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """Three Case threads posted with the state in PostgreSQL, three replicas behind `TwoAtOnce`."""
    monkeypatch.setenv("CXSLACK_STATE_URL", pg_url)
    roots = {"CASE-1": tracked_case(cli, cx)}
    for case in ("CASE-2", "CASE-3"):
        roots[case] = cli.ok("cases", "notify", case, "--connector", "on-call", "-o", "json").json()[
            "notifications"
        ][0]
    replicas = [start_replica(pg_url) for _ in range(3)]
    balancer = TwoAtOnce(replicas)
    sandbox_admin(cx, "events/subscribe", url=f"{balancer.url}/slack/events")
    try:
        yield Cluster(cx, cli, roots, replicas)
    finally:
        balancer.close()
        for replica in replicas:
            replica.stop()


def comments(cx: Any, case: str) -> list[str]:
    events = httpx.get(f"{cx.url}/_sandbox/coralogix/comments", params={"case": case}).json()["comments"]
    return [str(e["eventData"]["comment"].get("unsafeText", "")) for e in events]


def replies_in_order(cx: Any, roots: dict[str, dict[str, Any]], per_case: int) -> dict[str, list[str]]:
    """Post `per_case` replies in each Case thread, interleaved; returns what each Case should get."""
    wanted: dict[str, list[str]] = {case: [] for case in roots}
    for n in range(per_case):
        for case, root in roots.items():
            text = f"{case} update {n}"
            sandbox_admin(cx, "reply", channel=root["channel"], thread_ts=root["ts"], user="U0BOB", text=text)
            wanted[case].append(text)
    return wanted


def synced_texts(cx: Any, case: str) -> list[str]:
    return [t.split("\n")[1] for t in comments(cx, case)]


def test_three_replicas_each_delivery_twice_one_comment_per_reply_one_unfurl_per_link(
    cluster: Cluster,
) -> None:
    cx, cli = cluster.cx, cluster.cli
    wanted = replies_in_order(cx, cluster.roots, per_case=6)
    link = cli.ok("cases", "show", "CASE-2", "-o", "json").json()["link"]
    shared = [
        sandbox_admin(cx, "post", channel="general", user="U0BOB", text=f"see {link} ({n})") for n in range(4)
    ]
    for case, texts in wanted.items():
        assert wait_for(lambda case=case, texts=texts: synced_texts(cx, case) == texts or None, timeout=60)

    def unfurled() -> bool:
        messages = {m["ts"]: m for m in sandbox_messages(cx, "general")}
        return all(messages[s["ts"]].get("unfurls") for s in shared)

    wait_for(unfurled, timeout=30)
    assert cx.events.drain(20)
    time.sleep(0.5)  # a duplicate that was going to happen has happened by now
    for case, texts in wanted.items():
        assert synced_texts(cx, case) == texts  # each reply once, in the order they were written
    calls = httpx.get(f"{cx.url}/_sandbox/calls").json()["methods"]
    assert calls["chat.unfurl"] == len(shared)
    healths = [r.health() for r in cluster.replicas]
    assert all(h["storage"]["backend"] == "postgresql" and h["storage"]["ok"] for h in healths)
    assert sum(h["duplicates"] for h in healths) >= len(shared) + sum(map(len, wanted.values()))
    assert sum(1 for h in healths if h["processed"]) >= 2  # the work was spread


def test_a_replica_killed_mid_stream_leaves_nothing_lost_and_nothing_twice(cluster: Cluster) -> None:
    cx = cluster.cx
    # Each comment takes 0.3 s at Coralogix, so every replica is in the middle of one when the kill comes.
    sandbox_admin(cx, "faults", method="coralogix.cases.comment", kind="latency", seconds=0.3, count=1000)
    wanted = replies_in_order(cx, cluster.roots, per_case=5)
    victim = cluster.replicas[0]
    wait_for(lambda: sum(map(len, (comments(cx, c) for c in cluster.roots))) >= 3, timeout=60)
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait()
    for case, texts in wanted.items():
        assert wait_for(lambda case=case, texts=texts: synced_texts(cx, case) == texts or None, timeout=90)
    assert cx.events.drain(20)
    time.sleep(0.5)
    for case, texts in wanted.items():
        assert synced_texts(cx, case) == texts  # nothing lost, nothing twice, order kept
    assert any("handled" in line for line in victim.log), "the victim did some of the work before it died"


def test_a_file_state_copied_over_carries_on_without_duplicates(
    cli: Cli, cx: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tracked_case(cli, cx)  # on files
    first = sandbox_admin(
        cx, "reply", channel=root["channel"], thread_ts=root["ts"], user="U0BOB", text="before the move"
    )
    assert cli.ok("sync", "-o", "json").json()["counts"]["comment"] == 1
    link = cli.ok("cases", "show", "CASE-2", "-o", "json").json()["link"]
    copied = cli.ok("state", "copy", "--to", pg_url, "-o", "json").json()["parts"]
    assert (
        copied["threads"]["copied"] == 1
        and copied["replies"]["copied"] == 1
        and copied["cursors"]["copied"] == 1
    )

    monkeypatch.setenv("CXSLACK_STATE_URL", pg_url)
    replicas = [start_replica(pg_url) for _ in range(2)]
    balancer = TwoAtOnce(replicas)
    sandbox_admin(cx, "events/subscribe", url=f"{balancer.url}/slack/events")
    try:
        # the reply synced before the move, arriving as an event now (Slack delivering it late)
        late = {"type": "event_callback", "event_id": "EvLATE0001", "team_id": root.get("team", "T0SANDBOX"),
                "event": {"type": "message", "channel": root["channel"], "user": "U0BOB", "text": "before the move",
                          "ts": first["ts"], "thread_ts": root["ts"]}}  # fmt: skip
        body = json.dumps(late).encode()
        assert httpx.post(f"{balancer.url}/slack/events", content=body,
                          headers=signed_headers(SIGNING_SECRET, body)).status_code == 200  # fmt: skip
        sandbox_admin(
            cx, "reply", channel=root["channel"], thread_ts=root["ts"], user="U0BOB", text="after the move"
        )
        wait_for(
            lambda: synced_texts(cx, "CASE-1") == ["before the move", "after the move"] or None, timeout=60
        )
        shared = sandbox_admin(cx, "post", channel="general", user="U0BOB", text=f"see {link}")
        wait_for(
            lambda: any(m["ts"] == shared["ts"] and m.get("unfurls") for m in sandbox_messages(cx, "general"))
        )
        # the root is still the one thread: a notify on PostgreSQL replies in it, never posts a second root
        again = cli.ok("cases", "notify", "CASE-1", "--connector", "on-call", "-o", "json").json()[
            "notifications"
        ][0]
        assert again["action"] == "reply" and again["root_ts"] == root["ts"]
        assert cli.ok("sync", "-o", "json").json()["counts"]["comment"] == 0
        assert cx.events.drain(20)
        time.sleep(0.5)
        assert synced_texts(cx, "CASE-1") == ["before the move", "after the move"]
    finally:
        balancer.close()
        for replica in replicas:
            replica.stop()


def test_two_replicas_refreshing_a_rotating_token_at_once_refresh_it_once(
    cli: Cli, cx: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tokens that live 5 minutes are inside the 10-minute refresh margin from the start; the refresh
    # brings a 12-hour one.
    httpx.post(
        f"{cx.url}/_sandbox/settings", json={"token_rotation": True, "expires_in": 300}
    ).raise_for_status()
    monkeypatch.setenv("CXSLACK_STATE_URL", pg_url)
    roots = {"CASE-1": tracked_case(cli, cx)}
    roots["CASE-2"] = cli.ok("cases", "notify", "CASE-2", "--connector", "on-call", "-o", "json").json()[
        "notifications"
    ][0]
    httpx.post(f"{cx.url}/_sandbox/settings", json={"expires_in": 43200}).raise_for_status()
    before = httpx.get(f"{cx.url}/_sandbox/calls").json()["methods"].get("oauth.v2.access", 0)
    replicas = [start_replica(pg_url) for _ in range(2)]
    balancer = TwoAtOnce(replicas)
    sandbox_admin(cx, "events/subscribe", url=f"{balancer.url}/slack/events")
    try:
        wanted = replies_in_order(cx, roots, per_case=3)  # both replicas busy at once from the start
        for case, texts in wanted.items():
            assert wait_for(
                lambda case=case, texts=texts: synced_texts(cx, case) == texts or None, timeout=60
            )
        refreshes = httpx.get(f"{cx.url}/_sandbox/calls").json()["methods"].get("oauth.v2.access", 0) - before
        assert refreshes == 1  # one refresh; the other replica used the token it got
        assert all(r.health()["dead_lettered"] == 0 for r in replicas)  # both kept working
        assert sum(1 for r in replicas if r.health()["processed"]) == 2
        # The database holds the refreshed tokens (and the events' envelopes) only encrypted.
        tokens = Store().read_credentials()["integrations"]
        assert_nowhere(pg_url, *(t[k] for i in tokens.values() for t in i.values() if isinstance(t, dict)
                                 for k in ("access_token", "refresh_token") if t.get(k)))  # fmt: skip
    finally:
        balancer.close()
        for replica in replicas:
            replica.stop()


def test_clicks_reaching_two_replicas_at_once_act_once(cluster: Cluster) -> None:
    """Case buttons on replicas: every click delivered to two replicas at once, and double clicks
    besides — one acknowledge, one resolve, one note each."""
    cx = cluster.cx
    # the balancer the cluster subscribed for events takes the clicks too
    url = httpx.get(f"{cx.url}/_sandbox/events").json()["subscription"]["url"].removesuffix("/slack/events")
    sandbox_admin(
        cx, "events/subscribe", url=f"{url}/slack/events", interactivity_url=f"{url}/slack/interactivity"
    )
    for case, action, user in (("CASE-1", "acknowledge", "U0BOB"), ("CASE-2", "resolve", "U0CAROL")):
        root = cluster.roots[case]
        for _ in range(2):  # a double click
            sandbox_admin(
                cx,
                "click",
                channel=root["channel"],
                ts=root["ts"],
                action_id=f"cxslack_case_{action}",
                user=user,
            )
    actions = lambda: httpx.get(f"{cx.url}/_sandbox/coralogix/actions").json()["actions"]  # noqa: E731
    wait_for(lambda: len([a for a in actions() if a["status"] == 200]) >= 2, timeout=60)
    for root in (cluster.roots["CASE-1"], cluster.roots["CASE-2"]):
        wait_for(lambda root=root: any("from Slack by" in m["text"] for m in sandbox_messages(cx, root["channel"])
                                       if m.get("thread_ts") == root["ts"] and m["ts"] != root["ts"]), timeout=60)  # fmt: skip
    time.sleep(1.0)  # let any second action arrive
    done = [(a["verb"], a["path"].split("/")[2]) for a in actions() if a["status"] == 200]
    assert sorted(done) == [("POST", "acknowledged"), ("PUT", "resolved")]
    for root in (cluster.roots["CASE-1"], cluster.roots["CASE-2"]):
        notes = [m for m in sandbox_messages(cx, root["channel"])
                 if m.get("thread_ts") == root["ts"] and "from Slack by" in m["text"]]  # fmt: skip
        assert len(notes) == 1
