"""`cxslack connectors migrate`: one at a time, resumable after kill -9, honest under concurrency."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxslack.migration import compact
from cxslack.state import open_state
from cxslack.state.records import MigrationEvent
from cxslack.store import Store

from .conftest import Cli, add_integration, install, sandbox_admin, sandbox_messages


def connector_integrations() -> dict[str, str]:
    config = Store().read_config()  # raises if config.toml does not parse
    return {ident: body["integration"] for ident, body in config.get("connectors", {}).items()}


def setup_fleet(cli: Cli, slack: Any, count: int, *, own_channels: bool = False,
                two_way_sync: bool = True) -> tuple[dict, dict]:  # fmt: skip
    old = install(cli, slack, "Legacy", "--integration-version", "0.0.9")
    new = install(cli, slack, "Cases", *(["--two-way-sync"] if two_way_sync else []))
    from cxslack.connectors import Connector, ConnectorStore

    store = ConnectorStore()
    for n in range(count):
        channel = (
            f"mig-{n:03d}"
            if own_channels
            else ["alerts", "cases", "general", "db-cases", "payments-alerts"][n % 5]
        )
        if own_channels:
            sandbox_admin(slack, "channels", name=channel)
        store.create(
            Connector(
                id=f"c{n:03d}",
                name=f"Connector {n:03d}",
                integration=old["id"],
                channel=channel,
                fallback_channel="ops-fallback",
            )
        )
    return old, new


def migrate(cli: Cli, *args: str) -> tuple[int, dict[str, Any], str]:
    run = cli("connectors", "migrate", *args, "-o", "json")
    return run.exit_code, run.json(), run.stderr


def test_migrates_every_connector_with_test_notifications(cli: Cli, slack: Any) -> None:
    old, new = setup_fleet(cli, slack, 5)
    code, doc, err = migrate(cli, "--from", "legacy", "--to", "cases", "--test")
    assert code == 0, err
    assert doc["to"] == new["id"] and doc["dry_run"] is False
    assert sorted(doc["migrated"]) == [f"c{n:03d}" for n in range(5)]
    assert doc["failed"] == [] and doc["remaining"] == []
    assert set(connector_integrations().values()) == {new["id"]}
    tests = [m for m in sandbox_messages(slack, "alerts") if "test notification" in m["text"]]
    assert len(tests) == 1
    assert "cxslack integrations remove Legacy --yes" in err  # the old one is now removable
    again = migrate(cli, "--from", "legacy", "--to", "cases", "--test")
    assert again[0] == 0 and again[1]["migrated"] == []  # nothing left: a no-op


def test_named_connectors_and_already_migrated_ones_are_skipped(cli: Cli, slack: Any) -> None:
    setup_fleet(cli, slack, 3)
    code, doc, _ = migrate(cli, "c000", "--to", "cases", "--no-test")
    assert code == 0 and doc["migrated"] == ["c000"]
    code, doc, _ = migrate(cli, "c000", "c001", "--to", "cases", "--no-test")
    assert doc["skipped"] == ["c000"] and doc["migrated"] == ["c001"]


def test_dry_run_prints_the_plan_and_changes_nothing(cli: Cli, slack: Any, cxslack_home: Path) -> None:
    setup_fleet(cli, slack, 3)
    migrate(cli, "c000", "--to", "cases", "--no-test")
    before = (cxslack_home / "config.toml").read_bytes()
    code, doc, _ = migrate(cli, "--from", "legacy", "--to", "cases", "--dry-run", "--test")
    assert code == 0 and doc["dry_run"] is True
    assert doc["remaining"] == ["c001", "c002"]
    assert doc["test"] is True
    text = cli.ok("connectors", "migrate", "c000", "c001", "--to", "cases", "--dry-run").stdout
    assert "already on Cases" in text and "Connector 001" in text
    assert (cxslack_home / "config.toml").read_bytes() == before
    assert sandbox_messages(slack, "alerts") == []


def test_a_failed_test_leaves_the_connector_on_its_old_integration(cli: Cli, slack: Any) -> None:
    old, new = setup_fleet(cli, slack, 5, own_channels=True)
    sandbox_admin(slack, "archive", channel="mig-002")  # connector 3 of 5 cannot be delivered to
    code, doc, err = migrate(cli, "--from", "legacy", "--to", "cases", "--test")
    assert code == 5
    assert sorted(doc["migrated"]) == ["c000", "c001", "c003", "c004"]
    assert [f["connector"] for f in doc["failed"]] == ["c002"]
    assert doc["failed"][0]["error"]["code"] == "is_archived"
    assert connector_integrations()["c002"] == old["id"]
    assert "keep delivering" in err
    status = cli.ok("connectors", "migrate", "--status", "--from", "legacy", "-o", "json").json()
    assert status["failed"][0]["connector"] == "c002" and len(status["done"]) == 4
    sandbox_admin(slack, "unarchive", channel="mig-002")
    assert migrate(cli, "--from", "legacy", "--to", "cases", "--test")[1]["migrated"] == ["c002"]


def test_fail_fast_stops_at_the_first_failure(cli: Cli, slack: Any) -> None:
    setup_fleet(cli, slack, 5, own_channels=True)
    sandbox_admin(slack, "archive", channel="mig-002")
    code, doc, _ = migrate(cli, "--from", "legacy", "--to", "cases", "--test", "--fail-fast")
    assert code == 5
    assert doc["migrated"] == ["c000", "c001"]
    assert doc["remaining"] == ["c003", "c004"]


@pytest.mark.parametrize("state", ["pending", "failing", "earlier"])
def test_unready_targets_are_refused_before_anything_changes(
    cli: Cli, slack: Any, cxslack_home: Path, state: str
) -> None:
    setup_fleet(cli, slack, 2)
    if state == "pending":
        add_integration(cli, "Target")
    elif state == "earlier":
        install(cli, slack, "Target", "--integration-version", "0.0.8")
    else:
        install(cli, slack, "Target")
        from cxslack.model import Status
        from cxslack.registry import Registry

        with Registry().editing() as (view, _):
            view.find("target").set_status(Status.FAILING, "token_revoked")
    before = (cxslack_home / "config.toml").read_bytes()
    code, doc, err = migrate(cli, "--from", "legacy", "--to", "target", "--test")
    assert code == 4
    assert "cxslack" in (doc["error"]["hint"] or "")
    assert (cxslack_home / "config.toml").read_bytes() == before
    assert sandbox_messages(slack, "alerts") == []


def test_usage_errors(cli: Cli, slack: Any) -> None:
    setup_fleet(cli, slack, 1)
    assert cli("connectors", "migrate", "--from", "legacy", "--to", "legacy", "--no-test").exit_code == 2
    assert cli("connectors", "migrate", "--to", "cases", "--no-test").exit_code == 2
    assert cli("connectors", "migrate", "nope", "--to", "cases", "--no-test").exit_code == 3
    assert cli("connectors", "migrate", "--from", "legacy", "--to", "nope", "--no-test").exit_code == 3
    needs_test_flag = cli("connectors", "migrate", "--from", "legacy", "--to", "cases")
    assert needs_test_flag.exit_code == 2 and "--test" in needs_test_flag.stderr


def test_removing_the_old_integration_while_connectors_remain_needs_yes(cli: Cli, slack: Any) -> None:
    setup_fleet(cli, slack, 2)
    refused = cli("integrations", "remove", "legacy")
    assert refused.exit_code == 2
    assert "Connector 000" in refused.stderr and "Connector 001" in refused.stderr


def _start_migrate(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cxslack", "connectors", "migrate", "--from", "legacy", "--to", "cases", "--test", "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip


def kill_during_the_test_post(slack: Any) -> None:
    """Run migrate and kill -9 it while its test notification's chat.postMessage is in flight;
    the sandbox still delivers that post."""

    def posts() -> int:
        return int(httpx.get(f"{slack.url}/_sandbox/calls").json()["methods"].get("chat.postMessage", 0))

    sandbox_admin(slack, "faults", method="chat.postMessage", kind="latency", seconds=1.5, count=1)
    before = posts()
    proc = _start_migrate({})
    deadline = time.monotonic() + 10
    while posts() == before:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    while not migration_tests(slack, 0):  # the sandbox finishes the post
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_an_in_doubt_test_that_cannot_be_looked_up_is_never_sent_twice(cli: Cli, slack: Any) -> None:
    """channels:read / groups:read declined and cxslack never posted to the channel: no ID to read
    history by. The connector fails saying so, reruns send nothing, the operator decides."""
    setup_fleet(cli, slack, 1, own_channels=True)
    kill_during_the_test_post(slack)
    for _ in range(2):
        code, doc, _ = migrate(cli, "--from", "legacy", "--to", "cases", "--test")
        error = doc["failed"][0]["error"]
        assert code == 5 and error["code"] == "test_in_doubt" and "#mig-000" in error["message"]
        assert "--no-test" in error["hint"] and "--resend" in error["hint"]
        assert len(migration_tests(slack, 0)) == 1
    code, doc, _ = migrate(cli, "c000", "--to", "cases", "--no-test")  # it arrived: switch without a test
    assert code == 0 and doc["migrated"] == ["c000"] and len(migration_tests(slack, 0)) == 1


def test_an_in_doubt_test_in_a_channel_cxslack_knows_is_found_not_resent(cli: Cli, slack: Any) -> None:
    """The channel's ID was learned from an earlier post and the bot joined it (two-way sync):
    the rerun reads its history by ID, finds the test and switches."""
    setup_fleet(cli, slack, 1, own_channels=True)
    cli.ok("connectors", "create", "Earlier", "--integration", "cases", "--channel", "mig-000",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    cli.ok("connectors", "test", "earlier")  # cxslack learns #mig-000's ID and joins it
    kill_during_the_test_post(slack)
    code, doc, _ = migrate(cli, "--from", "legacy", "--to", "cases", "--test")
    assert code == 0 and doc["migrated"] == ["c000"] and len(migration_tests(slack, 0)) == 1


@pytest.mark.parametrize("two_way_sync", [True, False], ids=["channels-history", "no-history"])
def test_kill_9_at_random_moments_then_rerun_finishes_with_at_most_one_test_each(
    cli: Cli, slack: Any, two_way_sync: bool
) -> None:
    """Without two-way sync (the default) the target has no *:history scope: a test in flight at a
    kill can never be looked up, so it is in doubt and the operator decides; never a second test."""
    old, new = setup_fleet(cli, slack, 200, own_channels=True, two_way_sync=two_way_sync)
    rng = random.Random(20261129)
    for _ in range(20):
        proc = _start_migrate({})
        time.sleep(rng.uniform(0.15, 0.9))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        owners = connector_integrations()  # parses after every kill
        assert len(owners) == 200 and set(owners.values()) <= {old["id"], new["id"]}
    final = _start_migrate({})
    out, err = final.communicate(timeout=120)
    assert final.returncode in (0, 5), err
    # A test in flight at a kill, to a channel cxslack had never posted to, cannot be looked up
    # without channels:read (no ID to read history by): those connectors fail and get no second test.
    in_doubt = [f["connector"] for f in json.loads(out)["failed"]]
    assert all(f["error"]["code"] == "test_in_doubt" for f in json.loads(out)["failed"])
    assert json.loads(out)["in_doubt"] == in_doubt
    status = cli.ok("connectors", "migrate", "--status", "--from", "legacy", "-o", "json").json()
    assert [d["connector"] for d in status["in_doubt"]] == sorted(in_doubt) and status["failed"] == []
    again = _start_migrate({})
    assert again.communicate(timeout=120) and again.returncode == (5 if in_doubt else 0)
    for ident in in_doubt:  # the operator looks in each channel, as the message says, and tells cxslack
        arrived = migration_tests(slack, int(ident[1:]))
        cli.ok(
            "connectors",
            "migrate",
            ident,
            "--to",
            "cases",
            *(["--no-test"] if arrived else ["--test", "--resend"]),
        )
    assert set(connector_integrations().values()) == {new["id"]}
    for n in range(200):
        tests = migration_tests(slack, n)
        assert len(tests) <= 1, f"mig-{n:03d} got {len(tests)} test notifications"
    switched = Counter(e.connector for e in open_state(Store()).migrations.events() if e.event == "switched")
    assert len(switched) == 200 and set(switched.values()) == {1}  # each switched exactly once
    status = cli.ok("connectors", "migrate", "--status", "--from", "legacy", "-o", "json").json()
    assert len(status["done"]) == 200 and status["remaining"] == [] and status["failed"] == []


def migration_tests(slack: Any, n: int) -> list[dict[str, Any]]:
    return [
        m
        for m in sandbox_messages(slack, f"mig-{n:03d}")
        if (m.get("metadata") or {}).get("event_type") == "cxslack_migration_test"
    ]


def test_two_runs_at_once_switch_each_connector_once(cli: Cli, slack: Any) -> None:
    old, new = setup_fleet(cli, slack, 30, own_channels=True)
    first, second = _start_migrate({}), _start_migrate({})
    docs = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        docs.append(json.loads(out))
    migrated = docs[0]["migrated"] + docs[1]["migrated"]
    assert sorted(migrated) == [f"c{n:03d}" for n in range(30)]  # every connector once, none twice
    assert not set(docs[0]["migrated"]) & set(docs[1]["migrated"])
    assert set(connector_integrations().values()) == {new["id"]}
    total_tests = sum(
        len(
            [
                m
                for m in sandbox_messages(slack, f"mig-{n:03d}")
                if (m.get("metadata") or {}).get("event_type") == "cxslack_migration_test"
            ]
        )
        for n in range(30)
    )
    assert total_tests == 30
    assert httpx.get(f"{slack.url}/_sandbox/calls").json()["violations"] == []


# -- the journal records history, not commands ---------------------------------------------------
def test_a_later_run_never_reapplies_a_switch_a_person_undid(cli: Cli, slack: Any) -> None:
    """Migrate A→B, a person moves X back to A, then Y is migrated: X stays on A."""
    old, new = setup_fleet(cli, slack, 2)  # c000 is X, c001 is Y, both on Legacy
    assert migrate(cli, "c000", "--to", "cases", "--no-test")[0] == 0
    cli.ok("connectors", "edit", "c000", "--integration", "legacy")  # the person moves X back
    code, doc, _ = migrate(cli, "c001", "--to", "cases", "--no-test")
    assert code == 0 and doc["migrated"] == ["c001"]
    assert connector_integrations() == {"c000": old["id"], "c001": new["id"]}
    status = cli.ok("connectors", "migrate", "--status", "-o", "json").json()
    assert status["done"] == ["c000", "c001"] and status["moved_since"] == ["c000"]
    again = migrate(cli, "c000", "--to", "cases", "--no-test")  # asked for again: it moves again
    assert again[1]["migrated"] == ["c000"] and connector_integrations()["c000"] == new["id"]


@pytest.mark.parametrize("touched", [False, True], ids=["untouched", "changed-since"])
def test_a_killed_runs_switch_is_replayed_only_if_nobody_changed_the_connector(
    cli: Cli, slack: Any, touched: bool
) -> None:
    """A run killed after journaling X's switch and before config.toml caught up: the next run
    finishes that switch — unless a person has changed X since (its updated_at moved)."""
    old, new = setup_fleet(cli, slack, 2)
    journal = open_state(Store()).migrations
    updated = cli.ok("connectors", "show", "c000", "-o", "json").json()["connector"]["updated_at"]
    journal.append(
        MigrationEvent("start", run="killed", to=new["id"], from_=old["id"], connectors=("c000",), test=False)
    )
    journal.append(MigrationEvent("switched", connector="c000", from_=old["id"], to=new["id"],
                                  before="2020-01-01T00:00:00Z" if touched else updated))  # fmt: skip
    code, doc, _ = migrate(cli, "c001", "--to", "cases", "--no-test")
    assert code == 0 and doc["migrated"] == ["c001"]
    assert connector_integrations()["c000"] == (old["id"] if touched else new["id"])
    status = cli.ok("connectors", "migrate", "--status", "-o", "json").json()
    if touched:  # history says what happened to that switch
        assert [f["connector"] for f in status["failed"]] == ["c000"]
        assert status["failed"][0]["error"]["code"] == "changed_meanwhile"


def test_completed_runs_are_compacted_and_status_reads_the_same(
    cli: Cli, slack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs that migrate, fail, leave a test in doubt and are rerun: the journal is compacted when
    each run ends, and --status says the same from the compacted journal as from the full one."""
    monkeypatch.setenv("CXSLACK_SLACK_TIMEOUT", "0.3")
    setup_fleet(cli, slack, 6, own_channels=True, two_way_sync=False)
    import cxslack.migration

    monkeypatch.setattr(cxslack.migration, "compact", lambda events: list(events))  # keep it all, to compare
    sandbox_admin(slack, "archive", channel="mig-002")  # c002 fails
    sandbox_admin(
        slack, "faults", method="chat.postMessage", kind="late", seconds=0.6, count=1
    )  # c000 in doubt
    assert migrate(cli, "--from", "legacy", "--to", "cases", "--test")[0] == 5
    assert migrate(cli, "--from", "legacy", "--to", "cases", "--test")[0] == 5  # a rerun: still so
    sandbox_admin(slack, "unarchive", channel="mig-002")
    assert migrate(cli, "c002", "--to", "cases", "--test")[0] == 0
    migrate(cli, "c001", "c003", "--to", "legacy", "--no-test")  # refused: Legacy is no v0.1.0 target
    journal = open_state(Store()).migrations
    full = journal.events()
    before = cli.ok("connectors", "migrate", "--status", "--from", "legacy", "-o", "json").json()
    assert [d["connector"] for d in before["in_doubt"]] == ["c000"] and before["failed"] == []
    assert sorted(before["done"]) == ["c001", "c002", "c003", "c004", "c005"] and before["runs"] == 2
    journal.replace(compact(full))
    compacted = journal.events()
    assert len(compacted) < len(full) and [e.event for e in compacted].count("start") == 2  # per (from, to)
    after = cli.ok("connectors", "migrate", "--status", "--from", "legacy", "-o", "json").json()
    assert after == before
    monkeypatch.setattr(cxslack.migration, "compact", compact)  # from here on, as every run does it
    assert (
        migrate(cli, "c000", "--to", "cases", "--test")[0] == 5
    )  # still in doubt, read from compacted history
    assert migrate(cli, "c000", "--to", "cases", "--no-test")[0] == 0  # the person saw it arrive
    final = cli.ok("connectors", "migrate", "--status", "--from", "legacy", "-o", "json").json()
    assert sorted(final["done"]) == [f"c{n:03d}" for n in range(6)] and final["in_doubt"] == []
    lines = (Store().paths.state_dir / "migrations" / "journal.ndjson").read_text().splitlines()
    assert len(lines) <= 3 + 6 * 3  # starts, a few events per connector, one end
