"""Identifiers read the same everywhere: `#name` for a channel name, an ID as it is (never `#C0…`),
integrations by name, labels as `key:value`."""

from __future__ import annotations

import re
from typing import Any

from .conftest import Cli, add_integration, install, sandbox_admin


def test_a_channel_id_is_never_shown_with_a_hash(cli: Cli, cx: Any) -> None:
    install(cli, cx, "Payments")
    cli.ok("connectors", "create", "On-call", "--integration", "payments", "--channel", "payments-alerts",
           "--fallback-channel", "C0OPSFALLBACK")  # fmt: skip
    shown = cli.ok("connectors", "show", "on-call").stdout
    assert "Channel:          #payments-alerts" in shown and "Fallback channel: C0OPSFALLBACK" in shown
    tested = cli.ok("connectors", "test", "on-call").stderr
    notified = cli.ok("cases", "notify", "CASE-1", "--connector", "on-call").stderr
    rendered = cli.ok("connectors", "render", "on-call", "--entity-type", "alerts").stdout
    for text in (shown, tested, notified, rendered):
        assert not re.search(r"#[CG]0[A-Z0-9]{6,}", text), text
    assert "delivered to C0PAYMENTSALERTS" in tested
    assert "if delivery fails there: C0OPSFALLBACK" in rendered


def test_migrate_status_names_the_target(cli: Cli, slack: Any) -> None:
    payments = install(cli, slack, "Payments")
    add_integration(cli, "Legacy", "--integration-version", "0.0.9")
    cli.ok("connectors", "create", "Old route", "--integration", "legacy", "--channel", "alerts",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    cli.ok("connectors", "migrate", "--from", "legacy", "--to", "payments", "--no-test")
    status = cli.ok("connectors", "migrate", "--status", "--from", "legacy").stdout
    assert f"Target:    Payments ({payments['id']})" in status
    assert "From:      Legacy (" in status
    doc = cli.ok("connectors", "migrate", "--status", "--from", "legacy", "-o", "json").json()
    assert doc["to"] == payments["id"] and doc["to_name"] == "Payments" and doc["from_name"] == "Legacy"


def test_case_labels_read_as_key_value(cli: Cli, cx: Any) -> None:
    sandbox_admin(cx, "coralogix/cases", title="Checkout slow", labels=["team:db", "env:prod", "canary"])
    shown = cli.ok("cases", "show", "CASE-6").stdout
    assert "Labels:   team:db, env:prod, canary" in shown
    assert "=" not in shown.split("Labels:")[1].splitlines()[0]
