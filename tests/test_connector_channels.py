"""Connectors tell CI when the primary channel failed, and catch channel mistakes when saved."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cxslack.sandbox.server import DEFAULT_BOT_SCOPES

from .conftest import Cli, add_integration, install, sandbox_admin

CREATE = ("connectors", "create", "On-call", "--integration", "payments")


def test_only_the_fallback_delivering_exits_5(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Payments")
    cli.ok(*CREATE, "--channel", "payments-alerts", "--fallback-channel", "ops-fallback")
    cli.ok("connectors", "create", "Db", "--integration", "payments", "--channel", "db-cases",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    assert cli("connectors", "test", "on-call").exit_code == 0
    sandbox_admin(slack, "archive", channel="payments-alerts")
    single = cli("connectors", "test", "on-call", "-o", "json")
    assert single.exit_code == 5 and single.json()["fallback_used"] is True
    every = cli("connectors", "test", "--all", "-o", "json")
    assert every.exit_code == 5
    assert every.json()["summary"] == {"total": 2, "success": 2, "failure": 0, "fallback": 1, "in_doubt": 0}
    assert "(1 only to the fallback channel)" in cli("connectors", "test", "--all").stderr


@pytest.mark.parametrize("fallback", ["payments-alerts", "#payments-alerts", " payments-alerts"])
def test_a_fallback_equal_to_the_channel_is_refused(cli: Cli, fallback: str) -> None:
    add_integration(cli, "Payments")
    run = cli(*CREATE, "--channel", "payments-alerts", "--fallback-channel", fallback)
    assert (
        run.exit_code == 2 and "the fallback channel is the channel itself (#payments-alerts)" in run.stderr
    )
    cli.ok(*CREATE, "--channel", "payments-alerts", "--fallback-channel", "ops-fallback")
    edit = cli("connectors", "edit", "on-call", "--fallback-channel", fallback)
    assert edit.exit_code == 2 and "fallback_is_channel" not in edit.stderr and "itself" in edit.stderr
    assert cli("connectors", "edit", "on-call", "--channel", "ops-fallback").exit_code == 2


def calls(sb: Any, method: str) -> int:
    return int(httpx.get(f"{sb.url}/_sandbox/calls").json()["methods"].get(method, 0))


def test_an_unknown_channel_is_named_when_the_scopes_allow_looking(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Payments", scopes=[*DEFAULT_BOT_SCOPES, "channels:read", "groups:read"])
    made = cli.ok(*CREATE, "--channel", "payments-alertz", "--fallback-channel", "ops-fallback")
    warnings = [line for line in made.stderr.splitlines() if "Slack does not list" in line]
    assert len(warnings) == 1 and "#payments-alertz" in warnings[0]  # ops-fallback exists
    fixed = cli.ok("connectors", "edit", "on-call", "--channel", "payments-alerts")
    assert "Slack does not list" not in fixed.stderr
    private = cli.ok("connectors", "edit", "on-call", "--fallback-channel", "private-db")  # the app is in it
    assert "Slack does not list" not in private.stderr


def test_nothing_is_said_when_the_scopes_do_not_allow_looking(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Payments")  # the product's scopes: no channels:read, no groups:read
    before = calls(slack, "conversations.list")
    made = cli.ok(*CREATE, "--channel", "payments-alertz", "--fallback-channel", "ops-fallback")
    assert "Slack does not list" not in made.stderr and "not found" not in made.stderr
    assert calls(slack, "conversations.list") == before  # it did not even ask
