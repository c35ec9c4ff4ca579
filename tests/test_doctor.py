"""`cxslack doctor`: each troubleshooting symptom produced for real against the sandbox, diagnosed with
its cause and remediation (exit 1), then fixed the way the remediation says (exit 0)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxslack.registry import Registry
from cxslack.sandbox import SlackSandbox
from cxslack.slack.client import SlackError

from .conftest import Cli, Run, add_integration, install, sandbox_admin
from .test_oauth_flow import authorize

CASES_TEMPLATE = '{% if _context.entityLabels["team"][0] == "db" %}db-cases{% else %}cases{% endif %}'
BROKEN_TEMPLATE = "{{ _context.entityLabels.nope }}"


def doctor(cli: Cli, *args: str) -> tuple[Run, dict[str, Any]]:
    run = cli("doctor", *args, "-o", "json")
    assert run.exit_code in (0, 1), run.stderr
    doc = run.json()
    assert run.exit_code == (0 if doc["healthy"] else 1)
    return run, doc


def find(doc: dict[str, Any], check_id: str, subject: str | None = None) -> dict[str, Any]:
    found = [c for c in doc["checks"] if c["id"] == check_id and (subject is None or c["subject"] == subject)]
    assert len(found) == 1, (check_id, subject, [c["id"] for c in doc["checks"]])
    return found[0]


def failed(doc: dict[str, Any]) -> list[str]:
    return [c["id"] for c in doc["checks"] if c["status"] == "fail"]


def calls(sb: SlackSandbox) -> dict[str, Any]:
    return dict(httpx.get(f"{sb.url}/_sandbox/calls").json())


def connector(
    cli: Cli, name: str, integration: str, channel: str, fallback: str = "ops-fallback", *extra: str
) -> None:
    cli.ok(
        "connectors", "create", name, "--integration", integration, "--channel", channel,
        "--fallback-channel", fallback, *extra,
    )  # fmt: skip


def show(cli: Cli, name: str) -> dict[str, Any]:
    return cli.ok("integrations", "show", name, "-o", "json").json()["integration"]


# -- Status shows Failing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "code", "cause"),
    [
        ("revoke", "token_revoked", "the app token was revoked"),
        ("uninstall", "account_inactive", "the workspace removed the Coralogix Slack app"),
    ],
)
def test_rejected_token_is_failing_until_the_app_is_reinstalled(
    cli: Cli, slack: SlackSandbox, action: str, code: str, cause: str
) -> None:
    install(cli, slack, "Payments", "--two-way-sync")
    connector(cli, "Payments on-call", "payments", "payments-alerts")
    assert doctor(cli)[0].exit_code == 0
    sandbox_admin(slack, action)

    run, doc = doctor(cli)
    assert run.exit_code == 1
    token = find(doc, "failing.token")
    assert token["status"] == "fail" and token["symptom"] == "failing"
    assert cause in token["message"] and "status set to Failing" in token["message"]
    assert token["remediation"] == "cxslack integrations authorize Payments"
    stored = show(cli, "payments")
    assert stored["status"] == "failing" and stored["status_reason"].startswith(code)
    # Nothing else asks Slack through a dead token: those checks say why they were skipped.
    assert find(doc, "routing.channels")["status"] == "skip"
    assert find(doc, "timeline.scopes")["status"] == "skip"
    assert failed(doc) == ["failing.token"]

    exit_code, _, err, _ = authorize(slack)  # the remediation, run for real
    assert exit_code == 0, err
    run, doc = doctor(cli)
    assert run.exit_code == 0, failed(doc)
    assert show(cli, "payments")["status"] == "active"


def test_a_failing_status_goes_back_to_active_when_the_token_works(cli: Cli, slack: SlackSandbox) -> None:
    from cxslack.oauth.flow import mark_failing_if_token_error

    created = install(cli, slack, "Payments")
    mark_failing_if_token_error(Registry(), created["id"], SlackError("invalid_auth", "stale"))
    assert show(cli, "payments")["status"] == "failing"

    run, doc = doctor(cli, "--symptom", "failing")
    assert run.exit_code == 0
    assert "status restored to Active" in find(doc, "failing.token")["message"]
    stored = show(cli, "payments")
    assert stored["status"] == "active" and stored["status_reason"] == ""


def test_an_expiring_rotation_token_is_refreshed_before_auth_test(cli: Cli, slack: SlackSandbox) -> None:
    # Tokens that live 5 minutes are inside cxslack's 10-minute refresh margin from the start.
    sandbox_admin(slack, "settings", token_rotation=True, expires_in=300)
    install(cli, slack, "Payments")
    before = calls(slack)["methods"]
    run, doc = doctor(cli, "--symptom", "failing")
    assert run.exit_code == 0, doc
    after = calls(slack)["methods"]
    assert after["oauth.v2.access"] - before.get("oauth.v2.access", 0) == 1
    assert after["auth.test"] - before["auth.test"] == 1


def test_offline_reports_the_recorded_failing_status(cli: Cli, slack: SlackSandbox) -> None:
    install(cli, slack, "Payments")
    sandbox_admin(slack, "revoke")
    doctor(cli, "--symptom", "failing")  # records Failing
    run, doc = doctor(cli, "--offline", "--symptom", "failing")
    assert run.exit_code == 1
    token = find(doc, "failing.token")
    assert "recorded as Failing (token_revoked" in token["message"] and "--offline" in token["message"]


# -- No Case timeline updates from Slack replies -------------------------------------------------


def test_bot_removed_from_a_private_channel_is_named_with_the_invite(cli: Cli, slack: SlackSandbox) -> None:
    install(cli, slack, "Payments", "--two-way-sync", "--channel-lookup")
    connector(cli, "DB", "payments", "private-db")
    assert doctor(cli)[0].exit_code == 0
    sandbox_admin(slack, "kick", channel="private-db")

    run, doc = doctor(cli)
    assert run.exit_code == 1
    membership = find(doc, "timeline.membership")
    assert membership["symptom"] == "no-timeline-updates" and membership["status"] == "fail"
    assert "#private-db (channel) not found, or private without the app" in membership["message"]
    assert membership["remediation"] == "in Slack, run /invite @Coralogix in #private-db"
    # The same channel is also where Case notifications can no longer be posted.
    channels = find(doc, "routing.channels")
    assert channels["status"] == "fail" and "/invite @Coralogix in #private-db" in channels["remediation"]

    sandbox_admin(slack, "invite", channel="private-db")
    assert doctor(cli)[0].exit_code == 0


def test_without_channel_lookup_membership_is_read_by_channel_id(cli: Cli, slack: SlackSandbox) -> None:
    """The product page's scopes only (no channels:read / groups:read): membership comes from the
    channel's history, read by the ID cxslack knows; a name it never posted to is a skip."""
    install(cli, slack, "Payments", "--two-way-sync")
    connector(cli, "DB", "payments", "G0PRIVATEDB", "C0OPSFALLBACK")  # by ID
    connector(cli, "Secure", "payments", "secure-ops")  # by name, private, the app not in it
    run, doc = doctor(cli, "--symptom", "no-timeline-updates")
    db = find(doc, "timeline.membership", "connector DB")
    assert db["status"] == "ok"
    secure = find(doc, "timeline.membership", "connector Secure")
    assert (
        secure["status"] == "skip"
        and "#secure-ops (channel): cxslack has not posted there yet" in secure["message"]
    )
    assert "cxslack integrations authorize Payments --channel-lookup" in secure["remediation"]

    sandbox_admin(slack, "kick", channel="private-db")
    run, doc = doctor(cli, "--symptom", "no-timeline-updates")
    db = find(doc, "timeline.membership", "connector DB")
    assert run.exit_code == 1 and db["status"] == "fail" and "private without the app" in db["message"]
    assert db["remediation"] == "in Slack, run /invite @Coralogix in G0PRIVATEDB"
    sandbox_admin(slack, "invite", channel="private-db")
    assert (
        find(doctor(cli, "--symptom", "no-timeline-updates")[1], "timeline.membership", "connector DB")[
            "status"
        ]
        == "ok"
    )

    # a post by name that Slack refused is what doctor reports; after /invite and a post, the ID is known
    assert cli("connectors", "test", "secure").exit_code == 5  # only the fallback got it
    secure = find(
        doctor(cli, "--symptom", "no-timeline-updates")[1], "timeline.membership", "connector Secure"
    )
    assert (
        secure["status"] == "fail" and "#secure-ops (channel) answered channel_not_found" in secure["message"]
    )
    sandbox_admin(slack, "invite", channel="secure-ops")
    cli.ok("connectors", "test", "secure")
    secure = find(
        doctor(cli, "--symptom", "no-timeline-updates")[1], "timeline.membership", "connector Secure"
    )
    assert secure["status"] == "ok"


