"""The state interface in PostgreSQL, against a real throwaway server: the same contract as the
files (parametrized over both), and what only a shared database must do — dedupe and claims
across replicas, per-thread order, a killed replica's claim coming back, one token refresh,
pacing shared between processes, schema migrations, `state copy`, and a database that goes away."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxslack.state import open_state, use_state_url
from cxslack.state.interface import Accepted, Outcome, State, StateUnavailable, order_key
from cxslack.state.records import (
    CaseSettings,
    CaseThread,
    ChartShare,
    InDoubtPost,
    PendingRoot,
    PreviewPlace,
    SyncedReply,
    TakenAction,
    chart_key,
)
from cxslack.store import Store
from tests.conftest import Cli
from tests.postgres_fixture import PostgresServer

NEVER = lambda: False  # noqa: E731  (head's `interrupted`)
STATE_KEY = "a-state-key-for-the-tests-0123456789abcdef"


@pytest.fixture(autouse=True)
def state_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """Tokens and envelopes in the database are sealed: these tests seal with a key of their own
    (CXSLACK_STATE_KEY); the replica tests derive it from the sandbox app's client secret."""
    monkeypatch.setenv("CXSLACK_STATE_KEY", STATE_KEY)
    return STATE_KEY


def envelope(n: int, thread: str = "1700000000.000100", channel: str = "C0CASES") -> dict[str, Any]:
    return {
        "type": "event_callback",
        "event_id": f"Ev{n:08d}",
        "event": {"type": "message", "channel": channel, "ts": f"1700000001.{n:06d}", "thread_ts": thread},
    }


@pytest.fixture(params=["files", "postgres"])
def state(request: pytest.FixtureRequest) -> Iterator[State]:
    if request.param == "files":
        yield open_state(Store())
        return
    url = request.getfixturevalue("pg_url")
    with use_state_url(url):
        yield open_state(Store())


# -- the contract, on both -----------------------------------------------------------------------
def test_case_threads_pending_then_mapped(state: State) -> None:
    threads = state.threads
    with threads.turn("case-1", "on-call"):
        threads.mark_pending("case-1", "on-call", ["payments", "ops-fallback"])
        pending = threads.get("case-1", "on-call")
        assert isinstance(pending, PendingRoot) and pending.channels == ("payments", "ops-fallback")
        assert threads.all() == [] and threads.at("C1", "1.1") is None
        threads.map(CaseThread("case-1", "on-call", "C1", "1.1", "int-1", "CASE-1"))
    threads.map(CaseThread("case-2", "on-call", "C1", "2.2", "int-1"))
    mapped = threads.get("case-1", "on-call")
    assert isinstance(mapped, CaseThread) and mapped.case_name == "CASE-1" and mapped.updated
    assert threads.at("C1", "1.1") == mapped
    assert [t.case_id for t in threads.all()] == ["case-1", "case-2"]
    assert [t.ts for t in threads.of_case("case-2")] == ["2.2"]


def test_case_settings_merge_over_refs(state: State) -> None:
    book = state.settings
    assert book.update("CASE-1", CaseSettings("thread", None)) == CaseSettings("thread", None)
    assert book.update("CASE-1", CaseSettings(None, True)) == CaseSettings("thread", True)
    book.update("uuid-1", CaseSettings("new-message", None))
    assert book.get("CASE-1", "uuid-1") == CaseSettings("new-message", True)
    assert book.get(None, "nothing") == CaseSettings()
    assert book.update("CASE-1", CaseSettings(case_actions=False)) == CaseSettings("thread", True, False)
    assert book.get("CASE-1", "uuid-1") == CaseSettings("new-message", True, False)  # buttons off, per Case


def test_sync_ledger_claims_records_and_cursors(state: State) -> None:
    ledger = state.ledger
    with ledger.claim("C1", "1.2") as claim:
        assert claim.synced is None
        claim.record(SyncedReply("case-1", "CASE-1", "comment-1", "U1"))
    with ledger.claim("C1", "1.2") as claim:
        assert claim.synced is not None and claim.synced.comment == "comment-1" and claim.synced.at
    ledger.advance("C1|1.1", "1700000005.000100")
    ledger.advance("C1|1.1", "1700000004.000900")  # never back
    assert ledger.cursor("C1|1.1") == "1700000005.000100" and ledger.cursor("C1|9.9") is None
    assert ledger.last_poll() is None
    ledger.polled()
    assert abs((ledger.last_poll() or 0) - time.time()) < 60


