"""The public interface as the contract pins it: commands that print data take -o/--output (and
CXSLACK_OUTPUT), and names scripts used before this round keep working."""

from __future__ import annotations

import json
from typing import Any

from .conftest import Cli, add_integration, install


def test_app_manifest_takes_output_json_like_every_command(cli: Cli) -> None:
    as_json = json.loads(cli.ok("app", "manifest", "--two-way-sync", "--format", "json").stdout)
    assert cli.ok("app", "manifest", "--two-way-sync", "-o", "json").json() == as_json
    assert cli.ok("app", "manifest", "--two-way-sync", env={"CXSLACK_OUTPUT": "json"}).json() == as_json
    yaml = cli.ok("app", "manifest", "--two-way-sync").stdout  # people get YAML, as before
    assert yaml.startswith("display_information:") and "channels:history" in yaml
    assert cli.ok("app", "manifest", "-o", "table").stdout.startswith("display_information:")
    explicit = cli.ok("app", "manifest", "--format", "yaml", env={"CXSLACK_OUTPUT": "json"}).stdout
    assert explicit.startswith("display_information:")  # --format, given, wins over the default format
    run = cli("app", "manifest", "--integration", "nope", "-o", "json")
    assert run.exit_code == 3 and run.json()["error"]["code"] == "integration_not_found"


def test_access_logs_collect_still_takes_format_for_the_summary(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Prod", "--access-logs")
    summary = cli.ok("access-logs", "collect", "prod", "--file", "-", "--format", "json", "--no-checkpoint")
    assert "wrote 3 new access-log entries to stdout" in summary.stderr
    doc = cli.ok("access-logs", "collect", "prod", "--file", "/dev/null", "--format", "json").json()
    assert doc["written"] == 3
    assert "--format" not in cli.ok("access-logs", "collect", "--help").stdout  # -o/--output is the name now


def test_export_names_the_unlinked_integration_in_its_hint(cli: Cli) -> None:
    add_integration(cli, "Payments Prod")
    cli.ok("connectors", "create", "Pay", "--integration", "payments prod", "--channel", "payments-alerts",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    run = cli.ok("connectors", "export", "--format", "coralogix")
    assert "cxslack integrations edit 'Payments Prod' --coralogix-id ID" in run.stderr


# The contract's JSON shapes: keys may be added, never renamed or removed.
INTEGRATION = {"id", "name", "version", "status", "status_reason", "functionality", "two_way_sync", "link_previews",
               "connectors", "workspace", "requested_scopes", "granted_scopes", "created_at", "updated_at"}  # fmt: skip
CONNECTOR = {"id", "name", "description", "integration", "channel", "fallback_channel", "overrides", "created_at",
             "updated_at"}  # fmt: skip
TEST = {"result", "connector", "integration", "channel", "ts", "fallback_used", "error"}
MIGRATE = {"to", "dry_run", "migrated", "failed", "skipped", "remaining"}
CHECK = {"id", "symptom", "subject", "status", "message", "remediation"}
RFC3339_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"


def test_every_json_shape_the_contract_pins(cli: Cli, slack: Any, tmp_path: Any) -> None:
    import re

    install(cli, slack, "Legacy", "--integration-version", "0.0.9")
    prod = install(cli, slack, "Prod", "--two-way-sync")
    assert prod.keys() >= INTEGRATION and prod["status"] == "active" and prod["connectors"] == 0
    assert prod["functionality"] == ["notifications"] and prod["two_way_sync"] is True
    assert set(prod["workspace"]) >= {"team_id", "team_name"}
    assert all(re.match(RFC3339_UTC, prod[k]) for k in ("created_at", "updated_at"))
    pending = add_integration(cli, "Later", "--access-logs", "--no-notifications")
    assert pending["status"] == "pending" and pending["workspace"] is None
    assert pending["functionality"] == ["access_logs"]
    listed = cli.ok("integrations", "list", "-o", "json").json()["integrations"]
    assert all(i.keys() >= INTEGRATION for i in listed) and len(listed) == 3

    created = cli.ok("connectors", "create", "Pay", "--integration", "legacy", "--channel", "payments-alerts",
                     "--fallback-channel", "ops-fallback", "--override", "alerts={{ alert.channel }}",
                     "--override", "test-notifications=general", "-o", "json").json()["connector"]  # fmt: skip
    assert (
        created.keys() >= CONNECTOR
        and created["integration"]
        == cli.ok("integrations", "show", "legacy", "-o", "json").json()["integration"]["id"]
    )
    assert created["overrides"] == {"alerts": "{{ alert.channel }}", "test_notifications": "general"}
    assert cli.ok("connectors", "show", "PAY", "-o", "json").json()["connector"] == created
    assert [
        c["id"]
        for c in cli.ok("connectors", "list", "--integration", "Legacy", "-o", "json").json()["connectors"]
    ] == [created["id"]]

    payload = tmp_path / "alert.json"
    payload.write_text('{"alert": {"channel": "db-cases"}}')
    rendered = cli.ok(
        "connectors", "render", "pay", "--entity-type", "alerts", "--payload", str(payload), "-o", "json"
    ).json()
    assert (
        rendered["channel"] == "db-cases"
        and rendered["source"] == "override"
        and isinstance(rendered["steps"], list)
    )

    tested = cli.ok("connectors", "test", "pay", "-o", "json").json()
    assert tested.keys() >= TEST and tested["result"] == "success" and tested["error"] is None
    assert tested["fallback_used"] is False and tested["ts"]

    dry = cli.ok(
        "connectors", "migrate", "--to", "prod", "--from", "legacy", "--test", "--dry-run", "-o", "json"
    ).json()
    moved = cli.ok("connectors", "migrate", "--to", "prod", "--from", "legacy", "--test", "-o", "json").json()
    assert dry.keys() >= MIGRATE | {"in_doubt"} and moved.keys() >= MIGRATE | {
        "in_doubt"
    }  # one shape either way
    assert dry["dry_run"] is True and dry["remaining"] == [created["id"]] and dry["migrated"] == []
    assert moved["to"] == prod["id"] and moved["migrated"] == [created["id"]] and moved["failed"] == []

    doctor = cli("doctor", "-o", "json")
    doc = doctor.json()
    assert (
        isinstance(doc["healthy"], bool)
        and doc["checks"]
        and doctor.exit_code == (0 if doc["healthy"] else 1)
    )
    assert all(c.keys() >= CHECK and c["status"] in {"ok", "warn", "fail", "skip"} for c in doc["checks"])

    for args, code, exit_code in (
        (("integrations", "show", "nope"), "integration_not_found", 3),
        (("connectors", "show", "nope"), "connector_not_found", 3),
        (("integrations", "add", "--name", "X"), "consent_required", 2),
        (("integrations", "remove", "prod"), "confirmation_required", 2),
    ):
        run = cli(*args, "-o", "json")
        error = run.json()["error"]
        assert run.exit_code == exit_code and error["code"] == code and error["message"] and "hint" in error