def test_checks_that_need_channel_lookup_skip_with_the_command_that_grants_it(
    cli: Cli, slack: SlackSandbox
) -> None:
    install(cli, slack, "Payments")
    connector(cli, "Payments on-call", "payments", "payments-alerts")
    run, doc = doctor(cli)
    channels = find(doc, "routing.channels")
    assert run.exit_code == 0 and channels["status"] == "skip"
    assert "needs channels:read and groups:read" in channels["message"]
    assert channels["remediation"] == "cxslack integrations authorize Payments --channel-lookup"
    assert calls(slack)["methods"].get("conversations.list") is None  # never asked for what fails
    # on a terminal too, the command that grants them is shown — once, however many connectors skip
    connector(cli, "Payments backup", "payments", "payments-backup")
    table = cli("doctor", "Payments").stdout
    assert table.count("→ cxslack integrations authorize Payments --channel-lookup") == 1

    # asked for, but declined on Slack's page: still a skip, never an `ok` built on missing_scope
    install(
        cli, slack, "Lookup", "--channel-lookup", scopes=["chat:write", "chat:write.public", "channels:read"]
    )
    connector(cli, "Lookup on-call", "lookup", "payments-alerts")
    channels = find(doctor(cli, "Lookup")[1], "routing.channels")
    assert channels["status"] == "skip" and "groups:read" in channels["message"]