def test_preview_book(state: State) -> None:
    book = state.previews
    first = PreviewPlace("C1", "1.1", "https://x/#/cases/CASE-1", "int-1", "Open", "P2")
    book.remember("case-1", first)
    book.remember("case-1", PreviewPlace("C2", "2.2", "https://x/#/cases/CASE-1", "int-1", "Open", "P2"))
    book.shown("case-1", PreviewPlace("C1", "1.1", first.url, "int-1", "Resolved", "P2"))
    book.shown("case-1", PreviewPlace("C9", "9.9", first.url, "int-1", "Resolved", "P2"))  # forgotten: no row
    assert [(p.channel, p.status) for p in book.of_case("case-1")] == [("C1", "Resolved"), ("C2", "Open")]


def test_channel_book(state: State) -> None:
    book = state.channels
    assert book.get("int-1", "payments") is None
    book.refused("int-1", "payments", "channel_not_found")
    refused = book.get("int-1", "payments")
    assert refused is not None and refused.error == "channel_not_found" and refused.id is None
    book.learn("int-1", "payments", "C0PAYMENTS")
    learned = book.get("int-1", "payments")
    assert learned is not None and learned.id == "C0PAYMENTS" and book.get("int-2", "payments") is None
    book.forget("int-1", "payments")
    assert book.get("int-1", "payments") is None


def test_posts_in_doubt_by_purpose(state: State) -> None:
    book = state.in_doubt
    assert book.get("test|c1") is None
    post = InDoubtPost("test|c1", "p1", ("alerts",), 1700000000.5, "int-1", None, None, "no answer came")
    book.record(post)
    book.record(InDoubtPost("case|k|c1|update", "p2", ("C1",), 1700000001.0, "int-1", "1.1", "resolved|ab"))
    assert book.get("test|c1") == post
    assert [p.purpose for p in book.all()] == ["case|k|c1|update", "test|c1"]
    book.record(InDoubtPost("test|c1", "p3", ("ops-fallback",), 1700000002.0, "int-1"))  # replaces
    assert (book.get("test|c1") or post).post == "p3"
    book.settle("test|c1")
    book.settle("test|c1")  # settling twice is fine
    assert book.get("test|c1") is None and len(book.all()) == 1


def test_chart_book_one_record_per_trigger(state: State) -> None:
    book = state.charts
    key = chart_key("case-1", "on-call", "alert-1", "2026-11-29T10:00:00Z")
    assert book.get(key) is None
    book.record(ChartShare(key, "uploading", "F1", "C1", "1.1", "2026-11-29T10:01:00Z"))
    assert (book.get(key) or Any).state == "uploading"
    book.record(ChartShare(key, "shared", "F1", "C1", "1.1", "2026-11-29T10:01:00Z"))  # replaces
    assert book.get(key) == ChartShare(key, "shared", "F1", "C1", "1.1", "2026-11-29T10:01:00Z")
    book.forget(key)
    book.forget(key)  # forgetting twice is fine
    assert book.get(key) is None


def test_action_ledger_one_click_once(state: State) -> None:
    key = "acknowledge|C1|1.1|U0ALICE|1700000000.5"
    with state.actions.claim(key) as claim:
        assert claim.taken is None
        claim.record(TakenAction("case-1", "acknowledge", "U0ALICE", "acting"))
    with state.actions.claim(key) as claim:
        assert claim.taken is not None and claim.taken.outcome == "acting"
        claim.record(TakenAction("case-1", "acknowledge", "U0ALICE", "done", "user-1"))
    with state.actions.claim(key) as claim:
        assert claim.taken is not None and claim.taken.actor == "user-1"
        claim.forget()
    with state.actions.claim(key) as claim:
        assert claim.taken is None


