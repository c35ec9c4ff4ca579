"""`cxslack access-logs collect`: every Slack login delivered once, to Coralogix or as NDJSON."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxslack.access_logs import collect as collection
from cxslack.access_logs import reading
from cxslack.access_logs.checkpoint import Checkpoint
from cxslack.access_logs.collect import LAST_COLLECTED, CollectResult, find_collecting, user_access
from cxslack.access_logs.health import access_logs_health
from cxslack.access_logs.reading import read_window
from cxslack.access_logs.sinks import CoralogixSink
from cxslack.coralogix.client import MAX_REQUEST_BYTES, CoralogixClient
from cxslack.coralogix.config import resolve_settings
from cxslack.errors import CxError
from cxslack.model import Functionality, Integration, Status
from cxslack.registry import Registry
from cxslack.sandbox.coralogix import CORALOGIX_SEND_KEY

from .conftest import Cli, add_integration, install, sandbox_admin

SEED = 5000
WORKSPACE_LOGINS = 3  # the sandbox workspace starts with three


@pytest.fixture
def coralogix(slack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sandbox, with cxslack's Coralogix ingestion pointed at it too."""
    monkeypatch.setenv("CXSLACK_CORALOGIX_INGRESS_URL", slack.url)
    monkeypatch.setenv("CX_SEND_KEY", CORALOGIX_SEND_KEY)
    return slack


def received(sb: Any) -> list[dict[str, Any]]:
    return list(httpx.get(f"{sb.url}/_sandbox/coralogix/logs", timeout=30).json()["logs"])


