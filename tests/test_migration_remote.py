"""`cxslack connectors migrate --remote`: the product page's migration on Coralogix's connectors.

Pre-test with connectors:testConfig, PUT with only integrationId changed, confirm with
connectors:test; one at a time, resumable after kill -9, never a second switch or test.
"""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from cxslack.store import Store

from .conftest import Cli
from .test_notification_center import NEW, OLD, nc, nc_admin, nc_log, remote, seed, without_server_fields

__all__ = ["nc"]  # the fixture


def fleet(sb: Any, count: int) -> None:
    channels = ["alerts", "cases", "general", "db-cases", "payments-alerts"]
    for n in range(count):
        seed(sb, f"c{n:03d}", channel=channels[n % 5], labels={"n": n})


def integration_of(body: dict[str, Any]) -> str:
    return next(f["value"] for f in body["connectorConfig"]["fields"] if f["fieldName"] == "integrationId")


def switches(log: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """(connector, from, to) of every PUT that changed integrationId."""
    return Counter(
        (e["connectorId"], integration_of(e["before"]), integration_of(e["after"]))
        for e in log
        if e["call"] == "replace" and integration_of(e["before"]) != integration_of(e["after"])
    )


def assert_only_integration_changed(log: list[dict[str, Any]]) -> None:
    for entry in (e for e in log if e["call"] == "replace"):
        before, after = (
            without_server_fields(entry["before"]),
            copy.deepcopy(without_server_fields(entry["after"])),
        )
        for field in after["connectorConfig"]["fields"]:
            if field["fieldName"] == "integrationId":
                field["value"] = integration_of(before)
        assert after == before, f"{entry['connectorId']}: the PUT changed more than integrationId"


def migrate(cli: Cli, *args: str) -> tuple[int, dict[str, Any], str]:
    run = cli("connectors", "migrate", "--remote", *args, "-o", "json")
    return run.exit_code, run.json(), run.stderr


def test_50_connectors_each_switched_once_with_only_integration_id_changed(cli: Cli, nc: Any) -> None:
    fleet(nc, 50)
    seed(
        nc, "c007", channel="no-such-channel", fallback="nor-this-one", labels={"n": 7}
    )  # its pre-test fails
    cli.ok("connectors", "pull")
    dry = migrate(cli, "--from", "legacy", "--to", "current", "--test", "--dry-run")[1]
    assert dry["dry_run"] is True and len(dry["remaining"]) == 50
    assert switches(nc_log(nc)) == Counter()

    code, doc, err = migrate(cli, "--from", "legacy", "--to", "current", "--test")
    assert code == 5, err
    assert len(doc["migrated"]) == 49 and doc["unconfirmed"] == []
    assert [f["connector"] for f in doc["failed"]] == ["c007"]
    assert "nor-this-one" in doc["failed"][0]["error"]["message"]
    log = nc_log(nc)
    assert_only_integration_changed(log)
    assert switches(log) == Counter({(f"c{n:03d}", OLD, NEW): 1 for n in range(50) if n != 7})
    tests = Counter(e["connectorId"] for e in log if e["call"] == "test")
    assert set(tests.values()) == {1} and len(tests) == 49 and "c007" not in tests
    pretests = [e for e in log if e["call"] == "testConfig"]
    assert len(pretests) == 50 and {e["fields"]["integrationId"] for e in pretests} == {NEW}
    now = remote(nc)
    assert integration_of(now["c007"]) == OLD  # untouched, still delivering through the old one
    assert {integration_of(b) for i, b in now.items() if i != "c007"} == {NEW}
    # the local store followed, and it is in step with Coralogix
    current = cli.ok("integrations", "show", "current", "-o", "json").json()["integration"]["id"]
    local = {
        c["id"]: c["integration"] for c in cli.ok("connectors", "list", "-o", "json").json()["connectors"]
    }
    assert sum(1 for v in local.values() if v == current) == 49
    assert cli("connectors", "plan", "--detailed-exitcode").exit_code == 0

    again = migrate(cli, "--from", "legacy", "--to", "current", "--test")
    assert again[0] == 5 and again[1]["migrated"] == []  # only c007 left, and it still fails
    assert switches(nc_log(nc)) == switches(log)
    status = cli.ok("connectors", "migrate", "--remote", "--status", "--from", "legacy", "-o", "json").json()
    assert len(status["done"]) == 49 and [f["connector"] for f in status["failed"]] == ["c007"]
    seed(nc, "c007", channel="alerts", labels={"n": 7})  # fixed in Coralogix
    code, doc, _ = migrate(cli, "c007", "--to", "current", "--test")
    assert code == 0 and doc["migrated"] == ["c007"]


def test_without_test_nothing_is_sent(cli: Cli, nc: Any) -> None:
    fleet(nc, 3)
    code, doc, _ = migrate(cli, "--from", "legacy", "--to", "current", "--no-test")
    assert code == 0 and len(doc["migrated"]) == 3
    assert not [e for e in nc_log(nc) if e["call"] in ("test", "testConfig")]


def test_a_failed_confirmation_puts_the_connector_back(cli: Cli, nc: Any) -> None:
    fleet(nc, 3)
    nc_admin(nc, "nc/test-failures", connectorId="c001", message="not_in_channel")
    code, doc, _ = migrate(cli, "--from", "legacy", "--to", "current", "--test")
    assert code == 5
    assert doc["migrated"] == ["c000", "c002"]
    assert "not_in_channel" in doc["failed"][0]["error"]["message"]
    assert integration_of(remote(nc)["c001"]) == OLD
    assert switches(nc_log(nc))[("c001", NEW, OLD)] == 1
    assert_only_integration_changed(nc_log(nc))


def test_unready_targets_are_refused_before_anything_changes(cli: Cli, nc: Any) -> None:
    fleet(nc, 2)
    assert migrate(cli, "--from", "current", "--to", "legacy", "--test")[0] == 4  # not v0.1.0
    nc_admin(nc, "integrations/status", id=NEW, status="FAILING", messages=["token_revoked"])
    code, doc, _ = migrate(cli, "--from", "legacy", "--to", "current", "--test")
    assert code == 4 and "token_revoked" in doc["error"]["message"]
    cli.ok("integrations", "add", "--name", "Unlinked", "--consent-us-data-transfer")
    assert migrate(cli, "--from", "legacy", "--to", "unlinked", "--test")[0] == 2
    cli.ok("integrations", "edit", "unlinked", "--coralogix-id", "not-deployed")
    assert migrate(cli, "--from", "legacy", "--to", "unlinked", "--test")[0] == 3
    assert migrate(cli, "nope", "--to", "current", "--test")[0] == 4  # the target is checked first
    assert {e["call"] for e in nc_log(nc)} == {"ui-save"}


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cxslack", "connectors", "migrate", "--remote", "--from", "legacy", "--to", "current",
         "--test", "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip


def test_kill_9_at_random_moments_then_rerun_switches_each_once_and_tests_each_at_most_once(
    cli: Cli, nc: Any
) -> None:
    fleet(nc, 50)
    cli.ok("connectors", "pull")
    # 20 ms per Coralogix call: a run takes seconds, so kills land mid-run
    httpx.post(f"{nc.url}/_sandbox/settings", json={"latency": 0.02}).raise_for_status()
    rng = random.Random(20261207)
    for _ in range(12):
        proc = _start({})
        time.sleep(rng.uniform(0.3, 1.4))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    final = _start({})
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0, err
    assert json.loads(out)["failed"] == []
    log = nc_log(nc)
    assert switches(log) == Counter({(f"c{n:03d}", OLD, NEW): 1 for n in range(50)})  # once each, none back
    assert_only_integration_changed(log)
    tests = Counter(e["connectorId"] for e in log if e["call"] == "test")
    assert max(tests.values()) == 1, tests.most_common(3)
    # every connector was confirmed, or its confirmation's outcome was lost in a kill (never repeated)
    journal = (Store().ensure_state_dir() / "migrations" / "remote.ndjson").read_text().splitlines()
    lost = {json.loads(line)["connector"] for line in journal if '"confirm_unknown"' in line}
    assert set(tests) | lost == {f"c{n:03d}" for n in range(50)}
    assert {integration_of(b) for b in remote(nc).values()} == {NEW}
    status = cli.ok("connectors", "migrate", "--remote", "--status", "--from", "legacy", "-o", "json").json()
    assert len(status["done"]) == 50 and status["remaining"] == [] and status["failed"] == []
    # the local store caught up with every switch, including those of killed runs
    assert cli("connectors", "plan", "--detailed-exitcode").exit_code == 0


def test_status_reads_the_same_from_the_compacted_journal(
    cli: Cli, nc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs with a failed pre-test, a failed confirmation (put back) and successes: --status says
    the same from the compacted journal as from the full one, and a rerun still knows its work."""
    import cxslack.migration
    from cxslack.migration import compact
    from cxslack.state import open_state

    fleet(nc, 4)
    seed(nc, "c001", channel="no-such-channel", fallback="nor-this-one", labels={"n": 1})
    nc_admin(nc, "nc/test-failures", connectorId="c002", message="not_in_channel")
    monkeypatch.setattr(cxslack.migration, "compact", lambda events: list(events))
    assert migrate(cli, "--from", "legacy", "--to", "current", "--test")[0] == 5
    assert migrate(cli, "--from", "legacy", "--to", "current", "--test")[0] == 5
    journal = open_state(Store()).remote_migrations
    full = journal.events()
    before = cli.ok("connectors", "migrate", "--remote", "--status", "--from", "legacy", "-o", "json").json()
    assert {"c000", "c003"} <= set(before["done"]) and before["runs"] == 2
    assert "c001" in [f["connector"] for f in before["failed"]]
    steps = [e.event for e in full if e.connector == "c002"]
    assert "reverted" in steps  # its first confirmation failed: put back, then tried again
    journal.replace(compact(full))
    assert len(journal.events()) < len(full)
    after = cli.ok("connectors", "migrate", "--remote", "--status", "--from", "legacy", "-o", "json").json()
    assert after == before
    monkeypatch.setattr(cxslack.migration, "compact", compact)
    seed(nc, "c001", channel="alerts", labels={"n": 1})  # fixed in Coralogix
    code, doc, _ = migrate(cli, "--from", "legacy", "--to", "current", "--test")
    assert doc["migrated"] == ["c001"] and switches(nc_log(nc))[("c000", OLD, NEW)] == 1
