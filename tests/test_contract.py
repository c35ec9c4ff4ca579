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