def login_keys(logs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    texts = [json.loads(log["text"]) for log in logs]
    return [(t["user_id"], t["ip"], t["user_agent"], t["date_first"]) for t in texts]


def seed(sb: Any, count: int, **fields: Any) -> None:
    # A user agent of their own keeps seeded logins apart from the workspace's first three, which
    # can share a person, an IP address and a second with them.
    sandbox_admin(sb, "access-logs", count=count, **{"user_agent": "Mozilla/5.0 (seeded)", **fields})


def collect(cli: Cli, *args: str) -> dict[str, Any]:
    return cli.ok("access-logs", "collect", *args, "-o", "json").json()


def test_forwards_each_login_once_then_only_new_ones(cli: Cli, coralogix: Any) -> None:
    prod = install(cli, coralogix, "Prod", "--access-logs")
    seed(coralogix, SEED)
    total = SEED + WORKSPACE_LOGINS

    first = collect(cli, "prod", "--forward")
    assert first["collected"] == first["forwarded"] == total
    assert first["skipped_duplicates"] == 0 and first["pages"] == 6  # 1,000 a page
    assert first["checkpoint"]["high_water"].endswith("Z")
    logs = received(coralogix)
    assert len(logs) == total and len(set(login_keys(logs))) == total
    firsts = [json.loads(log["text"])["date_first"] for log in logs]
    assert firsts == sorted(firsts)  # oldest first, so the checkpoint only ever moves forward

    entry = logs[-1]
    text = json.loads(entry["text"])
    assert [entry["applicationName"], entry["subsystemName"], entry["severity"]] == [
        "slack",
        "access-logs",
        3,
    ]
    assert entry["computerName"] == prod["workspace"]["team_id"] == text["team_id"]
    assert entry["timestamp"] == text["date_last"] * 1000
    assert text["integration_id"] == prod["id"]
    assert {"username", "count", "isp", "country", "region"} <= set(text)

    second = collect(cli, "prod", "--forward")
    assert second["forwarded"] == 0 and second["skipped_duplicates"] == second["collected"] > 0
    assert second["pages"] < 6  # only the overlap behind the checkpoint is read again
    assert len(received(coralogix)) == total

    sandbox_admin(coralogix, "access-logs", count=7)  # new people logging in
    third = collect(cli, "prod", "--forward")
    assert third["forwarded"] == 7
    logs = received(coralogix)
    assert len(logs) == total + 7 and len(set(login_keys(logs))) == total + 7

    listed = cli.ok("integrations", "list", "-o", "json").json()["integrations"]
    assert listed[0][LAST_COLLECTED].endswith("Z")


def test_application_and_subsystem_names_are_configurable(cli: Cli, coralogix: Any) -> None:
    install(cli, coralogix, "Prod", "--access-logs")
    run = cli.ok(
        "access-logs", "collect", "prod", "--forward", "--application-name", "corp-slack",
        "--subsystem-name", "logins",
    )  # fmt: skip
    assert "forwarded 3 new access-log entries to Coralogix" in run.stderr and run.stdout == ""
    assert {(log["applicationName"], log["subsystemName"]) for log in received(coralogix)} == {
        ("corp-slack", "logins")
    }


def _start_collect(*extra: str, new_session: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cxslack", "access-logs", "collect", "Prod", "--forward", *extra, "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
        start_new_session=new_session,
    )  # fmt: skip


def _ingest_calls(sb: Any) -> int:
    return int(httpx.get(f"{sb.url}/_sandbox/calls").json()["methods"].get("coralogix.logs.singles", 0))


def _wait_for_request(sb: Any, proc: subprocess.Popen[str], count: int) -> bool:
    """Until `count` more ingestion requests have started (True), or the run ended first (False)."""
    target = _ingest_calls(sb) + count
    deadline = time.monotonic() + 15
    while _ingest_calls(sb) < target:
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def _processes_with(home: str) -> list[int]:
    """Processes (an orphaned sender among them) whose environment names this test's home; Linux."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"CXSLACK_HOME={home}".encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


SLOW_INGEST = {"kind": "latency", "method": "coralogix.logs.singles", "seconds": 0.3}


def test_kill_9_mid_request_then_rerun_forwards_each_login_exactly_once(cli: Cli, coralogix: Any) -> None:
    install(cli, coralogix, "Prod", "--access-logs")
    seed(coralogix, 1000)
    total = 1000 + WORKSPACE_LOGINS
    # Each request takes 0.3 s, so a kill soon after one started lands while it is in flight.
    sandbox_admin(coralogix, "faults", **SLOW_INGEST, count=50)
    home = os.environ["CXSLACK_HOME"]
    linux = Path("/proc/self/environ").exists()
    rng = random.Random(20261129)
    kills = orphans = 0
    for round_ in range(8):
        proc = _start_collect("--batch-size", "50")  # its own process: the group (this test) lives on
        if round_ % 4 == 3:  # anywhere: start-up, reading Slack, waiting for the lock, forwarding
            time.sleep(rng.uniform(0.1, 1.2))
        elif _wait_for_request(coralogix, proc, rng.randint(1, 2)):
            time.sleep(rng.uniform(0, 0.35))  # mostly mid-request, sometimes just after the answer
        if proc.poll() is None:
            kills += 1
        proc.send_signal(signal.SIGKILL)
        proc.communicate()  # at once: a sender left behind holds neither stdout nor stderr
        orphans += bool(linux and _processes_with(home))  # it finishes its batch on its own
    assert kills >= 6 and (orphans >= 3 or not linux)

    final = _start_collect("--batch-size", "50")  # waits for the last sender: it holds the lock
    out, err = final.communicate(timeout=60)
    assert final.returncode == 0, err
    counts = Counter(login_keys(received(coralogix)))
    assert len(counts) == total  # no gap: every login arrived
    assert max(counts.values()) == 1  # and none twice, though Coralogix has no idempotency key
    assert collect(cli, "prod", "--forward")["forwarded"] == 0
    assert _processes_with(home) == []  # no sender outlived its batch


def test_ctrl_c_lets_the_batch_in_flight_finish_and_be_recorded(cli: Cli, coralogix: Any) -> None:
    install(cli, coralogix, "Prod", "--access-logs")
    seed(coralogix, 500)
    sandbox_admin(coralogix, "faults", **SLOW_INGEST, count=5)
    # A session of its own, so Ctrl-C can go to its whole process group as a terminal sends it.
    proc = _start_collect("--batch-size", "100", new_session=True)
    assert _wait_for_request(coralogix, proc, 2)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert len(received(coralogix)) == 200  # the second batch, in flight at Ctrl-C, arrived
    rerun = collect(cli, "prod", "--forward")
    assert rerun["forwarded"] == 303 and rerun["skipped_duplicates"] == 200  # and was recorded
    keys = login_keys(received(coralogix))
    assert len(keys) == len(set(keys)) == 503


def test_two_runs_at_once_take_turns_and_forward_each_login_once(cli: Cli, coralogix: Any) -> None:
    install(cli, coralogix, "Prod", "--access-logs")
    seed(coralogix, 2000)
    runs = [_start_collect("--batch-size", "100") for _ in range(2)]
    docs = []
    for proc in runs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        docs.append(json.loads(out))
    assert sorted(doc["forwarded"] for doc in docs) == [0, 2003]
    keys = login_keys(received(coralogix))
    assert len(keys) == len(set(keys)) == 2003


def test_an_unreadable_checkpoint_is_reported_and_left_alone(cli: Cli, coralogix: Any) -> None:
    prod = install(cli, coralogix, "Prod", "--access-logs")
    cli.ok("access-logs", "collect", "prod", "--forward")
    path = Path(os.environ["CXSLACK_HOME"]) / "state" / "access-logs" / prod["id"] / "forward.json"
    path.write_text("{not json")
    run = cli("access-logs", "collect", "prod", "--forward")
    assert run.exit_code == 1 and str(path) in run.stderr and "move it aside" in run.stderr
    assert path.read_text() == "{not json"


def test_a_journal_left_by_a_crash_is_replayed_so_nothing_is_sent_twice(
    cli: Cli, coralogix: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(cli, coralogix, "Prod", "--access-logs")
    seed(coralogix, 500)
    registry = Registry()
    integration = find_collecting(registry, "prod")
    state = registry.store.paths.state_dir
    settings = resolve_settings(store=registry.store)
    sink = CoralogixSink(
        lambda: CoralogixClient(settings, backoff=0.001), computer="T", application="slack",
        subsystem="access-logs",
    )  # fmt: skip

    def crash(done: int, total: int) -> None:
        if done == 200:
            raise KeyboardInterrupt  # the process dies before sending the third batch

    with monkeypatch.context() as patched:  # as after kill -9: no compaction at the end
        patched.setattr(Checkpoint, "_compact", lambda self: None)
        with pytest.raises(KeyboardInterrupt):
            collection.collect(
                registry, integration, sink, Checkpoint.for_integration(registry.store, integration.id, "forward"),
                batch_size=100, progress=collection.Progress(delivered=crash),
            )  # fmt: skip
    journal = state / "access-logs" / integration.id / "forward.journal"
    assert len(journal.read_text().splitlines()) == 2 and len(received(coralogix)) == 200
    result = collection.collect(
        registry, integration, sink, Checkpoint.for_integration(registry.store, integration.id, "forward"),
        batch_size=100,
    )  # fmt: skip
    assert result.delivered == 303 and result.skipped_duplicates == 200
    assert not journal.exists()  # compacted into the snapshot
    keys = login_keys(received(coralogix))
    assert len(keys) == len(set(keys)) == 503


def test_ingestion_503_three_times_loses_nothing_and_requests_stay_under_2_mb(
    cli: Cli, coralogix: Any, tmp_path: Path
) -> None:
    install(cli, coralogix, "Prod", "--access-logs")
    seed(coralogix, 1500, user_agent="Mozilla/5.0 " + "x" * 2000)  # ~3.5 MB in all
    sandbox_admin(coralogix, "faults", kind="status", method="coralogix.logs.singles", status=503, count=3)
    log = tmp_path / "request-sizes"

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            with log.open("a") as sizes:  # a file: the batches are sent from forked children
                sizes.write(f"{len(request.read())}\n")
            return super().handle_request(request)

    registry = Registry()
    integration = find_collecting(registry, "prod")
    settings = resolve_settings(store=registry.store)
    sink = CoralogixSink(
        lambda: CoralogixClient(settings, transport=Recording(), backoff=0.001), computer="T",
        application="slack", subsystem="access-logs",
    )  # fmt: skip
    checkpoint = Checkpoint.for_integration(registry.store, integration.id, sink.name)
    result = collection.collect(registry, integration, sink, checkpoint)
    assert result.delivered == 1503
    keys = login_keys(received(coralogix))
    assert len(keys) == len(set(keys)) == 1503
    sizes = [int(size) for size in log.read_text().split()]
    assert len(sizes) >= 3 + 2  # three refused attempts, then at least two requests
    assert max(sizes) <= MAX_REQUEST_BYTES


def test_over_pagination_limit_narrows_the_window(
    cli: Cli, coralogix: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(cli, coralogix, "Prod", "--access-logs")
    seed(coralogix, 1200)
    registry = Registry()
    access = user_access(registry, find_collecting(registry, "prod"))
    window = read_window(access, 0, None, page_size=10)  # 121 pages: more than one query may page
    assert len(window.logins) == 1203 and window.pages > 100
    # Slack's over_pagination_limit answer narrows the window the same way.
    monkeypatch.setattr(reading, "MAX_PAGES", 1000)
    window = read_window(access, 0, None, page_size=10)
    assert len(window.logins) == 1203


def test_output_ndjson_to_stdout_and_to_files(cli: Cli, slack: Any, tmp_path: Path) -> None:
    prod = install(cli, slack, "Prod", "--access-logs")
    run = cli.ok("access-logs", "collect", "prod", "--file", "-", "-o", "json")
    records = [json.loads(line) for line in run.stdout.splitlines()]  # NDJSON only, no summary
    assert len(records) == 3 and {r["integration_id"] for r in records} == {prod["id"]}
    assert "wrote 3 new access-log entries to stdout" in run.stderr
    assert cli.ok("access-logs", "collect", "prod", "--file", "-").stdout == ""  # its checkpoint

    path = tmp_path / "logins.ndjson"
    doc = collect(cli, "prod", "--file", str(path))  # a file has a checkpoint of its own
    assert doc["written"] == 3 and "forwarded" not in doc
    assert path.stat().st_mode & 0o777 == 0o600
    seed(slack, 2)
    assert collect(cli, "prod", "--file", str(path))["written"] == 2
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 5 and lines[:3] == records

    export = collect(cli, "prod", "--file", str(tmp_path / "all.ndjson"), "--no-checkpoint", "--since", "1h")
    assert export["written"] == 5 and export["checkpoint"]["path"] is None
    since = datetime.fromtimestamp(lines[-1]["date_first"], UTC).isoformat().replace("+00:00", "Z")
    run = cli.ok(
        "access-logs", "collect", "prod", "--file", "-", "--no-checkpoint", "--since", since, "--until", since
    )  # fmt: skip
    assert run.stdout and {json.loads(line)["date_first"] for line in run.stdout.splitlines()} == {
        lines[-1]["date_first"]
    }


def test_usage_errors(cli: Cli, coralogix: Any) -> None:
    install(cli, coralogix, "Prod", "--access-logs")
    for args, words in (
        ((), "choose one destination"),
        (("--forward", "--file", "-"), "choose one destination"),
        (("--forward", "--no-checkpoint"), "checkpoint"),
        (("--forward", "--since", "yesterday"), "--since 'yesterday'"),
        (("--forward", "--since", "1h", "--until", "2h"), "later than --until"),
        (("--forward", "--follow", "--until", "1h"), "do not go together"),
    ):
        run = cli("access-logs", "collect", "prod", *args)
        assert run.exit_code == 2 and words in run.stderr, (args, run.stderr)
    assert cli("access-logs", "collect", "nope", "--forward").exit_code == 3


def test_an_integration_without_access_logs_says_how_to_add_them(cli: Cli, coralogix: Any) -> None:
    install(cli, coralogix, "Alerts")
    run = cli("access-logs", "collect", "alerts", "--forward", "-o", "json")
    assert run.exit_code == 2
    error = run.json()["error"]
    assert error["code"] == "access_logs_not_enabled"
    assert "cxslack integrations edit Alerts --access-logs" in error["hint"]


def test_pending_integration_and_missing_send_key_are_auth_errors(
    cli: Cli, coralogix: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_integration(cli, "Later", "--access-logs")
    run = cli("access-logs", "collect", "later", "--forward")
    assert run.exit_code == 4 and "cxslack integrations authorize Later" in run.stderr
    install(cli, coralogix, "Prod", "--access-logs")
    monkeypatch.delenv("CX_SEND_KEY")
    run = cli("access-logs", "collect", "prod", "--forward")
    assert run.exit_code == 4 and "Send-Your-Data key" in run.stderr
    assert received(coralogix) == []


def test_free_workspace_explains_the_plan_requirement(cli: Cli, coralogix: Any) -> None:
    install(cli, coralogix, "Prod", "--access-logs")
    sandbox_admin(coralogix, "settings", paid=False)
    run = cli("access-logs", "collect", "prod", "--forward", "-o", "json")
    assert run.exit_code == 1
    error = run.json()["error"]
    assert error["code"] == "paid_only" and "paid plans" in error["message"]


def test_missing_admin_scope_says_how_to_reauthorize(cli: Cli, coralogix: Any) -> None:
    from cxslack.oauth.flow import _grant_from
    from cxslack.oauth.flow import install as install_grant

    created = add_integration(cli, "Prod", "--access-logs")
    registry = Registry()
    integration = registry.view().find(created["id"])
    grant = coralogix.issue_token(scopes=integration.requested_bot_scopes, user_scopes=["openid"])
    install_grant(registry, integration.id, _grant_from(grant))  # the installer was no admin
    run = cli("access-logs", "collect", "prod", "--forward")
    assert run.exit_code == 4
    assert "admin" in run.stderr and "cxslack integrations authorize Prod" in run.stderr


def test_follow_stops_cleanly_on_sigterm(cli: Cli, coralogix: Any) -> None:
    install(cli, coralogix, "Prod", "--access-logs")
    proc = _start_collect("--follow", "--interval", "60")
    deadline = time.monotonic() + 20
    while len(received(coralogix)) < WORKSPACE_LOGINS and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert doc["runs"] == 1 and doc["forwarded"] == WORKSPACE_LOGINS
    assert "Stopped after 1 run(s)" in err


def test_follow_runs_again_and_outlives_transient_errors() -> None:
    outcomes: list[Any] = [
        CollectResult("i", "forward", collected=3, delivered=3),
        CxError("coralogix_unavailable", "Coralogix answered HTTP 503"),
        CollectResult("i", "forward", collected=5, delivered=2, skipped_duplicates=3),
    ]
    errors: list[str] = []

    def note(exc: CxError) -> None:
        errors.append(exc.code)

    def run_once() -> CollectResult:
        outcome = outcomes.pop(0)
        if isinstance(outcome, CxError):
            raise outcome
        return outcome

    stop = threading.Event()
    total = collection.follow(run_once, interval=0.001, stop=stop, on_error=note, max_runs=3)
    assert total is not None and (total.runs, total.delivered, total.skipped_duplicates) == (2, 5, 3)
    assert errors == ["coralogix_unavailable"]

    def fatal() -> CollectResult:
        raise CxError("paid_only", "free plan")

    with pytest.raises(CxError):
        collection.follow(fatal, interval=0.001, stop=stop, on_error=note)
    stop.set()
    assert collection.follow(run_once, interval=0.001, stop=stop, on_error=note) is None


def test_health_for_doctor() -> None:
    integration = Integration(
        id="i", name="Prod", functionality=[Functionality.ACCESS_LOGS], status=Status.ACTIVE
    )
    status, message, remediation = access_logs_health(integration)
    assert status == "warn" and "no collection has run" in message
    assert "cxslack access-logs collect Prod --forward" in remediation
    integration.extra[LAST_COLLECTED] = "2026-11-29T08:00:00Z"
    collected = datetime(2026, 11, 29, 8, tzinfo=UTC)
    assert access_logs_health(integration, now=collected + timedelta(hours=2))[0] == "ok"
    status, message, _ = access_logs_health(integration, now=collected + timedelta(hours=30))
    assert status == "warn" and "30 hours ago" in message
    integration.functionality = [Functionality.NOTIFICATIONS]
    assert access_logs_health(integration)[0] == "skip"


def test_doctor_warns_until_collection_has_run(cli: Cli, coralogix: Any) -> None:
    install(cli, coralogix, "Logs", "--access-logs")
    sandbox_admin(coralogix, "settings", paid=True)

    def check() -> dict[str, Any]:
        doc = cli.ok("doctor", "logs", "--symptom", "local", "--offline", "-o", "json").json()
        return next(c for c in doc["checks"] if c["id"] == "local.access_logs")

    never = check()
    assert never["status"] == "warn" and "access-logs collect" in never["remediation"]
    assert cli.ok("integrations", "list").stdout.splitlines()[1].split("\t")[6] == "never"
    cli.ok("access-logs", "collect", "logs", "--forward")
    assert check()["status"] == "ok"
    assert cli.ok("integrations", "list").stdout.splitlines()[1].split("\t")[6].endswith("Z")