def test_one_holder_at_a_time_per_reply(state: State) -> None:
    """Eight threads claim the same reply; each records only when nothing is there yet."""
    made: list[int] = []

    def sync(n: int) -> None:
        with state.ledger.claim("C1", "7.7") as claim:
            if claim.synced is None:
                time.sleep(0.01)
                made.append(n)
                claim.record(SyncedReply("case-1", comment=f"comment-{n}"))

    workers = [threading.Thread(target=sync, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(made) == 1


# -- what a shared database must do --------------------------------------------------------------
def test_order_keys_follow_the_slack_thread() -> None:
    reply = envelope(1, thread="5.5")
    edit = {"event_id": "Ev2", "event": {"type": "message", "subtype": "message_changed", "channel": "C0CASES",
                                         "ts": "9.9", "message": {"ts": "1700000001.000001", "thread_ts": "5.5"}}}  # fmt: skip
    delete = {"event_id": "Ev3", "event": {"type": "message", "subtype": "message_deleted", "channel": "C0CASES",
                                           "deleted_ts": "6.6", "previous_message": {"ts": "6.6"}}}  # fmt: skip
    shared = {"event_id": "Ev4", "event": {"type": "link_shared", "channel": "C0CASES", "message_ts": "6.6"}}
    assert order_key(reply) == order_key(edit) == "C0CASES|5.5"
    assert order_key(delete) == order_key(shared) == "C0CASES|6.6"
    click = {"type": "block_actions", "event_id": "Ia1", "payload": {"type": "block_actions",
             "container": {"channel_id": "C0CASES", "message_ts": "5.5"}, "message": {"ts": "5.5"}}}  # fmt: skip
    assert order_key(click) == "C0CASES|5.5"  # a click on the root: in order with its thread's replies


def _inbox(url: str) -> Any:
    from cxslack.state.postgres import postgres_state

    return postgres_state(url, Store()).open_inbox()


def test_replicas_dedupe_and_claim_each_event_once_keeping_thread_order(pg_url: str) -> None:
    one, two = _inbox(pg_url), _inbox(pg_url)
    try:
        assert one.accept(envelope(1)) is Accepted.STORED
        assert two.accept(envelope(1)) is Accepted.DUPLICATE  # Slack's retry, at the other replica
        two.accept(envelope(2))  # the same thread, later
        one.accept(envelope(3, thread="1700000000.000900"))  # another thread
        first = one.head(2, NEVER)
        assert first is not None and first.event_id == "Ev00000001"
        other = two.head(2, NEVER)  # Ev2 waits for Ev1 (same thread): the other thread's event
        assert other is not None and other.event_id == "Ev00000003"
        two.finish(other, Outcome.HANDLED)
        assert two.head(0.3, NEVER) is None  # still only Ev2, behind the claimed Ev1
        one.release(first)  # a retry later: Ev1 is first of its thread again
        again = two.head(2, NEVER)
        assert again is not None and again.event_id == "Ev00000001"
        two.finish(again, Outcome.DEAD_LETTER, "boom")
        last = one.head(2, NEVER)
        assert last is not None and last.event_id == "Ev00000002" and last.envelope() == envelope(2)
        one.finish(last, Outcome.HANDLED)
        assert one.depth == 0 and (one.processed, two.processed, two.dead_lettered) == (1, 1, 1)
        assert one.accept(envelope(2)) is Accepted.DUPLICATE  # finished ids are still known
    finally:
        one.close()
        two.close()
    import psycopg

    with psycopg.connect(pg_url) as connection:
        rows = dict(
            connection.execute("SELECT event_id, envelope IS NOT NULL FROM cxslack_events").fetchall()
        )
    assert rows == {"Ev00000001": True, "Ev00000002": False, "Ev00000003": False}  # dead letters keep theirs


CLAIMER = """
import sys, time
from cxslack.state.postgres import postgres_state
from cxslack.store import Store
inbox = postgres_state(sys.argv[1], Store()).open_inbox()
item = inbox.head(10, lambda: False)
print(item.event_id, flush=True)
time.sleep(60)
"""


def test_a_killed_replicas_claim_is_finished_by_another(pg_url: str) -> None:
    inbox = _inbox(pg_url)
    try:
        inbox.accept(envelope(1))
        inbox.accept(envelope(2, thread="1700000000.000900"))
        proc = subprocess.Popen([sys.executable, "-c", CLAIMER, pg_url], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "Ev00000001"
        other = inbox.head(2, NEVER)  # Ev1 is held by the other process
        assert other is not None and other.event_id == "Ev00000002"
        inbox.finish(other, Outcome.HANDLED)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        started = time.monotonic()
        recovered = inbox.head(10, NEVER)
        assert recovered is not None and recovered.event_id == "Ev00000001"
        assert time.monotonic() - started < 5
        inbox.finish(recovered, Outcome.HANDLED)
    finally:
        inbox.close()


def test_pacing_is_shared_between_processes(pg_url: str) -> None:
    from cxslack.state.postgres.books import PgPacing
    from cxslack.state.postgres.db import Database

    first, second = Database(pg_url), Database(pg_url)  # two pools: as two replicas
    try:
        a, b = PgPacing(first), PgPacing(second)
        waits = [pacer.take("chat.postMessage|C1", 2.0, 2) for pacer in (a, b, a, b)]
        assert waits[:2] == [0.0, 0.0] and 0.4 < waits[2] < 0.55 and 0.9 < waits[3] < 1.05
        b.hold("conversations.join", 3)
        assert 2.5 < a.held("conversations.join") <= 3 and a.held("elsewhere") == 0
        assert 2.5 < a.take("conversations.join", 10.0, 1) <= 3  # the next slot is after the hold
    finally:
        first.close()
        second.close()


def test_a_rotating_token_is_refreshed_once_by_racing_processes(cli: Cli, slack: Any, pg_url: str) -> None:
    from tests.conftest import install

    httpx.post(
        f"{slack.url}/_sandbox/settings", json={"token_rotation": True, "expires_in": 300}
    ).raise_for_status()
    created = install(cli, slack, "Payments")
    httpx.post(f"{slack.url}/_sandbox/settings", json={"expires_in": 43200}).raise_for_status()
    before = httpx.get(f"{slack.url}/_sandbox/calls").json()["methods"]
    script = """
import sys
from cxslack.oauth.flow import bot_access
from cxslack.registry import Registry
from cxslack.state import use_state_url
with use_state_url(sys.argv[1]):
    registry = Registry()
    access = bot_access(registry, registry.view().find(sys.argv[2]))
    access.auth_test()
    print("ok")
"""
    procs = [
        subprocess.Popen([sys.executable, "-c", script, pg_url, created["id"]], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    methods = httpx.get(f"{slack.url}/_sandbox/calls").json()["methods"]
    assert methods.get("oauth.v2.access") == 1  # one refresh; the other three used what it got
    assert methods["auth.test"] - before["auth.test"] == 4  # and all four worked with it


def test_schema_is_versioned_idempotent_and_required(
    postgres: PostgresServer, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.new_database()
    refused = cli("sync", "--state-url", url)
    assert (
        refused.exit_code == 1 and "state migrate" in refused.stderr and "schema version 0" in refused.stderr
    )
    runs = [cli("state", "migrate", "--state-url", url, "-o", "json") for _ in range(2)]
    first, second = (r.json() for r in runs)
    assert (
        first["before"] == 0
        and first["applied"]
        and second["applied"] == []
        and second["after"] == first["after"]
    )
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("INSERT INTO cxslack_schema (version, name) VALUES (999, 'from the future')")
    newer = cli("cases", "settings", "CASE-1", "--state-url", url)
    assert newer.exit_code == 1 and "newer than this cxslack" in newer.stderr


def test_concurrent_migrations_apply_each_version_once(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    procs = [
        subprocess.Popen([sys.executable, "-m", "cxslack", "state", "migrate", "--state-url", url, "-o", "json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    docs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert sorted(len(d["applied"]) for d in docs)[:2] == [0, 0] and max(len(d["applied"]) for d in docs) >= 1


def test_a_lost_database_refuses_events_instead_of_acking_them(postgres: PostgresServer, pg_url: str) -> None:
    from cxslack.listen import Listener
    from cxslack.sandbox.events import signed_headers

    dbname = pg_url.rsplit("/", 1)[1]
    handled: list[str] = []
    with Listener(
        lambda e: handled.append(e["event_id"]), _inbox(pg_url), signing_secret="s3cr3t-value"
    ) as listener:
        port = listener.serve_http("127.0.0.1", 0)
        base = f"http://127.0.0.1:{port}"

        def post(n: int) -> int:
            body = json.dumps(envelope(n)).encode()
            return httpx.post(
                f"{base}/slack/events", content=body, headers=signed_headers("s3cr3t-value", body)
            ).status_code

        assert post(1) == 200 and listener.drain(10)
        postgres.admin(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS false")
        postgres.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}'")
        try:
            assert post(2) == 500  # not stored, so not acked: Slack retries (at another replica)
            health = httpx.get(f"{base}/healthz")
            assert health.status_code == 503 and health.json()["storage"]["ok"] is False
        finally:
            postgres.admin(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS true")
        assert post(2) == 200  # Slack's retry, once the database is back
        deadline = time.monotonic() + 20
        while handled != ["Ev00000001", "Ev00000002"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
    assert handled == ["Ev00000001", "Ev00000002"]


def test_state_copy_moves_a_homes_file_state(cli: Cli, pg_url: str, tmp_path: Path) -> None:
    from cxslack.state.inbox import Inbox

    files = open_state(Store())
    files.threads.map(CaseThread("case-1", "on-call", "C1", "1.1", "int-1", "CASE-1"))
    files.threads.mark_pending("case-2", "on-call", ["payments"])
    files.settings.update("CASE-1", CaseSettings("thread-broadcast", True, False))
    with files.ledger.claim("C1", "1.2") as claim:
        claim.record(SyncedReply("case-1", comment="comment-1"))
    files.ledger.advance("C1|1.1", "1.2")
    files.ledger.polled()
    files.previews.remember("case-1", PreviewPlace("C1", "3.3", "https://x/#/cases/CASE-1", "int-1", "Open"))
    with files.actions.claim("acknowledge|C1|1.1|U0ALICE|1.5") as click:
        click.record(TakenAction("case-1", "acknowledge", "U0ALICE", "done"))
    files.channels.learn("int-1", "payments", "C0PAYMENTS")
    files.in_doubt.record(InDoubtPost("test|c1", "p1", ("alerts",), 1700000000.5, "int-1"))
    files.charts.record(ChartShare("case-1|on-call|a1|t1", "shared", "F1", "C1", "1.1"))
    inbox = Inbox(Store().paths.state_dir / "events")
    for n in (1, 2):
        inbox.accept(envelope(n))
    done = inbox.head(1, NEVER)
    assert done is not None
    inbox.finish(done, Outcome.HANDLED)
    inbox.close()

    report = cli.ok("state", "copy", "--to", pg_url, "-o", "json").json()
    copied = {part: n["copied"] for part, n in report["parts"].items()}
    assert copied == {"threads": 1, "pending_roots": 1, "settings": 1, "replies": 1, "cursors": 1, "previews": 1,
                      "actions": 1, "channels": 1, "in_doubt": 1, "charts": 1, "events_waiting": 1, "events_done": 1,
                      "dead_letters": 0}  # fmt: skip
    again = cli.ok("state", "copy", "--to", pg_url, "-o", "json").json()
    assert all(n["copied"] == 0 and n["found"] for n in again["parts"].values() if n["found"])

    with use_state_url(pg_url):
        shared = open_state(Store())
        assert shared.threads.at("C1", "1.1") is not None
        assert isinstance(shared.threads.get("case-2", "on-call"), PendingRoot)
        assert shared.settings.get("CASE-1") == CaseSettings("thread-broadcast", True, False)
        assert shared.ledger.get("C1", "1.2") is not None and shared.ledger.cursor("C1|1.1") == "1.2"
        assert shared.ledger.last_poll() and [p.ts for p in shared.previews.of_case("case-1")] == ["3.3"]
        with shared.actions.claim("acknowledge|C1|1.1|U0ALICE|1.5") as click:
            assert click.taken is not None and click.taken.outcome == "done"
        assert (shared.channels.get("int-1", "payments") or Any).id == "C0PAYMENTS"
        assert (shared.in_doubt.get("test|c1") or Any).post == "p1"
        assert (shared.charts.get("case-1|on-call|a1|t1") or Any).file_id == "F1"
        replica = shared.open_inbox()
        try:
            assert replica.accept(envelope(1)) is Accepted.DUPLICATE  # finished at home: still a duplicate
            waiting = replica.head(2, NEVER)
            assert waiting is not None and waiting.event_id == "Ev00000002"
            replica.release(waiting)
        finally:
            replica.close()
    other = cli("state", "copy", "--to", pg_url, "--from", str(tmp_path / "nowhere"))
    assert other.exit_code == 2 and "--from" in other.stderr


def test_an_unreachable_database_is_a_clear_error(cli: Cli) -> None:
    run = cli("cases", "settings", "CASE-1", "--state-url", "postgresql://cx:hunter22@127.0.0.1:1/cxslack")
    assert run.exit_code == 1 and "cannot be reached" in run.stderr and "hunter22" not in run.stderr
    assert "Traceback" not in run.stderr
    bad = cli("sync", "--state-url", "mysql://db/cxslack")
    assert bad.exit_code == 2 and "postgresql://" in bad.stderr


def test_state_unavailable_is_an_oserror_for_the_transports() -> None:
    assert issubclass(StateUnavailable, OSError)


def test_two_processes_posting_to_one_channel_share_its_pace(sandbox: Any, pg_url: str) -> None:
    """Each process alone keeps to ~1 message/s per channel; two sharing the database's pacing keep
    to it together, so Slack (the sandbox: 1/s per channel, bursts of 3) never answers 429."""
    from cxslack.slack.client import SlackAccess
    from cxslack.state.postgres.books import PgPacing
    from cxslack.state.postgres.db import Database

    token = sandbox.issue_token(scopes=["chat:write", "chat:write.public"])["access_token"]
    pools = [Database(pg_url), Database(pg_url)]  # two replicas' own pools
    try:
        senders = [SlackAccess(token, base_url=sandbox.api_url, pacing=PgPacing(db)) for db in pools]
        errors: list[Exception] = []

        def post(access: SlackAccess) -> None:
            try:
                for n in range(3):
                    access.post_message("general", f"message {n}")
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=post, args=(access,)) for access in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for db in pools:
            db.close()
    calls = httpx.get(f"{sandbox.url}/_sandbox/calls").json()
    assert errors == [] and calls["methods"]["chat.postMessage"] == 6 and calls["ratelimited"] == 0


def test_a_running_replica_is_seen_as_listening(pg_url: str) -> None:
    from cxslack.state.postgres import postgres_state

    state = postgres_state(pg_url, Store())
    assert state.listening() is False
    inbox = state.open_inbox()
    try:
        assert inbox.head(0.1, NEVER) is None  # the worker connects (and holds the lock) on its first look
        assert state.listening() is True
    finally:
        inbox.close()
    assert state.listening() is False


def test_a_replica_whose_database_is_gone_still_stops_cleanly(postgres: PostgresServer, pg_url: str) -> None:
    from cxslack.sandbox.events import SIGNING_SECRET

    dbname = pg_url.rsplit("/", 1)[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxslack", "listen", "--http", "127.0.0.1:0", "--state-url", pg_url],
        env={**os.environ, "CXSLACK_SLACK_SIGNING_SECRET": SIGNING_SECRET}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    while "Listening" not in (line := proc.stderr.readline()):
        assert line, "listen exited early"
    postgres.admin(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS false")
    try:
        postgres.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}'")
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0  # what waits stays in the database; nothing to lose by stopping
        assert "waiting for the next start" in proc.stderr.read()
    finally:
        proc.kill()
        postgres.admin(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS true")
