"""The state layer under load and under a full disk: nothing lost, nothing twice, nothing torn.

Every file cxslack keeps goes through cxslack.state: one lock, locked read-modify-write of small
documents, a durable append-only log, and storage errors a user can act on.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxslack.sandbox.events import SIGNING_SECRET
from cxslack.state.files import AppendLog
from cxslack.state.lock import FileLock, LockBusy

from .conftest import Cli, add_integration, install, sandbox_admin, tracked_case, wait_for


def assert_every_file_whole(home: Path) -> None:
    """What a user would find after any failure: every file parses, no journal record is torn,
    no temp file is left behind."""
    for name in ("config.toml", "credentials.toml"):
        if (home / name).exists():
            tomllib.loads((home / name).read_text("utf-8"))
    for path in (home / "state").rglob("*.json"):
        json.loads(path.read_bytes())
    for path in [*(home / "state").rglob("*.ndjson"), *(home / "state").rglob("*.journal")]:
        raw = path.read_bytes()
        assert not raw or raw.endswith(b"\n"), f"{path} ends in a torn record"
        for line in raw.splitlines():
            json.loads(line)
    leftovers = [p for p in home.rglob(".*.tmp")]
    assert leftovers == [], leftovers


# -- two `sync` runs and one `listen` on the same replies ----------------------------------------
def comments_on(sandbox: Any, case: str) -> list[str]:
    events = httpx.get(f"{sandbox.url}/_sandbox/coralogix/comments", params={"case": case}).json()["comments"]
    return [str(e["eventData"]["comment"].get("unsafeText", "")) for e in events]


@pytest.fixture
def listener(cli: Cli, cx: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """A tracked Case thread and `cxslack listen` receiving the sandbox's events over HTTP."""
    root = tracked_case(cli, cx)
    env = {**os.environ, "CXSLACK_SLACK_SIGNING_SECRET": SIGNING_SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxslack", "listen", "--http", "127.0.0.1:0"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = ""
    while "Listening" not in line:
        line = proc.stderr.readline()
        assert line, "listen exited early"
    url = re.search(r"(http://\S+)/slack/events", line)
    assert url is not None
    sandbox_admin(cx, "events/subscribe", url=f"{url.group(1)}/slack/events")
    try:
        yield url.group(1), root
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_two_syncs_and_a_listener_at_once_make_exactly_one_comment_per_reply(
    cx: Any, listener: tuple[str, dict[str, Any]], cxslack_home: Path
) -> None:
    base, root = listener
    # Slow comments keep all three busy with the same replies at the same time.
    sandbox_admin(cx, "faults", method="coralogix.cases.comment", kind="latency", seconds=0.15, count=200)
    replies = [
        sandbox_admin(
            cx, "reply", channel=root["channel"], thread_ts=root["ts"], user="U0BOB", text=f"reply {n}"
        )
        for n in range(8)
    ]
    syncs = [
        subprocess.Popen([sys.executable, "-m", "cxslack", "sync"], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in syncs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    tss = {r["ts"] for r in replies}

    def listener_done() -> bool:
        events = httpx.get(f"{cx.url}/_sandbox/events").json()["events"]
        mine = [e for e in events if e["envelope"]["event"].get("ts") in tss]
        health = httpx.get(f"{base}/healthz").json()
        return (
            len(mine) == len(tss)
            and all(e["outcome"] == "delivered" for e in mine)
            and not health["inbox_depth"]
        )

    wait_for(listener_done, timeout=60)
    texts = comments_on(cx, "CASE-1")
    for reply in replies:
        link = "p" + reply["ts"].replace(".", "")
        assert sum(link in t for t in texts) == 1, (
            f"reply {reply['ts']}: {sum(link in t for t in texts)} comments"
        )
    assert len(texts) == len(replies)
    ledger = json.loads((cxslack_home / "state" / "sync" / "ledger.json").read_text())
    assert {f"{root['channel']}|{ts}" for ts in tss} <= set(ledger["messages"])


# -- 8 processes updating Case settings, the preview book and the thread map ------------------
WRITER = """
import sys
from cxslack.state import open_state
from cxslack.state.records import CaseSettings, CaseThread, PreviewPlace
from cxslack.store import Store

n = int(sys.argv[1])
state = open_state(Store())
for i in range(20):
    state.settings.update(f"CASE-{n}-{i}", CaseSettings(reply_mode="thread-broadcast"))
    state.settings.update("CASE-SHARED", CaseSettings(mute_sync=True))
    state.previews.remember("CASE-SHARED", PreviewPlace("C1", f"{n}.{i:06d}", "https://x/cases/CASE-1", "int1"))
    state.threads.map(CaseThread(f"case-{n}-{i}", "on-call", "C1", f"{n}.{i:06d}", "int1", f"CASE-{n}-{i}"))
"""


def test_eight_processes_updating_case_state_at_once_lose_nothing(cxslack_home: Path) -> None:
    workers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(n)], stderr=subprocess.PIPE) for n in range(8)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()
    from cxslack.state import open_state
    from cxslack.store import Store

    state = open_state(Store())
    expected = {f"CASE-{n}-{i}" for n in range(8) for i in range(20)}
    settings = json.loads((cxslack_home / "state" / "cases" / "settings.json").read_text())
    assert set(settings) == expected | {"CASE-SHARED"}
    assert all(state.settings.get(ref).reply_mode == "thread-broadcast" for ref in expected)
    assert len(state.previews.of_case("CASE-SHARED")) == 160
    threads = state.threads.all()
    assert len(threads) == 160 and {t.case_name for t in threads} == expected
    assert_every_file_whole(cxslack_home)


# -- Case actions from Slack: one action per click key, across processes ---------------------
CLICKER = """
import sys, time
from cxslack.state import open_state
from cxslack.state.records import TakenAction
from cxslack.store import Store

n = int(sys.argv[1])
ledger = open_state(Store()).actions
acted = 0
for i in range(10):
    with ledger.claim(f"case_acknowledge|C0ALERTS|1700000000.{i:06d}|U0BOB") as claim:
        if claim.taken is None:
            claim.record(TakenAction(f"CASE-{i}", "acknowledge", "U0BOB", "acting"))
            time.sleep(0.01)  # the call to Coralogix
            claim.record(TakenAction(f"CASE-{i}", "acknowledge", "U0BOB", "shown", actor=str(n)))
            acted += 1
print(acted)
"""


def test_eight_processes_delivering_the_same_clicks_act_once_per_click(cxslack_home: Path) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CLICKER, str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for n in range(8)
    ]
    acted = 0
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()
        acted += int(out)
    assert acted == 10
    ledger = json.loads((cxslack_home / "state" / "actions" / "ledger.json").read_text())
    assert len(ledger["clicks"]) == 10 and {c["outcome"] for c in ledger["clicks"].values()} == {"shown"}
    assert_every_file_whole(cxslack_home)


