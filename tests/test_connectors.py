"""`cxslack connectors …`: routing, templates, fallback, Notification Center JSON, test notifications."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from cxslack.connectors import ID_PATTERN

from .conftest import Cli, add_integration, install, sandbox_admin, sandbox_messages

CASES_TEMPLATE = '{% if _context.entityLabels["team"][0] == "db" %}db-cases{% else %}cases{% endif %}'


def create(
    cli: Cli, name: str, integration: str, *extra: str, channel: str = "payments-alerts"
) -> dict[str, Any]:
    run = cli.ok(
        "connectors", "create", name, "--integration", integration, "--channel", channel,
        "--fallback-channel", "ops-fallback", *extra, "-o", "json",
    )  # fmt: skip
    return run.json()["connector"]


def test_create_show_list_edit_remove(cli: Cli) -> None:
    integration = add_integration(cli, "Payments")
    made = create(
        cli, "Payments on-call", "payments", "--override", f"cases={CASES_TEMPLATE}", "--description", "P1s"
    )
    assert made["id"] == "payments-on-call"
    assert made["integration"] == integration["id"]
    assert made["channel"] == "payments-alerts" and made["fallback_channel"] == "ops-fallback"
    assert made["overrides"] == {"cases": CASES_TEMPLATE}
    assert cli.ok("connectors", "show", "PAYMENTS ON-CALL", "-o", "json").json()["connector"] == made
    assert cli.ok("integrations", "show", "payments", "-o", "json").json()["integration"]["connectors"] == 1
    listed = cli.ok("connectors", "list", "--integration", "payments", "-o", "json").json()["connectors"]
    assert [c["id"] for c in listed] == ["payments-on-call"]
    edited = cli.ok(
        "connectors", "edit", "payments-on-call", "--channel", "#alerts", "--clear-override", "cases",
        "--override", "alerts={{alertDef.entityLabels.channel}}", "-o", "json",
    ).json()["connector"]  # fmt: skip
    assert edited["channel"] == "alerts"
    assert edited["overrides"] == {"alerts": "{{alertDef.entityLabels.channel}}"}
    refused = cli("connectors", "remove", "payments-on-call")
    assert refused.exit_code == 2
    removed = cli.ok("connectors", "remove", "payments-on-call", "--yes")
    assert "stop delivering" in removed.stderr
    assert cli.ok("connectors", "list", "-o", "json").json() == {"connectors": []}


def test_case_buttons_are_on_by_default_and_can_be_turned_off(cli: Cli, cxslack_home: Path) -> None:
    add_integration(cli, "Payments")
    made = create(cli, "On-call", "payments", "--no-case-actions")
    assert made["case_actions"] is False
    assert "case_actions = false" in (cxslack_home / "config.toml").read_text()
    assert "Case buttons:" in cli.ok("connectors", "show", "on-call").stdout
    edited = cli.ok("connectors", "edit", "on-call", "--case-actions", "-o", "json").json()["connector"]
    assert edited["case_actions"] is True and "case_actions" not in (cxslack_home / "config.toml").read_text()
    assert create(cli, "Default", "payments")["case_actions"] is True
    shown = cli.ok("cases", "settings", "CASE-7", "--no-case-actions", "-o", "json").json()
    assert shown["case_actions"] is False
    assert "Case buttons: off" in cli.ok("cases", "settings", "CASE-7").stdout


def test_ids_are_unique_and_valid(cli: Cli) -> None:
    add_integration(cli, "Payments")
    first = create(cli, "Ops: EU/West!", "payments")
    assert first["id"] == "ops-eu-west" and ID_PATTERN.fullmatch(first["id"])
    second = create(cli, "ops eu west", "payments")
    assert second["id"] == "ops-eu-west-2"


INVALID = [
    (["--channel", "Payments Alerts"], 2, "invalid_channel"),
    (["--channel", "has.period"], 2, "invalid_channel"),
    (["--channel", "x" * 81], 2, "invalid_channel"),
    (["--channel", "#"], 2, "invalid_channel"),
    (["--fallback-channel", "UPPER"], 2, "invalid_channel"),
    (["--override", "cases"], 2, "invalid_override"),
    (["--override", "pigeons={{x}}"], 2, "invalid_entity_type"),
    (["--override", "cases={% if %}"], 2, "invalid_template"),
    (["--override", "cases={{ unclosed"], 2, "invalid_template"),
    (["--override", "alerts=" + "x" * 10_001], 2, "template_exceeds_max_length"),
    (["--integration", "nope"], 3, "integration_not_found"),
    (["--id", "-bad-id"], 2, "invalid_connector_id"),
    (["--id", "a" * 129], 2, "invalid_connector_id"),
]


@pytest.mark.parametrize(("extra", "code", "error"), INVALID)
def test_invalid_connectors_are_refused(
    cli: Cli, cxslack_home: Path, extra: list[str], code: int, error: str
) -> None:
    add_integration(cli, "Payments")
    before = (cxslack_home / "config.toml").read_bytes()
    base = {"--integration": "payments", "--channel": "alerts", "--fallback-channel": "ops-fallback"}
    flags = dict(base)
    rest: list[str] = []
    for i in range(0, len(extra), 2):
        if extra[i] in flags:
            flags[extra[i]] = extra[i + 1]
        else:
            rest += extra[i : i + 2]
    args = [a for pair in flags.items() for a in pair]
    run = cli("connectors", "create", "Broken", *args, *rest, "-o", "json")
    assert run.exit_code == code, run.stderr
    assert run.json()["error"]["code"] == error
    assert (cxslack_home / "config.toml").read_bytes() == before


REFERENCE_TEMPLATES = [
    ("alerts", "{{alertDef.entityLabels.channel}}", None),
    (
        "alerts",
        '{% if alertDef.priority == "P1" %}critical_alerts_channel{% elif alertDef.priority == "P3" %}warn_alerts_channel{% else %}default_channel{% endif %}',
        None,
    ),
    (
        "alerts",
        '{% if alert.groups[0].keyValues[alertDef.groupByKeys[1]]|lower == "sample" %}sample-channel{% else %}generic-channel{% endif %}',
        None,
    ),
    ("cases", '{{ _context.entityLabels["channel"][0] }}', None),
    ("cases", CASES_TEMPLATE, "db-cases"),
]


@pytest.mark.parametrize(("entity", "template", "expected"), REFERENCE_TEMPLATES)
def test_reference_templates_render_on_the_shipped_samples(
    cli: Cli, entity: str, template: str, expected: str | None
) -> None:
    from cxslack.templating import render_template, sample_payload

    add_integration(cli, "Payments")
    create(cli, "Router", "payments", "--override", f"{entity}={template}")
    result = cli.ok("connectors", "render", "router", "--entity-type", entity, "-o", "json").json()
    want = expected or render_template(template, sample_payload(entity))
    assert result["source"] == "override"
    assert result["channel"] == want
    assert result["steps"][0]["outcome"] == "used"


def test_render_error_or_empty_falls_back_to_the_channel(cli: Cli, tmp_path: Path) -> None:
    add_integration(cli, "Payments")
    create(
        cli,
        "Router",
        "payments",
        "--override",
        "alerts={{ alertDef.entityLabels.missing }}",
        "--override",
        "cases={% if false %}x{% endif %}",
    )
    broken = cli.ok("connectors", "render", "router", "--entity-type", "alerts", "-o", "json").json()
    assert broken["channel"] == "payments-alerts" and broken["source"] == "channel"
    assert broken["steps"][0]["outcome"] == "error"
    assert broken["steps"][0]["error"]["code"] == "field_not_found"
    empty = cli.ok("connectors", "render", "router", "--entity-type", "cases", "-o", "json").json()
    assert empty["channel"] == "payments-alerts" and empty["steps"][0]["outcome"] == "empty"
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"alertDef": {"entityLabels": {"missing": "from-payload"}}}))
    given = cli.ok(
        "connectors", "render", "router", "--entity-type", "alerts", "--payload", str(payload), "-o", "json"
    ).json()
    assert given["channel"] == "from-payload"
    text = cli.ok("connectors", "render", "router", "--entity-type", "alerts").stdout
    assert "falls back to the channel" in text and "#payments-alerts" in text


def test_rendered_value_that_is_not_a_channel_falls_back(cli: Cli) -> None:
    add_integration(cli, "Payments")
    create(cli, "Router", "payments", "--override", "alerts={{ alertDef.name }}")
    result = cli.ok("connectors", "render", "router", "--entity-type", "alerts", "-o", "json").json()
    assert result["source"] == "channel"
    assert result["steps"][0]["error"]["code"] == "invalid_channel"


@pytest.mark.parametrize("payload", [b"\xff\xfe not utf-8", b"{not json", b"[1, 2]"])
def test_bad_payload_files_are_usage_errors(cli: Cli, tmp_path: Path, payload: bytes) -> None:
    add_integration(cli, "Payments")
    create(cli, "Router", "payments")
    path = tmp_path / "payload.json"
    path.write_bytes(payload)
    run = cli("connectors", "render", "router", "--entity-type", "alerts", "--payload", str(path))
    assert run.exit_code == 2
    assert "Traceback" not in run.stderr


HOSTILE = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ get_context.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.system('id') }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__ }}",
    "{{ alertDef.__class__ }}",
    "{{ alertDef|attr('__class__') }}",
    "{{ '%s'|format(alertDef) }}",
    "{{ 'x' * 1000000000 }}",
    "{{ 10 ** 10 ** 10 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{{ i }}{% endfor %}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% set a = [1] %}{% for i in range(60) %}{% set a = [a, a] %}{% endfor %}{{ a }}",
    "{% include 'other' %}",
    "{% extends 'base' %}",
    "{% import 'x' as y %}",
    "{{ range(10**9)|list }}",
    "{% if 'a' * 100 is matching('(a+)+$') %}x{% endif %}",
    "{{ config }}",
    "{{ request.environ }}",
    "{{ namespace() }}",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_templates_fail_safely_and_quickly(cli: Cli, template: str) -> None:
    add_integration(cli, "Payments")
    started = time.monotonic()
    run = cli("connectors", "create", "Hostile", "--integration", "payments", "--channel", "alerts",
              "--fallback-channel", "ops-fallback", "--override", f"alerts={template}", "-o", "json")  # fmt: skip
    if run.exit_code == 0:  # valid syntax: rendering must then fail in a bounded way
        result = cli.ok("connectors", "render", "hostile", "--entity-type", "alerts", "-o", "json").json()
        assert result["source"] == "channel"
        assert result["steps"][0]["outcome"] == "error"
    else:
        assert run.exit_code == 2
    assert time.monotonic() - started < 10


def test_export_import_round_trips_every_field(cli: Cli, tmp_path: Path) -> None:
    add_integration(cli, "Payments")
    original = create(
        cli, "Payments on-call", "payments", "--description", "Routing for payments",
        "--override", f"cases={CASES_TEMPLATE}", "--override", "alerts={{alertDef.entityLabels.team}}-alerts",
        "--override", "test-notifications=ops-fallback",
    )  # fmt: skip
    exported = json.loads(cli.ok("connectors", "export", "payments-on-call", "--format", "coralogix").stdout)
    body = exported["connector"]
    assert body["type"] == "SLACK"
    assert {f["fieldName"] for f in body["connectorConfig"]["fields"]} == {
        "integrationId",
        "channel",
        "fallbackChannel",
    }
    assert {o["entityType"] for o in body["configOverrides"]} == {"ALERTS", "CASES", "TEST_NOTIFICATIONS"}
    # Notification Center's field rules
    assert ID_PATTERN.fullmatch(body["id"]) and len(body["id"]) <= 128
    assert 1 <= len(body["name"]) <= 200 and len(body["description"]) <= 5000
    path = tmp_path / "connector.json"
    path.write_text(json.dumps(exported))
    cli.ok("connectors", "remove", "payments-on-call", "--yes")
    imported = cli.ok("connectors", "import", str(path), "-o", "json").json()
    assert imported["imported"] == [{"connector": "payments-on-call", "action": "created"}]
    again = cli.ok("connectors", "show", "payments-on-call", "-o", "json").json()["connector"]
    assert {k: v for k, v in again.items() if not k.endswith("_at")} == {
        k: v for k, v in original.items() if not k.endswith("_at")
    }
    all_docs = json.loads(cli.ok("connectors", "export").stdout)
    assert isinstance(all_docs, list) and all_docs[0] == exported
    path.write_text(json.dumps(all_docs))
    assert (  # the same content again changes nothing
        cli.ok("connectors", "import", str(path), "-o", "json").json()["imported"][0]["action"] == "unchanged"
    )


@pytest.mark.parametrize(
    "doc",
    [
        {"connector": {"name": "x", "type": "EMAIL"}},
        {"connector": {"name": "x", "connectorConfig": {"fields": []}}},
        {"connector": {"name": "x", "connectorConfig": {"fields": [
            {"fieldName": "integrationId", "value": "nope"}, {"fieldName": "channel", "value": "a"},
            {"fieldName": "fallbackChannel", "value": "b"}]}, "configOverrides": {"CASES": "not a list"}}},
        {"not": "a connector"},
    ],
)  # fmt: skip
def test_import_refuses_documents_it_cannot_honour(cli: Cli, tmp_path: Path, doc: dict[str, Any]) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    run = cli("connectors", "import", str(path), "-o", "json")
    assert run.exit_code == 2
    assert run.json()["error"]["code"] == "invalid_import"


def test_import_of_unknown_integration_is_not_found(cli: Cli, tmp_path: Path) -> None:
    doc = {"connector": {"id": "c1", "name": "x", "connectorConfig": {"fields": [
        {"fieldName": "integrationId", "value": "no-such"}, {"fieldName": "channel", "value": "a"},
        {"fieldName": "fallbackChannel", "value": "b"}]}}}  # fmt: skip
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    assert cli("connectors", "import", str(path)).exit_code == 3


# -- test notifications against the sandbox -------------------------------------------------------
def test_test_notification_is_delivered_with_block_kit(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Payments")
    create(cli, "Payments on-call", "payments")
    result = cli.ok("connectors", "test", "payments-on-call", "-o", "json").json()
    assert result["result"] == "success" and result["fallback_used"] is False and result["error"] is None
    assert result["ts"]
    message = sandbox_messages(slack, "payments-alerts")[-1]
    assert message["ts"] == result["ts"]
    assert "test notification" in message["text"]
    assert message["blocks"][0]["type"] == "header"


def test_failed_delivery_lands_on_the_fallback_channel(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Payments")
    create(cli, "Payments on-call", "payments")
    sandbox_admin(slack, "archive", channel="payments-alerts")
    run = cli("connectors", "test", "payments-on-call", "-o", "json")
    assert run.exit_code == 5  # delivered, but only to the fallback: the channel failed
    result = run.json()
    assert result["fallback_used"] is True and result["result"] == "success"
    assert result["primary_error"]["code"] == "is_archived"
    assert sandbox_messages(slack, "ops-fallback")[-1]["ts"] == result["ts"]
    human = cli("connectors", "test", "payments-on-call")
    assert human.exit_code == 5 and "fallback" in human.stderr and "archived" in human.stderr


def test_private_channel_without_the_app_says_to_invite_it(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Payments")
    create(cli, "Secure", "payments", channel="secure-ops")
    sandbox_admin(slack, "archive", channel="ops-fallback")  # so the failure itself is reported
    run = cli("connectors", "test", "secure", "-o", "json")
    assert run.exit_code == 1
    result = run.json()
    assert result["primary_error"]["code"] == "channel_not_found"
    assert "/invite" in result["primary_error"]["hint"]
    assert "/invite" in cli("connectors", "test", "secure").stderr


def test_two_way_sync_joins_public_channels_first(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Payments", "--two-way-sync")
    create(cli, "Cases", "payments", channel="cases")
    cli.ok("connectors", "test", "cases")
    import httpx

    calls = httpx.get(f"{slack.url}/_sandbox/calls").json()["methods"]
    assert calls.get("conversations.join") == 1


def test_revoked_token_marks_the_integration_failing(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Payments")
    create(cli, "Payments on-call", "payments")
    sandbox_admin(slack, "revoke")
    run = cli("connectors", "test", "payments-on-call", "-o", "json")
    assert run.exit_code == 4
    assert run.json()["error"]["code"] == "token_revoked"
    integration = cli.ok("integrations", "show", "payments", "-o", "json").json()["integration"]
    assert integration["status"] == "failing" and "token_revoked" in integration["status_reason"]


def test_pending_integration_cannot_test(cli: Cli, slack: Any) -> None:
    add_integration(cli, "Payments")
    create(cli, "Payments on-call", "payments")
    run = cli("connectors", "test", "payments-on-call")
    assert run.exit_code == 4
    assert "cxslack integrations authorize Payments" in run.stderr


def test_a_connector_whose_integration_is_gone_is_not_found(cli: Cli, cxslack_home: Path) -> None:
    add_integration(cli, "Payments")
    create(cli, "Payments on-call", "payments")
    config = cxslack_home / "config.toml"
    ident = cli.ok("integrations", "show", "payments", "-o", "json").json()["integration"]["id"]
    config.write_text(config.read_text().replace(f'integration = "{ident}"', 'integration = "gone"'))
    for args in (
        ["connectors", "test", "payments-on-call"],
        ["cases", "notify", "CASE-1", "--connector", "payments-on-call"],
    ):
        run = cli(*args, "-o", "json")
        assert run.exit_code == 3, (args, run.stderr)
        assert run.json()["error"]["code"] == "integration_not_found"
        assert "cxslack connectors edit 'Payments on-call' --integration" in run.stderr


def test_earlier_version_delivers_through_its_webhook(cli: Cli, httpx_mock: Any) -> None:
    hook = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"
    httpx_mock.add_response(url=hook, text="ok")
    add_integration(cli, "Legacy", "--integration-version", "0.0.9")
    cli.ok("integrations", "edit", "legacy", "--webhook-url-stdin", input=hook + "\n")
    create(cli, "Old route", "legacy")
    result = cli.ok("connectors", "test", "old-route", "-o", "json").json()
    assert result["result"] == "success"
    sent = json.loads(httpx_mock.get_requests()[0].content)
    assert "test notification" in sent["text"]
    shown = cli.ok("integrations", "show", "legacy")
    assert "hooks.slack.com/services" not in shown.stdout + shown.stderr


def test_all_reports_each_and_exits_5_when_some_failed(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Payments")
    for n, channel in enumerate(["alerts", "cases", "old-alerts", "general"]):
        create(cli, f"C{n}", "payments", channel=channel)
    sandbox_admin(slack, "archive", channel="ops-fallback")
    run = cli("connectors", "test", "--all", "-o", "json")
    assert run.exit_code == 5
    doc = run.json()
    assert doc["summary"] == {"total": 4, "success": 3, "failure": 1, "fallback": 0, "in_doubt": 0}
    failed = [r for r in doc["results"] if r["result"] == "failure"]
    assert failed[0]["connector"] == "c2"
    assert cli("connectors", "test", "--all", "--integration", "payments").exit_code == 5
    assert cli("connectors", "test").exit_code == 2
