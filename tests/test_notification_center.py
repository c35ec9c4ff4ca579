"""Coralogix Notification Center from the CLI: links, pull, plan, push, routing rules, doctor.

The sandbox plays Coralogix (v5 shapes); every command is the real `cxslack`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxslack.store import Store

from .conftest import Cli, add_integration

OLD, NEW, STRANGER = "old-int", "new-int", "someone-elses-int"
SERVER_FIELDS = ("createTime", "updateTime", "teamId")


def nc_admin(sb: Any, path: str, **body: Any) -> Any:
    response = httpx.post(f"{sb.url}/_sandbox/coralogix/{path}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def remote(sb: Any) -> dict[str, dict[str, Any]]:
    docs = httpx.get(f"{sb.url}/_sandbox/coralogix/nc/connectors", timeout=10).json()["connectors"]
    return {d["id"]: d for d in docs}


def nc_log(sb: Any) -> list[dict[str, Any]]:
    return list(httpx.get(f"{sb.url}/_sandbox/coralogix/nc/log", timeout=10).json()["log"])


def slack_connector(ident: str, *, integration: str = OLD, channel: str = "alerts", fallback: str = "ops-fallback",
                    name: str | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "id": ident,
        "name": name or f"Connector {ident}",
        "type": "SLACK",
        "connectorConfig": {
            "fields": [
                {"fieldName": "integrationId", "value": integration},
                {"fieldName": "channel", "value": channel},
                {"fieldName": "fallbackChannel", "value": fallback},
            ]
        },  # fmt: skip
        **extra,
    }


def seed(sb: Any, ident: str, **kw: Any) -> dict[str, Any]:
    return dict(nc_admin(sb, "nc/connectors", connector=slack_connector(ident, **kw))["connector"])


def without_server_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in SERVER_FIELDS}


@pytest.fixture
def nc(cli: Cli, cx: Any) -> Any:
    """Coralogix with an earlier-version and a v0.1.0 Slack integration, each linked locally."""
    nc_admin(cx, "integrations", id=OLD, version="0.0.9")
    nc_admin(cx, "integrations", id=NEW, version="0.1.0")
    add_integration(cli, "Legacy", "--integration-version", "0.0.9", "--coralogix-id", OLD)
    add_integration(cli, "Current", "--coralogix-id", NEW)
    return cx


def plan(cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    run = cli("connectors", "plan", *args, "--detailed-exitcode", "-o", "json")
    return run.exit_code, run.json()


# -- links ------------------------------------------------------------------------------------
def test_remote_integrations_are_listed_with_status_and_their_links(cli: Cli, nc: Any) -> None:
    nc_admin(nc, "integrations", id=STRANGER, version="0.1.0", status="FAILING", messages=["token_revoked"])
    doc = cli.ok("integrations", "list", "--remote", "-o", "json").json()
    rows = {r["id"]: r for r in doc["integrations"]}
    assert rows[OLD]["version"] == "0.0.9" and rows[OLD]["status"] == "active"
    assert rows[OLD]["linked"]["name"] == "Legacy" and rows[NEW]["linked"]["name"] == "Current"
    assert rows[STRANGER]["status"] == "failing" and rows[STRANGER]["messages"] == ["token_revoked"]
    assert rows[STRANGER]["linked"] is None and rows[STRANGER]["last_updated"]
    table = cli.ok("integrations", "list", "--remote")
    assert "token_revoked" in table.stdout and f"--coralogix-id {STRANGER}" in table.stderr
    shown = cli.ok("integrations", "show", "legacy", "-o", "json").json()["integration"]
    assert shown["coralogix_id"] == OLD
    listed = cli.ok("integrations", "list", "-o", "json").json()["integrations"]
    assert {i["name"]: i["coralogix_id"] for i in listed} == {"Legacy": OLD, "Current": NEW}


def test_a_coralogix_integration_links_to_one_local_integration(cli: Cli, nc: Any) -> None:
    taken = cli("integrations", "edit", "current", "--coralogix-id", OLD, "-o", "json")
    assert taken.exit_code == 2 and taken.json()["error"]["code"] == "coralogix_id_linked"
    assert cli("integrations", "edit", "current", "--coralogix-id", "has space").exit_code == 2
    unlinked = cli.ok("integrations", "edit", "current", "--unlink-coralogix", "-o", "json").json()
    assert unlinked["integration"]["coralogix_id"] is None
    # Coralogix no longer has it: list --remote says so
    cli.ok("integrations", "edit", "current", "--coralogix-id", "gone-int")
    doc = cli.ok("integrations", "list", "--remote", "-o", "json").json()
    assert doc["missing"] == [{"id": doc["missing"][0]["id"], "name": "Current", "coralogix_id": "gone-int"}]


def test_export_and_import_translate_integration_ids_through_the_link(
    cli: Cli, nc: Any, tmp_path: Path
) -> None:
    cli.ok("connectors", "create", "Payments", "--integration", "legacy", "--channel", "alerts",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    exported = json.loads(cli.ok("connectors", "export", "payments").stdout)
    fields = {f["fieldName"]: f["value"] for f in exported["connector"]["connectorConfig"]["fields"]}
    assert fields["integrationId"] == OLD  # Coralogix's id, not cxslack's own
    path = tmp_path / "c.json"
    path.write_text(json.dumps(exported))
    cli.ok("connectors", "remove", "payments", "--yes")
    cli.ok("connectors", "import", str(path))
    legacy = cli.ok("integrations", "show", "legacy", "-o", "json").json()["integration"]["id"]
    assert cli.ok("connectors", "show", "payments", "-o", "json").json()["connector"]["integration"] == legacy


# -- pull, plan, push ---------------------------------------------------------------------------
def test_pull_plan_edit_plan_push_plan(cli: Cli, nc: Any) -> None:
    for n in range(3):
        seed(nc, f"c{n}", channel=["alerts", "cases", "general"][n])
    dry = cli.ok("connectors", "pull", "--dry-run", "-o", "json").json()
    assert dry["dry_run"] is True and sorted(dry["created"]) == ["c0", "c1", "c2"]
    assert "connectors" not in Store().read_config()
    pulled = cli.ok("connectors", "pull", "-o", "json").json()
    assert sorted(pulled["created"]) == ["c0", "c1", "c2"] and pulled["unmatched"] == []
    legacy = cli.ok("integrations", "show", "legacy", "-o", "json").json()["integration"]["id"]
    assert cli.ok("connectors", "show", "c1", "-o", "json").json()["connector"]["integration"] == legacy
    assert plan(cli) == (0, {"changes": [], "remote_only": [],
                             "summary": {"create": 0, "update": 0, "delete": 0, "unchanged": 3, "remote_only": 0}})  # fmt: skip

    cli.ok("connectors", "edit", "c1", "--channel", "db-cases", "--override", "cases=db-{{ alertDef.name }}")
    code, doc = plan(cli)
    assert code == 2
    assert doc["changes"] == [{"connector": "c1", "name": "Connector c1", "action": "update", "fields": [
        {"field": "connectorConfig.channel", "from": "cases", "to": "db-cases"},
        {"field": "configOverrides.CASES.channel", "from": None, "to": "db-{{ alertDef.name }}"},
    ]}]  # fmt: skip
    text = cli("connectors", "plan")
    assert text.exit_code == 0  # without --detailed-exitcode, changes are not an error
    assert '~ connectorConfig.channel: "cases" -> "db-cases"' in text.stdout
    assert "1 to change" in text.stdout

    pushed = cli.ok("connectors", "push", "--yes", "-o", "json").json()
    assert pushed["applied"] == [{"connector": "c1", "action": "update"}]
    stored = remote(nc)["c1"]
    assert {f["fieldName"]: f["value"] for f in stored["connectorConfig"]["fields"]}["channel"] == "db-cases"
    assert stored["configOverrides"] == [{"entityType": "CASES", "fields": [
        {"fieldName": "channel", "template": "db-{{ alertDef.name }}"}]}]  # fmt: skip
    assert plan(cli)[0] == 0
    assert cli.ok("connectors", "push", "--yes", "-o", "json").json()["applied"] == []  # nothing left to do


def test_a_remote_edit_between_pull_and_push_is_refused(cli: Cli, nc: Any) -> None:
    seed(nc, "c0")
    seed(nc, "c1")
    cli.ok("connectors", "pull")
    cli.ok("connectors", "edit", "c0", "--channel", "general")
    # someone saves c0 in Coralogix's UI meanwhile
    seed(nc, "c0", channel="alerts", name="Renamed in Coralogix")
    writes = len(nc_log(nc))
    refused = cli("connectors", "push", "--yes", "-o", "json")
    assert refused.exit_code == 1
    assert refused.json()["error"]["code"] == "changed_in_coralogix"
    assert "c0" in refused.stderr and "--force" in refused.stderr
    assert len(nc_log(nc)) == writes and remote(nc)["c0"]["name"] == "Renamed in Coralogix"
    forced = cli.ok("connectors", "push", "--yes", "--force", "-o", "json").json()
    assert forced["applied"] == [{"connector": "c0", "action": "update"}]
    assert remote(nc)["c0"]["name"] == "Connector c0"  # the local store won, as asked


def test_a_remote_edit_after_the_plan_is_caught_by_the_read_before_the_put(cli: Cli, nc: Any) -> None:
    from cxslack.connectors import parse_connectors
    from cxslack.registry import Registry
    from cxslack.remote import Coralogix
    from cxslack.remote.plan import make_plan
    from cxslack.remote.sync import Pusher

    seed(nc, "c0")
    seed(nc, "c1")
    cli.ok("connectors", "pull")
    cli.ok("connectors", "edit", "c0", "--channel", "general")
    cli.ok("connectors", "edit", "c1", "--channel", "general")
    registry = Registry()
    with Coralogix.connect(registry.store) as coralogix:
        view = registry.view()
        found = make_plan(view, parse_connectors(view, registry.store.paths.config_file),
                          coralogix.nc.list_connectors())  # fmt: skip
        seed(nc, "c1", name="Changed after the plan")  # between the plan and the PUT
        result = Pusher(registry, coralogix, workers=1).push(found)
    assert result.applied == [{"connector": "c0", "action": "update"}]
    assert [r["connector"] for r in result.refused] == ["c1"]
    assert remote(nc)["c1"]["name"] == "Changed after the plan"


def test_unknown_fields_and_entity_types_survive_a_round_trip(cli: Cli, nc: Any, tmp_path: Path) -> None:
    original = seed(
        nc, "c0",
        configOverrides=[
            {"entityType": "OLLY_SCHEDULED_TASKS", "fields": [{"fieldName": "channel", "template": "olly"}]},
            {"entityType": "ENTITY_TYPE_CASES", "fields": [{"fieldName": "channel", "template": "cases"}]},
        ],
        diagnostics={"delivery": "ERRORS_ONLY"},
        labels={"team": "payments", "nested": [1, None, {"deep": True}]},
    )  # fmt: skip
    cli.ok("connectors", "pull")
    assert plan(cli)[0] == 0
    assert "kept for it: configOverrides, diagnostics, labels" in cli.ok("connectors", "show", "c0").stdout
    exported = json.loads(cli.ok("connectors", "export", "c0").stdout)["connector"]
    assert without_server_fields(exported) == {**without_server_fields(original), "description": ""} | {
        "configOverrides": [original["configOverrides"][1], original["configOverrides"][0]]
    }
    # a local edit is pushed with everything cxslack does not model kept as it was
    cli.ok("connectors", "edit", "c0", "--fallback-channel", "general")
    cli.ok("connectors", "push", "--yes")
    after = remote(nc)["c0"]
    assert after["labels"] == original["labels"] and after["diagnostics"] == {"delivery": "ERRORS_ONLY"}
    assert sorted(after["configOverrides"], key=lambda o: o["entityType"]) == [
        {"entityType": "CASES", "fields": [{"fieldName": "channel", "template": "cases"}]},
        {"entityType": "OLLY_SCHEDULED_TASKS", "fields": [{"fieldName": "channel", "template": "olly"}]},
    ]
    changed = [e for e in nc_log(nc) if e["call"] == "replace"][-1]
    before_fields, after_fields = (
        {f["fieldName"]: f["value"] for f in e["connectorConfig"]["fields"]} for e in (changed["before"], changed["after"])
    )  # fmt: skip
    assert after_fields == {**before_fields, "fallbackChannel": "general"}
    # and through export → import (a file in git) too
    path = tmp_path / "c0.json"
    path.write_text(cli.ok("connectors", "export", "c0").stdout)
    cli.ok("connectors", "remove", "c0", "--yes")
    cli.ok("connectors", "import", str(path))
    assert plan(cli)[0] == 0


def test_pull_reports_connectors_whose_integration_is_not_linked(cli: Cli, nc: Any) -> None:
    nc_admin(nc, "integrations", id=STRANGER, version="0.1.0")
    seed(nc, "mine")
    seed(nc, "theirs", integration=STRANGER)
    nc_admin(nc, "nc/connectors", connector={"id": "hook", "name": "Webhook", "type": "GENERIC_HTTPS",
                                             "connectorConfig": {"fields": [{"fieldName": "url", "value": "https://x"}]}})  # fmt: skip
    run = cli("connectors", "pull", "-o", "json")
    assert run.exit_code == 5  # partial: one was not pulled
    doc = run.json()
    assert doc["created"] == ["mine"]  # the webhook connector is not a Slack one: not even listed
    assert doc["unmatched"] == [
        {"connector": "theirs", "name": "Connector theirs", "integrationId": STRANGER}
    ]
    assert "integrations edit NAME --coralogix-id ID" in run.stderr
    assert set(Store().read_config()["connectors"]) == {"mine"}


def test_plan_creates_local_only_and_prunes_only_when_asked(cli: Cli, nc: Any) -> None:
    seed(nc, "remote-only")
    cli.ok("connectors", "create", "Local only", "--integration", "current", "--channel", "cases",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    code, doc = plan(cli)
    assert code == 2 and [(c["connector"], c["action"]) for c in doc["changes"]] == [("local-only", "create")]
    assert doc["remote_only"] == ["remote-only"]
    created = doc["changes"][0]["fields"]
    assert {"field": "connectorConfig.integrationId", "from": None, "to": NEW} in created
    code, doc = plan(cli, "--prune")
    assert [(c["connector"], c["action"]) for c in doc["changes"]] == [
        ("local-only", "create"),
        ("remote-only", "delete"),
    ]
    code, doc = plan(cli, "remote-only", "--prune")  # NAME… narrows it
    assert [c["connector"] for c in doc["changes"]] == ["remote-only"]
    pushed = cli.ok("connectors", "push", "--prune", "--yes", "-o", "json").json()
    assert sorted((a["connector"], a["action"]) for a in pushed["applied"]) == [
        ("local-only", "create"),
        ("remote-only", "delete"),
    ]
    assert set(remote(nc)) == {"local-only"}
    assert plan(cli, "--prune")[0] == 0


def test_plan_errors_exit_1_with_detailed_exitcode(cli: Cli, nc: Any) -> None:
    cli.ok("integrations", "add", "--name", "Unlinked", "--consent-us-data-transfer")
    cli.ok(
        "connectors",
        "create",
        "X",
        "--integration",
        "unlinked",
        "--channel",
        "alerts",
        "--fallback-channel",
        "ops-fallback",
    )
    assert cli("connectors", "plan").exit_code == 2  # a usage error…
    run = cli("connectors", "plan", "--detailed-exitcode", "-o", "json")
    assert run.exit_code == 1  # …is an error, not "changes", when CI asks for detailed exit codes
    assert run.json()["error"]["code"] == "integration_not_linked"
    assert "--coralogix-id" in run.json()["error"]["hint"]
    assert cli("connectors", "plan", "nope", "--detailed-exitcode").exit_code == 1
    assert cli("connectors", "plan", "--detailed-exitcode", "--bad-flag").exit_code == 1


def test_push_partial_failure_exits_5_and_names_what_was_applied(cli: Cli, nc: Any) -> None:
    seed(nc, "c0")
    seed(nc, "c1")
    cli.ok("connectors", "pull")
    cli.ok("connectors", "edit", "c0", "--channel", "general")
    cli.ok("connectors", "edit", "c1", "--channel", "general")
    httpx.post(f"{nc.url}/_sandbox/faults", json={"kind": "status", "method": "coralogix.nc.connectors.replace",
                                                   "status": 400, "count": 1}).raise_for_status()  # fmt: skip
    run = cli("connectors", "push", "--yes", "--workers", "1", "-o", "json")
    assert run.exit_code == 5
    doc = run.json()
    assert doc["applied"] == [{"connector": "c1", "action": "update"}]
    assert [f["connector"] for f in doc["failed"]] == ["c0"]
    assert "Applied 1: c1 (updated)" in run.stderr
    # the applied one took Coralogix's answer as its base; the other is still to push
    code, left = plan(cli)
    assert code == 2 and [c["connector"] for c in left["changes"]] == ["c0"]
    assert cli("connectors", "push", "--yes").exit_code == 0


def test_push_needs_yes_when_not_on_a_terminal(cli: Cli, nc: Any) -> None:
    cli.ok(
        "connectors",
        "create",
        "X",
        "--integration",
        "current",
        "--channel",
        "alerts",
        "--fallback-channel",
        "ops-fallback",
    )
    run = cli("connectors", "push")
    assert run.exit_code == 2 and "--yes" in run.stderr
    assert remote(nc) == {}


# -- routing rules ------------------------------------------------------------------------------
def test_removing_names_the_router_rules_that_target_the_connectors(cli: Cli, nc: Any) -> None:
    seed(nc, "c0")
    seed(nc, "c1")
    cli.ok("connectors", "pull")
    nc_admin(nc, "nc/routers", router={"id": "r1", "name": "Main", "rules": [
        {"name": "P1 to payments", "targets": [{"connectorId": "c0", "presetId": "p"}]},
        {"name": "Everything else", "targets": [{"connectorId": "elsewhere"}]}],
        "fallback": [{"connectorId": "c1"}]})  # fmt: skip
    run = cli("connectors", "remove", "c0", "--yes", "-o", "json")
    assert "router 'Main' rule 'P1 to payments'" in run.stderr
    assert run.json()["removed"]["routing_rules"][0]["rule"] == "P1 to payments"
    refused = cli(
        "integrations", "remove", "legacy"
    )  # no --yes: nothing is removed, the rules are named first
    assert refused.exit_code == 2
    assert "router 'Main' fallback" in refused.stderr and "Everything else" not in refused.stderr
    done = cli.ok("integrations", "remove", "legacy", "--yes", "-o", "json")
    assert "router 'Main' fallback targets connector c1" in done.stderr
    # c0 is gone locally but still in Coralogix on Legacy's integration: its rule is named too
    assert done.json()["removed"]["routing_rules"] == [
        {"router": "r1", "router_name": "Main", "rule": "P1 to payments", "connector": "c0"},
        {"router": "r1", "router_name": "Main", "rule": "fallback", "connector": "c1"},
    ]


def test_removing_without_coralogix_still_works_and_says_rules_were_not_checked(cli: Cli) -> None:
    add_integration(cli, "Solo")
    cli.ok(
        "connectors",
        "create",
        "X",
        "--integration",
        "solo",
        "--channel",
        "alerts",
        "--fallback-channel",
        "ops-fallback",
    )
    run = cli.ok("connectors", "remove", "x", "--yes")
    assert "not checked: Coralogix is not configured" in run.stderr


# -- doctor -------------------------------------------------------------------------------------
def test_doctor_reports_a_linked_integration_coralogix_says_is_failing(cli: Cli, nc: Any) -> None:
    nc_admin(nc, "integrations/status", id=OLD, status="FAILING",
             messages=["The app token was revoked", "reinstall the app"])  # fmt: skip
    run = cli("doctor", "--symptom", "failing", "-o", "json")
    assert run.exit_code == 1
    checks = {(c["id"], c["subject"]): c for c in run.json()["checks"]}
    failing = checks[("failing.coralogix", "integration Legacy")]
    assert failing["status"] == "fail"
    assert "The app token was revoked; reinstall the app" in failing["message"]
    assert "reinstall" in failing["remediation"]
    assert checks[("failing.coralogix", "integration Current")]["status"] == "ok"
    offline = cli("doctor", "--symptom", "failing", "--offline", "-o", "json").json()
    assert {c["status"] for c in offline["checks"] if c["id"] == "failing.coralogix"} == {"skip"}


def test_doctor_finds_router_rules_that_stop_delivering(cli: Cli, nc: Any) -> None:
    nc_admin(
        nc, "integrations", id="dying-int", version="0.1.0", status="FAILING", messages=["account_inactive"]
    )
    seed(nc, "healthy", integration=NEW)
    seed(nc, "on-failing", integration="dying-int")
    nc_admin(nc, "nc/routers", router={"name": "Main", "rules": [
        {"name": "ok", "targets": [{"connectorId": "healthy"}]},
        {"name": "ghost", "targets": [{"connectorId": "deleted-connector"}]},
        {"name": "broken", "targets": [{"connectorId": "on-failing"}]}]})  # fmt: skip
    run = cli("doctor", "--symptom", "routing-rules", "-o", "json")
    assert run.exit_code == 1
    (check,) = run.json()["checks"]
    assert check["id"] == "routing.rules" and check["status"] == "fail"
    assert "rule 'ghost' targets connector deleted-connector, which does not exist" in check["message"]
    assert (
        "rule 'broken' targets connector on-failing" in check["message"]
        and "account_inactive" in check["message"]
    )
    assert "'ok'" not in check["message"]
    assert "migrate on-failing --to INTEGRATION --remote --test" in check["remediation"]
    # removing an integration in Coralogix removes its connectors; rules that used them are named
    nc_admin(nc, "integrations/remove", id="dying-int")
    check = cli("doctor", "--symptom", "routing-rules", "-o", "json").json()["checks"][0]
    assert "rule 'broken' targets connector on-failing, which does not exist" in check["message"]


def test_a_push_killed_before_it_recorded_its_writes_heals_on_the_next_push(cli: Cli, nc: Any) -> None:
    from cxslack.registry import Registry

    seed(nc, "c0")
    cli.ok("connectors", "pull")
    pulled = Store().read_config()["connectors"]["c0"]["coralogix"]["update_time"]
    cli.ok("connectors", "edit", "c0", "--channel", "general")
    cli.ok("connectors", "push", "--yes")
    with Registry().editing() as (view, _):  # as if the push was killed after its PUT
        view.connectors["c0"]["coralogix"]["update_time"] = pulled
    assert (
        cli.ok("connectors", "push", "--yes", "-o", "json").json()["applied"] == []
    )  # in step: heals the base
    cli.ok("connectors", "edit", "c0", "--channel", "cases")
    assert cli("connectors", "push", "--yes").exit_code == 0  # not mistaken for a change made in Coralogix