def test_a_refused_click_is_forgotten_and_old_clicks_are_pruned(
    cxslack_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxslack.state import local, open_state
    from cxslack.state.records import TakenAction
    from cxslack.store import Store

    ledger = open_state(Store()).actions
    with ledger.claim("k1") as claim:
        claim.record(TakenAction("CASE-1", "close", "U0BOB", "acting"))
        claim.forget()  # Coralogix said 403: nothing happened, a later click may try again
    with ledger.claim("k1") as claim:
        assert claim.taken is None
        claim.record(TakenAction("CASE-1", "close", "U0BOB", "shown"))
    with ledger.claim("k1") as claim:
        assert claim.taken is not None and claim.taken.outcome == "shown" and claim.taken.at
    monkeypatch.setattr(local, "KEEP_ACTIONS", 3)
    for n in range(5):
        with ledger.claim(f"more-{n}") as claim:
            claim.record(TakenAction("CASE-2", "acknowledge", "U0BOB", "shown"))
    clicks = json.loads((cxslack_home / "state" / "actions" / "ledger.json").read_text())["clicks"]
    assert len(clicks) == 3
    with ledger.claim("k1") as claim:
        assert claim.taken is None  # the oldest went first


# -- a full disk ----------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root can mount one; elsewhere the test says why it cannot run)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({(done.stderr or done.stdout).strip()}): needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Use every last byte of `disk`; returns the filler file (truncate it to free space)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (65536, 4096, 1):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def free(filler: Path, pages: int = 1) -> None:
    os.truncate(filler, max(0, filler.stat().st_size - pages * 4096))


def assert_disk_full_error(run: Any, home: Path) -> None:
    assert run.exit_code == 1, (run.exit_code, run.stdout, run.stderr)
    assert "no space left on the device" in run.stderr and str(home) in run.stderr, run.stderr
    assert "Free some space" in run.stderr
    assert "bug in cxslack" not in run.stderr and "Traceback" not in run.stderr


def test_a_full_disk_is_a_clear_error_and_every_file_stays_whole(
    cli: Cli, slack: Any, tiny_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tiny_disk / "home"
    monkeypatch.setenv("CXSLACK_HOME", str(home))
    old = install(cli, slack, "Legacy", "--integration-version", "0.0.9")
    new = install(cli, slack, "Cases")
    from cxslack.connectors import Connector, ConnectorStore

    store = ConnectorStore()
    for n in range(60):
        store.create(Connector(id=f"c{n:03d}", name=f"Connector {n:03d}", integration=old["id"],
                               channel="alerts", fallback_channel="ops-fallback"))  # fmt: skip
    filler = fill(tiny_disk)
    before = (home / "config.toml").read_bytes()

    add = cli("integrations", "add", "--name", "Another", "--consent-us-data-transfer")
    assert_disk_full_error(add, home)
    create = cli("connectors", "create", "More", "--integration", "cases", "--channel", "alerts",
                 "--fallback-channel", "ops-fallback")  # fmt: skip
    assert_disk_full_error(create, home)
    assert (home / "config.toml").read_bytes() == before  # nothing half-written
    assert_every_file_whole(home)

    # migrate fails wherever the disk runs out, one page freed at a time, until it has room to finish
    failures = 0
    while (run := cli("connectors", "migrate", "--from", "legacy", "--to", "cases", "--no-test")).exit_code:
        assert_disk_full_error(run, home)
        assert_every_file_whole(home)
        failures += 1
        assert failures < 300, "migrate never finished"
        free(filler)
    assert failures > 0  # it did run out of space, at least once
    assert_every_file_whole(home)
    config = tomllib.loads((home / "config.toml").read_text())
    assert {body["integration"] for body in config["connectors"].values()} == {new["id"]}
    status = cli.ok("connectors", "migrate", "--status", "--from", "legacy", "-o", "json").json()
    assert len(status["done"]) == 60 and status["failed"] == [] and status["remaining"] == []


def test_a_read_only_file_system_and_a_home_that_is_a_file_are_clear_errors(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home_file = tmp_path / "not-a-dir"
    home_file.write_text("hello")
    monkeypatch.setenv("CXSLACK_HOME", str(home_file))
    for args in (
        ("integrations", "list"),
        ("integrations", "add", "--name", "X", "--consent-us-data-transfer"),
    ):
        run = cli(*args)
        assert run.exit_code == 1, run.stderr
        assert f"{home_file} is a file, not a directory" in run.stderr and "bug" not in run.stderr
    assert home_file.read_text() == "hello"

    read_only = tmp_path / "ro"
    read_only.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(read_only)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here: needs root")
    try:
        monkeypatch.setenv("CXSLACK_HOME", str(read_only))
        run = cli("integrations", "add", "--name", "X", "--consent-us-data-transfer")
        assert run.exit_code == 1 and "read-only" in run.stderr and "bug" not in run.stderr, run.stderr
    finally:
        subprocess.run(["umount", "-l", str(read_only)], check=False)


# -- temp files a killed writer left -----------------------------------------------------------
def test_a_killed_writers_temp_files_are_never_read_and_gone_after_the_next_write(
    cli: Cli, cxslack_home: Path
) -> None:
    add_integration(cli, "Payments")
    leftover = cxslack_home / ".config.toml.k1ll3d.tmp"
    leftover.write_text('schema_version = 1\n[integrations.zzz]\nname = "From a dead writer"\n')
    secret = cxslack_home / ".credentials.toml.k1ll3d.tmp"
    secret.write_text('[integrations.zzz]\nbot_token = "half-written"\n')
    os.chmod(secret, 0o600)
    listed = cli.ok("integrations", "list", "-o", "json").json()["integrations"]
    assert [i["name"] for i in listed] == ["Payments"]
    add_integration(cli, "Orders")
    assert not leftover.exists() and not secret.exists()
    assert sorted(i["name"] for i in cli.ok("integrations", "list", "-o", "json").json()["integrations"]) == [
        "Orders",
        "Payments",
    ]


# -- the primitives ---------------------------------------------------------------------------
def test_an_append_cut_short_is_taken_back_and_never_glued_to_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AppendLog(tmp_path / "journal.ndjson")
    log.append_json({"n": 1})
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        if len(data) > 4:
            return real_write(fd, bytes(data[: len(data) // 2]))  # a short write …
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # … then the disk is full

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError) as info:
        log.append_json({"n": 2, "padding": "x" * 40})
    assert getattr(info.value, "code", None) == "disk_full"
    monkeypatch.setattr(os, "write", real_write)
    assert log.path.read_bytes() == b'{"n":1}\n'  # the half record was taken back
    log.append_json({"n": 3})
    assert log.json_records() == [{"n": 1}, {"n": 3}]


def test_a_torn_tail_left_by_a_crash_is_ignored_then_cut_by_the_next_writer(tmp_path: Path) -> None:
    path = tmp_path / "journal.ndjson"
    path.write_bytes(b'{"n":1}\n{"n":2,"pad')  # power went out mid-record
    log = AppendLog(path)
    assert log.json_records() == [{"n": 1}]
    log.append_json({"n": 3})
    assert path.read_bytes() == b'{"n":1}\n{"n":3}\n'


def test_a_file_someone_named_is_never_cut_and_gets_whole_lines(tmp_path: Path) -> None:
    """NDJSON output (`access-logs collect --file`): the user's last line is theirs to keep."""
    path = tmp_path / "logins.ndjson"
    path.write_bytes(b"their own line without a newline")
    log = AppendLog(path, owned=False)
    log.append(b'{"n":1}', b'{"n":2}')
    assert path.read_bytes() == b'their own line without a newline\n{"n":1}\n{"n":2}\n'
    fresh = AppendLog(tmp_path / "new.ndjson", owned=False)
    fresh.append()  # creates it, 0600, and writes nothing
    assert fresh.path.read_bytes() == b"" and fresh.path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(OSError):
        AppendLog(tmp_path / "missing-dir" / "x.ndjson", owned=False).append()  # never creates directories


def test_a_damaged_state_document_is_reported_and_left_as_it_is(
    cli: Cli, cx: Any, cxslack_home: Path
) -> None:
    tracked_case(cli, cx)
    threads = cxslack_home / "state" / "cases" / "threads.json"
    threads.write_text('{"CASE-1|on-call": {"channel": ')
    run = cli("cases", "notify", "CASE-1", "--connector", "on-call")
    assert run.exit_code == 1 and f"{threads}, line 1: not valid JSON" in run.stderr, run.stderr
    assert threads.read_text() == '{"CASE-1|on-call": {"channel": '


def test_the_lock_excludes_other_holders_and_says_when_it_waits(tmp_path: Path) -> None:
    first = FileLock(tmp_path / "locks" / "x.lock")
    first.acquire()
    with pytest.raises(LockBusy):
        FileLock(tmp_path / "locks" / "x.lock").acquire(blocking=False)
    waited: list[bool] = []
    import threading

    second = FileLock(tmp_path / "locks" / "x.lock")
    taker = threading.Thread(target=lambda: second.acquire(on_wait=lambda: waited.append(True)))
    taker.start()
    wait_for(lambda: waited)
    assert taker.is_alive()  # still waiting
    first.release()
    taker.join(10)
    assert second.held and not taker.is_alive()
    second.release()
    assert oct((tmp_path / "locks").stat().st_mode & 0o777) == "0o700"
