"""Hints name what is really there: the integration, the connectors, the command to run next."""

from __future__ import annotations

import json
from typing import Any

from .conftest import Cli, add_integration, install, on_call, sandbox_admin


def test_a_revoked_token_hint_names_the_integration(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Payments Prod")
    cli.ok("connectors", "create", "On-call", "--integration", "payments prod", "--channel", "payments-alerts",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    sandbox_admin(slack, "revoke")
    run = cli("connectors", "test", "on-call")
    assert run.exit_code == 4
    assert "cxslack integrations authorize 'Payments Prod'" in run.stderr
    assert "authorize NAME" not in run.stderr


def test_access_logs_without_a_destination_names_the_integration(cli: Cli) -> None:
    add_integration(cli, "Prod", "--access-logs")
    run = cli("access-logs", "collect", "Prod")
    assert run.exit_code == 2 and "cxslack access-logs collect Prod --forward" in run.stderr


def test_a_bad_version_says_what_to_use(cli: Cli) -> None:
    for version in ("1.2", "0.2.0"):
        run = cli(
            "integrations",
            "add",
            "--name",
            "X",
            "--consent-us-data-transfer",
            "--integration-version",
            version,
        )
        assert run.exit_code == 2 and "Hint: Leave out --integration-version" in run.stderr, run.stderr


def test_migrate_without_a_selection_suggests_the_real_command(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Payments")
    add_integration(cli, "Legacy Billing", "--integration-version", "0.0.9")
    cli.ok("connectors", "create", "Old route", "--integration", "legacy billing", "--channel", "alerts",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    for args in (("--to", "payments"), ()):
        run = cli("connectors", "migrate", *args, "--no-test", "-o", "json")
        assert run.exit_code == 2
        assert run.json()["error"]["hint"] == (
            "Move all 1 connector(s) of Legacy Billing: "
            "cxslack connectors migrate --from 'Legacy Billing' --to Payments --test"
        )


def test_case_json_errors_have_hints(cli: Cli, cx: Any) -> None:
    on_call(cli, cx)
    for doc in ("[]", json.dumps({"title": "no id"})):
        run = cli("cases", "notify", "CASE-1", "--connector", "on-call", "--case-json", "-", input=doc)
        assert run.exit_code == 2 and "Hint:" in run.stderr, run.stderr
    two = cli("cases", "notify", "CASE-1", "CASE-2", "--connector", "on-call", "--case-json", "-", input="{}")
    assert two.exit_code == 2 and "Hint: Notify one Case at a time" in two.stderr


def test_a_mistyped_command_gets_a_did_you_mean(cli: Cli) -> None:
    for typo, meant in (("intgrations", "integrations"), ("conectors", "connectors"), ("doctr", "doctor")):
        run = cli(typo, "list")
        assert run.exit_code == 2 and f"Did you mean '{meant}'?" in run.stderr, run.stderr


def test_no_color_after_the_command_says_where_it_goes(cli: Cli) -> None:
    run = cli("integrations", "list", "--no-color")
    assert run.exit_code == 2
    assert "Hint: --no-color goes before the command: cxslack --no-color integrations list" in run.stderr
    assert cli("--no-color", "integrations", "list").exit_code == 0