def test_public_channels_need_channels_join_when_the_bot_is_not_in_them(
    cli: Cli, slack: SlackSandbox
) -> None:
    from cxslack.scopes import FEATURE_SCOPES

    everything = [s.name for s in FEATURE_SCOPES if not s.user]
    install(cli, slack, "Payments", "--two-way-sync", scopes=[s for s in everything if s != "channels:join"])
    connector(cli, "Payments on-call", "payments", "payments-alerts")
    run, doc = doctor(cli, "--symptom", "no-timeline-updates")
    assert run.exit_code == 1
    assert "channels:join not granted" in find(doc, "timeline.scopes")["message"]
    membership = find(doc, "timeline.membership")
    assert "not in #payments-alerts (channel) and cannot join it" in membership["message"]
    assert "cxslack integrations authorize Payments" in membership["remediation"]


def test_two_way_sync_off_and_earlier_versions_are_warnings(cli: Cli, slack: SlackSandbox) -> None:
    install(cli, slack, "Payments")  # two-way sync off
    install(cli, slack, "Legacy", "--integration-version", "0.0.9")
    connector(cli, "Payments on-call", "payments", "payments-alerts")
    connector(cli, "Old", "legacy", "alerts")

    run, doc = doctor(cli, "--symptom", "no-timeline-updates")
    assert run.exit_code == 0  # optional features: warnings, not failures
    sync = find(doc, "timeline.two_way_sync")
    assert sync["status"] == "warn"
    assert sync["remediation"] == (
        "cxslack integrations edit Payments --two-way-sync && cxslack integrations authorize Payments"
    )
    version = find(doc, "timeline.version", "integration Legacy")
    assert version["status"] == "warn" and "v0.0.9 cannot sync" in version["message"]
    # No v0.1.0 integration with two-way sync exists yet, so the remediation adds one and migrates.
    assert version["remediation"] == (
        "cxslack integrations add --name 'Legacy v0.1.0' --two-way-sync --consent-us-data-transfer --authorize"
        " && cxslack connectors migrate --from Legacy --to 'Legacy v0.1.0'"
    )


# -- Coralogix Case URLs do not preview ----------------------------------------------------------


def test_declined_link_scopes_fail_until_reauthorized(cli: Cli, slack: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    sandbox_admin(slack, "settings", decline_scopes=["links:read", "links:write"])
    assert authorize(slack)[0] == 0

    run, doc = doctor(cli)
    assert run.exit_code == 1
    scopes = find(doc, "previews.scopes")
    assert scopes["symptom"] == "no-previews" and scopes["status"] == "fail"
    assert "links:read, links:write not granted" in scopes["message"]
    assert scopes["remediation"] == "cxslack integrations authorize Payments"

    sandbox_admin(slack, "settings", decline_scopes=[])
    assert authorize(slack)[0] == 0
    assert doctor(cli)[0].exit_code == 0


def test_previews_for_an_earlier_version_come_from_a_v0_1_0_integration(
    cli: Cli, slack: SlackSandbox
) -> None:
    install(cli, slack, "Legacy", "--integration-version", "0.0.9")
    alone = find(doctor(cli, "--symptom", "no-previews")[1], "previews.version")
    assert alone["status"] == "warn" and "cannot preview Case URLs" in alone["message"]
    install(cli, slack, "Payments")
    assert (
        find(doctor(cli, "--symptom", "no-previews")[1], "previews.version", "integration Legacy")["status"]
        == "ok"
    )


# -- Case notifications post to the wrong Slack channel ------------------------------------------


def test_a_broken_template_fails_until_fixed(cli: Cli, slack: SlackSandbox) -> None:
    install(cli, slack, "Payments")
    connector(cli, "Router", "payments", "alerts", "ops-fallback", "--override", f"cases={BROKEN_TEMPLATE}")

    run, doc = doctor(cli)
    assert run.exit_code == 1
    templates = find(doc, "routing.templates")
    assert templates["symptom"] == "wrong-channel" and templates["status"] == "fail"
    assert "the cases template fails on the sample payload (field_not_found" in templates["message"]
    assert "so cases notifications go to #alerts" in templates["message"]
    assert "cxslack connectors render Router --entity-type cases" in templates["remediation"]
    assert "cxslack connectors edit Router --override 'cases=TEMPLATE'" in templates["remediation"]

    cli.ok("connectors", "edit", "Router", "--override", f"cases={CASES_TEMPLATE}")
    run, doc = doctor(cli)
    assert run.exit_code == 0
    assert "cases → #db-cases" in find(doc, "routing.templates")["message"]


def test_a_channel_an_override_renders_must_exist(cli: Cli, slack: SlackSandbox, tmp_path: Path) -> None:
    install(cli, slack, "Payments", "--channel-lookup")
    template = '{{ _context.entityLabels["channel"][0] }}'  # db-incidents on the sample payload
    connector(cli, "Router", "payments", "alerts", "ops-fallback", "--override", f"cases={template}")
    channels = find(doctor(cli)[1], "routing.channels")
    assert channels["status"] == "fail"
    assert "#db-incidents (cases override) not found" in channels["message"]
    assert "cxslack connectors edit Router --override 'cases=TEMPLATE'" in channels["remediation"]

    payload = tmp_path / "case.json"
    payload.write_text(json.dumps({"_context": {"entityLabels": {"channel": ["db-cases"]}}}))
    run, doc = doctor(cli, "--payload", str(payload))
    assert run.exit_code == 0
    assert find(doc, "routing.templates")["message"] == "on the --payload file: cases → #db-cases"


def test_an_archived_channel_fails_until_unarchived(cli: Cli, slack: SlackSandbox) -> None:
    install(cli, slack, "Payments", "--channel-lookup")
    connector(cli, "Payments on-call", "payments", "C0PAYMENTSALERTS")  # by id: ids and names both match
    assert doctor(cli)[0].exit_code == 0
    sandbox_admin(slack, "archive", channel="ops-fallback")

    run, doc = doctor(cli)
    assert run.exit_code == 1
    channels = find(doc, "routing.channels")
    assert channels["message"] == "#ops-fallback (fallback channel) is archived"
    assert channels["remediation"] == (
        "unarchive #ops-fallback in Slack, or route elsewhere: "
        "cxslack connectors edit 'Payments on-call' --fallback-channel CHANNEL"
    )

    sandbox_admin(slack, "unarchive", channel="ops-fallback")
    assert doctor(cli)[0].exit_code == 0


def test_empty_templates_and_a_fallback_equal_to_the_channel_are_warnings(
    cli: Cli, slack: SlackSandbox
) -> None:
    install(cli, slack, "Payments")
    connector(
        cli, "Router", "payments", "alerts", "ops-fallback", "--override", "alerts={% if false %}x{% endif %}"
    )
    # create and edit refuse a fallback equal to the channel; one can still arrive from Coralogix
    exported = json.loads(cli.ok("connectors", "export", "router", "--format", "cxslack").stdout)
    exported["connector"]["fallback_channel"] = "alerts"
    cli.ok("connectors", "import", "-", input=json.dumps(exported))
    run, doc = doctor(cli, "--symptom", "wrong-channel")
    assert run.exit_code == 0
    assert find(doc, "routing.templates")["status"] == "warn"
    assert "renders empty" in find(doc, "routing.templates")["message"]
    fallback = find(doc, "routing.fallback")
    assert fallback["status"] == "warn"
    assert fallback["remediation"] == "cxslack connectors edit Router --fallback-channel CHANNEL"


# -- Banner says v0.1.0 is pending certification -------------------------------------------------


def test_certification_is_informational(cli: Cli, slack: SlackSandbox) -> None:
    install(cli, slack, "Payments")
    before = calls(slack)["total"]
    run, doc = doctor(cli, "--symptom", "certification")
    assert run.exit_code == 0
    assert [c["id"] for c in doc["checks"]] == ["certification.status"]
    assert doc["checks"][0]["status"] == "ok" and "no action required" in doc["checks"][0]["message"]
    assert calls(slack)["total"] == before


# -- Local health --------------------------------------------------------------------------------


def test_a_credentials_file_readable_by_others_fails(
    cli: Cli, slack: SlackSandbox, cxslack_home: Path
) -> None:
    install(cli, slack, "Payments")
    credentials = cxslack_home / "credentials.toml"
    os.chmod(credentials, 0o644)
    run, doc = doctor(cli, "--symptom", "local")
    assert run.exit_code == 1
    mode = find(doc, "local.credentials_mode")
    assert mode["status"] == "fail" and "mode 0644" in mode["message"]
    assert mode["remediation"] == f"chmod 600 {credentials}"
    os.chmod(credentials, 0o600)
    assert doctor(cli, "--symptom", "local")[0].exit_code == 0


def test_local_health_pending_app_credentials_and_leftovers(
    cli: Cli, slack: SlackSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(cli, slack, "Payments")
    install(cli, slack, "Legacy", "--integration-version", "0.0.9")
    install(cli, slack, "Retired", "--integration-version", "0.0.9")
    add_integration(cli, "Waiting")
    connector(cli, "Old", "legacy", "alerts")
    with Registry().editing() as (view, _):  # a connector whose integration was removed by hand
        view.connectors["ghost"] = {**view.connectors["old"], "name": "Ghost", "integration": "gone"}
    monkeypatch.delenv("CXSLACK_SLACK_CLIENT_SECRET")

    run, doc = doctor(cli, "--symptom", "local")
    assert run.exit_code == 1
    assert failed(doc) == ["local.missing_integration"]
    ghost = find(doc, "local.missing_integration")
    assert ghost["subject"] == "connector Ghost"
    assert ghost["remediation"].startswith("cxslack connectors edit Ghost --integration Payments")
    app = find(doc, "local.app_credentials")
    assert app["status"] == "warn" and app["remediation"] == "cxslack app configure"
    pending = find(doc, "local.installed", "integration Waiting")
    assert pending["status"] == "warn" and pending["remediation"] == "cxslack integrations authorize Waiting"
    legacy = find(doc, "local.migration", "integration Legacy")
    assert legacy["status"] == "warn"
    assert legacy["remediation"] == "cxslack connectors migrate --from Legacy --to Payments"
    retired = find(doc, "local.migration", "integration Retired")
    assert "no connectors left" in retired["message"]
    assert retired["remediation"] == "cxslack integrations remove Retired --yes"


def test_an_unreadable_config_is_one_failing_check(cli: Cli, cxslack_home: Path) -> None:
    add_integration(cli, "Payments")
    (cxslack_home / "config.toml").write_text("[integrations\n")
    run, doc = doctor(cli, "--symptom", "wrong-channel")
    assert run.exit_code == 1
    assert [c["id"] for c in doc["checks"]] == ["local.config"]
    assert "config.toml, line 1" in doc["checks"][0]["message"]


def test_webhook_only_earlier_versions_skip_slack_checks(cli: Cli, slack: SlackSandbox) -> None:
    add_integration(cli, "Legacy", "--integration-version", "0.0.9")
    cli.ok("integrations", "edit", "Legacy", "--webhook-url-stdin", input=f"{slack.url}/hooks/legacy\n")
    run, doc = doctor(cli, "--symptom", "failing")
    assert run.exit_code == 0
    token = find(doc, "failing.token")
    assert token["status"] == "skip" and "incoming webhook" in token["message"]


# -- Options, output and Slack economy -----------------------------------------------------------


def test_offline_makes_no_slack_call(cli: Cli, slack: SlackSandbox) -> None:
    install(cli, slack, "Payments", "--two-way-sync")
    connector(cli, "Router", "payments", "alerts", "ops-fallback", "--override", f"cases={BROKEN_TEMPLATE}")
    before = calls(slack)["total"]
    run, doc = doctor(cli, "--offline")
    assert calls(slack)["total"] == before
    assert run.exit_code == 1  # the template is still checked: it needs no Slack
    assert failed(doc) == ["routing.templates"]
    for check_id in ("failing.token", "timeline.membership", "routing.channels"):
        assert find(doc, check_id)["status"] == "skip"
        assert "--offline" in find(doc, check_id)["message"]


def test_symptom_runs_one_row(cli: Cli, slack: SlackSandbox) -> None:
    install(cli, slack, "Payments", "--two-way-sync")
    connector(cli, "Payments on-call", "payments", "payments-alerts")
    for symptom in ("failing", "no-timeline-updates", "no-previews", "wrong-channel", "local"):
        _, doc = doctor(cli, "--symptom", symptom)
        assert doc["checks"] and {c["symptom"] for c in doc["checks"]} == {symptom}
    before = calls(slack)["methods"]
    doctor(cli, "--symptom", "no-previews")
    assert "conversations.list" not in {
        k for k, v in calls(slack)["methods"].items() if v != before.get(k, 0)
    }
    bad = cli("doctor", "--symptom", "slow-pages")
    assert bad.exit_code == 2


def test_naming_an_integration_narrows_to_it(cli: Cli, slack: SlackSandbox) -> None:
    payments = install(cli, slack, "Payments")
    install(cli, slack, "Billing")
    connector(cli, "Payments on-call", "payments", "payments-alerts")
    connector(cli, "Billing on-call", "billing", "alerts")
    _, doc = doctor(cli, "PAYMENTS")
    assert {c["integration"] for c in doc["checks"]} == {payments["id"], None}
    assert {c["connector"] for c in doc["checks"]} == {"payments-on-call", None}
    missing = cli("doctor", "nope", "-o", "json")
    assert missing.exit_code == 3 and missing.json()["error"]["code"] == "integration_not_found"


def test_json_shape(cli: Cli, slack: SlackSandbox) -> None:
    install(cli, slack, "Payments")
    connector(cli, "Router", "payments", "alerts", "ops-fallback", "--override", f"cases={BROKEN_TEMPLATE}")
    _, doc = doctor(cli)
    assert doc["healthy"] is False
    for check in doc["checks"]:
        assert {"id", "symptom", "subject", "status", "message", "remediation"} <= set(check)
        assert check["status"] in {"ok", "warn", "fail", "skip"}
        assert check["remediation"] is None or isinstance(check["remediation"], str)
        assert check["status"] not in ("fail", "warn") or check["remediation"]
    summary = doc["summary"]
    assert summary["total"] == len(doc["checks"]) == sum(summary[s] for s in ("ok", "warn", "fail", "skip"))


def test_terminal_report_has_sections_rows_remediations_and_a_summary(cli: Cli, slack: SlackSandbox) -> None:
    install(cli, slack, "Payments", "--channel-lookup")
    connector(cli, "Router", "payments", "alerts", "ops-fallback", "--override", f"cases={BROKEN_TEMPLATE}")
    run = cli("doctor")
    assert run.exit_code == 1
    lines = run.stdout.splitlines()
    assert lines[0] == "Local" and "Integration Payments (v0.1.0, Active)" in lines
    assert "  Connector Router → #alerts (fallback #ops-fallback)" in lines
    failure = next(i for i, line in enumerate(lines) if line.startswith("    ✘ the cases template fails"))
    assert lines[failure + 1].startswith("      → see why: cxslack connectors render Router")
    assert any(line.startswith("  ✔ Slack accepts the bot token") for line in lines)
    counts = json.loads(cli("doctor", "-o", "json").stdout)["summary"]
    assert lines[-1].startswith(f"{counts['total']} checks: {counts['ok']} ok, ")
    assert lines[-1].endswith(", 1 failed")


def test_channels_come_from_one_conversations_list_page_per_integration(
    cli: Cli, slack: SlackSandbox
) -> None:
    for name in ("Payments", "Billing"):
        install(cli, slack, name, "--two-way-sync", "--channel-lookup")
        for n, channel in enumerate(("alerts", "payments-alerts", "cases", "db-cases", "private-db")):
            connector(cli, f"{name} {n}", name, channel)
    before = calls(slack)["methods"]
    assert doctor(cli)[0].exit_code == 0
    after = calls(slack)["methods"]
    used = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert used == {"auth.test": 2, "conversations.list": 2}


# -- Case buttons in Slack do nothing (case-actions) ------------------------------------------------
def test_case_buttons_need_the_scopes_the_team_id_and_a_listener(
    cli: Cli, cx: SlackSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxslack.state import open_state
    from cxslack.state.records import CaseThread
    from cxslack.store import Store

    monkeypatch.delenv("CX_TEAM_ID")  # the cx fixture names the sandbox's team; here nobody has
    integration = install(cli, cx, "Payments", scopes=["chat:write", "chat:write.public", "users:read"])
    connector(cli, "On-call", "payments", "payments-alerts")
    run, doc = doctor(cli, "--symptom", "case-actions")
    assert run.exit_code == 0  # nothing posted yet: what is missing warns
    assert (
        find(doc, "actions.scopes")["status"] == "warn"
        and "users:read.email" in find(doc, "actions.scopes")["message"]
    )
    coralogix = find(doc, "actions.coralogix")
    assert coralogix["status"] == "warn" and "--team-id" in coralogix["remediation"]
    listener = find(doc, "actions.listener")
    assert listener["status"] == "warn" and "cxslack listen" in listener["remediation"]

    open_state(Store()).threads.map(
        CaseThread("CASE-1", "on-call", "C0PAYMENTSALERTS", "1.1", integration["id"], "CASE-1")
    )
    run, doc = doctor(cli, "--symptom", "case-actions")
    assert run.exit_code == 1 and set(failed(doc)) == {"actions.scopes", "actions.coralogix"}

    install(cli, cx, "Payments2")  # every scope
    monkeypatch.setenv("CX_TEAM_ID", "4242")
    connector(cli, "On-call 2", "payments2", "payments-alerts")
    run, doc = doctor(cli, "Payments2", "--symptom", "case-actions")
    assert run.exit_code == 0 and failed(doc) == []
    assert "team 4242" in find(doc, "actions.coralogix")["message"]


def test_case_buttons_checks_for_earlier_versions_and_buttons_off(cli: Cli, slack: SlackSandbox) -> None:
    add_integration(cli, "Legacy", "--integration-version", "0.0.9")
    install(cli, slack, "Payments")
    connector(cli, "Quiet", "payments", "payments-alerts", "ops-fallback", "--no-case-actions")
    _, doc = doctor(cli, "--symptom", "case-actions")
    assert "need v0.1.0" in find(doc, "actions.version")["message"]
    assert "every connector has them off" in find(doc, "actions.enabled")["message"]
    assert [c["id"] for c in doc["checks"] if c["id"].startswith("actions.")] == [
        "actions.version",
        "actions.enabled",
    ]


def test_a_running_listener_is_seen(cli: Cli, cx: SlackSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from cxslack.listen import Listener
    from cxslack.state import open_state
    from cxslack.store import Store

    install(cli, cx, "Payments")
    connector(cli, "On-call", "payments", "payments-alerts")
    monkeypatch.setenv("CX_TEAM_ID", "4242")
    with Listener(lambda envelope: None, open_state(Store()).open_inbox(), signing_secret="x") as listener:
        listener.serve_http("127.0.0.1", 0)
        _, doc = doctor(cli, "--symptom", "case-actions")
        assert find(doc, "actions.listener")["status"] == "ok"
    _, doc = doctor(cli, "--symptom", "case-actions")
    assert find(doc, "actions.listener")["status"] == "warn"
