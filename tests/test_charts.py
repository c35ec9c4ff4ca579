"""The alert evaluation chart: drawn from Coralogix's data, shared once into the Case's thread,
never in the way of the notification. Against the sandbox as Slack and Coralogix, over loopback."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxslack.charts.model import interval, log_count_query, parse_duration
from cxslack.charts.promql import split_comparison
from cxslack.sandbox.coralogix import CORALOGIX_API_KEY
from tests.conftest import Cli, add_integration, install, on_call, sandbox_admin, sandbox_messages

CPU_QUERY = 'avg(container_cpu_usage_percent{service="checkout-api"})'
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def charted(cli: Cli, sb: Any, *flags: str, scopes: list[str] | None = None) -> None:
    """A v0.1.0 integration with the chart (and two-way sync, so the bot joins the channel), and a
    connector to #payments-alerts."""
    on_call(cli, sb, "--evaluation-chart", *flags, scopes=scopes)


def notify(cli: Cli, case: str = "CASE-1", *extra: str, expect: int = 0) -> dict[str, Any]:
    run = cli("cases", "notify", case, "--connector", "on-call", "-o", "json", *extra)
    assert run.exit_code == expect, run.stdout + run.stderr
    return dict(run.json()["notifications"][0])


def file_messages(sb: Any) -> list[dict[str, Any]]:
    return [m for m in sandbox_messages(sb, "payments-alerts") if m.get("files")]


def calls(sb: Any) -> dict[str, int]:
    return dict(httpx.get(f"{sb.url}/_sandbox/calls").json()["methods"])


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def queried(sb: Any, query: str, start: str, end: str, step: float) -> list[list[float]]:
    """What the sandbox's Prometheus-compatible API answers for the chart's own query."""
    answer = httpx.get(f"{sb.url}/metrics/api/v1/query_range", headers={"Authorization": f"Bearer {CORALOGIX_API_KEY}"},
                       params={"query": query, "start": start, "end": end, "step": step}).json()  # fmt: skip
    return [[t, float(v)] for t, v in answer["data"]["result"][0]["values"]]


# -- Must hold: a metric-alert Case → exactly one PNG in the root's thread -------------------------
def test_a_metric_alert_case_gets_exactly_one_chart_in_the_roots_thread(cli: Cli, cx: Any) -> None:
    charted(cli, cx, "--two-way-sync")
    before = calls(cx)
    root = notify(cli)
    [chart] = root["charts"]
    assert chart["status"] == "shared" and chart["alert_name"] == "CPU above 90% on checkout-api"
    assert (chart["channel"], chart["thread_ts"]) == (root["channel"], root["ts"])
    after = calls(cx)
    # three upload calls per chart: reserve, bytes, share
    for step in ("files.getUploadURLExternal", "files.upload_url", "files.completeUploadExternal"):
        assert after.get(step, 0) - before.get(step, 0) == 1, step
    [message] = file_messages(cx)
    assert message["thread_ts"] == root["ts"] != message["ts"]  # a reply in the root's thread
    [uploaded] = httpx.get(f"{cx.url}/_sandbox/files").json()["files"]
    assert uploaded["id"] == chart["file_id"] == message["files"][0]["id"] and uploaded["completed"]
    data = httpx.get(f"{cx.url}/_sandbox/files/content", params={"id": uploaded["id"]}).content
    assert png_size(data) == (1200, 675) and 20_000 < len(data) <= 1_000_000
    assert uploaded["mimetype"] == "image/png" and uploaded["size"] == len(data)
    alt = uploaded["alt_txt"]
    assert "CPU above 90% on checkout-api" in alt and "Threshold: > 90" in alt and "Triggered at" in alt
    assert len(alt) <= 1000

    # what the picture shows is what Coralogix answered: every point, the threshold, the trigger
    drawn = chart["drawn"]
    start, end = drawn["x_range"]
    step = drawn["series"][0]["points"][1][0] - drawn["series"][0]["points"][0][0]
    assert step == 300  # the alert's own 5-minute evaluation window
    assert drawn["series"][0]["points"] == queried(cx, CPU_QUERY, start, end, step)
    assert drawn["threshold"]["value"] == 90.0
    case = httpx.get(f"{cx.url}/_sandbox/coralogix/cases").json()["cases"][0]
    trigger = case["caseIndicators"]["alertIndicators"][0]["triggerTime"]
    assert [m["kind"] for m in drawn["markers"]] == ["triggered"]
    assert drawn["markers"][0]["at"][:19] == trigger[:19]
    assert max(v for _, v in drawn["series"][0]["points"]) > 90  # the breach is in the picture

    # later notifications of the same trigger share nothing more
    update = notify(cli)
    assert [c["status"] for c in update["charts"]] == ["already_shared"]
    assert len(file_messages(cx)) == 1 and calls(cx)["files.getUploadURLExternal"] == 1


def test_a_log_alert_is_charted_as_counts_per_evaluation_window(cli: Cli, cx: Any) -> None:
    charted(cli, cx, "--two-way-sync")
    [chart] = notify(cli, "CASE-2")["charts"]
    assert chart["status"] == "shared" and chart["alert_name"] == "Payment errors above 50 in 10 minutes"
    points = chart["drawn"]["series"][0]["points"]
    assert {b[0] - a[0] for a, b in zip(points, points[1:], strict=False)} == {600.0}  # 10-minute windows
    assert chart["drawn"]["threshold"]["value"] == 50 and max(v for _, v in points) > 50


# -- Must hold: when the data cannot be had, the notification goes out without a chart ------------
def test_without_files_write_the_notification_posts_and_says_why(cli: Cli, cx: Any) -> None:
    from cxslack.registry import Registry
    from cxslack.sandbox.server import DEFAULT_BOT_SCOPES

    charted(cli, cx, "--two-way-sync", scopes=DEFAULT_BOT_SCOPES)  # the product page's scopes: no files:write
    integration = Registry().view().find("payments")
    assert "files:write" in integration.requested_scopes and "files:write" not in integration.granted_scopes
    root = notify(cli)
    assert root["action"] == "root" and root["ts"]
    [chart] = root["charts"]
    assert chart["status"] == "skipped" and chart["reason"]["code"] == "missing_scope"
    assert "files:write" in chart["reason"]["message"] and not file_messages(cx)


def test_a_403_from_the_metrics_api_leaves_the_chart_out_with_the_reason(cli: Cli, cx: Any) -> None:
    charted(cli, cx, "--two-way-sync")
    sandbox_admin(
        cx, "coralogix/data-permissions", permissions=["alerts:ReadConfig", "logs.data-api#high:ReadData"]
    )
    run = cli("cases", "notify", "CASE-1", "--connector", "on-call")
    assert run.exit_code == 0 and "posted the root message" in run.stderr
    assert "no chart" in run.stderr and "metrics.data-api#high:ReadData" in run.stderr  # logged for people
    [chart] = notify(cli)["charts"]  # and reported for scripts (the update's turn tries again)
    assert chart["status"] == "skipped" and chart["reason"]["code"] == "coralogix_forbidden"
    assert "metrics.data-api#high:ReadData" in chart["reason"]["message"] and not file_messages(cx)


def test_an_empty_series_leaves_the_chart_out(cli: Cli, cx: Any) -> None:
    charted(cli, cx, "--two-way-sync")
    sandbox_admin(cx, "coralogix/metrics", query=CPU_QUERY, points=[])
    root = notify(cli)
    assert root["ts"] and [(c["status"], c["reason"]["code"]) for c in root["charts"]] == [
        ("skipped", "no_data")
    ]
    assert not file_messages(cx)


def test_a_log_alert_with_no_data_leaves_the_chart_out(cli: Cli, cx: Any) -> None:
    charted(cli, cx, "--two-way-sync")
    sandbox_admin(cx, "coralogix/log-counts", lucene="status:error", counts=[])
    [chart] = notify(cli, "CASE-2")["charts"]
    assert (chart["status"], chart["reason"]["code"]) == ("skipped", "no_data") and not file_messages(cx)


def test_cases_without_a_chartable_alert_say_why(cli: Cli, cx: Any) -> None:
    charted(cli, cx, "--two-way-sync")
    assert notify(cli, "CASE-3")["charts"][0]["reason"]["code"] == "no_alert_indicators"
    assert notify(cli, "CASE-5")["charts"][0]["reason"]["code"] == "unsupported_alert_type"
    assert not file_messages(cx)


def test_without_the_charts_extra_the_notification_says_how_to_install_it(
    cli: Cli, cx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    charted(cli, cx, "--two-way-sync")
    monkeypatch.setattr("cxslack.charts.render.charts_available", lambda: False)
    [chart] = notify(cli)["charts"]
    assert chart["reason"]["code"] == "charts_extra_missing" and "cxslack[charts]" in chart["reason"]["hint"]


def test_chart_flags_override_the_integration_per_run(cli: Cli, cx: Any) -> None:
    on_call(cli, cx, "--two-way-sync")  # no chart, no files:write
    assert notify(cli)["charts"] == []
    [chart] = notify(cli, "CASE-1", "--chart")["charts"]
    assert chart["reason"]["code"] == "missing_scope"  # asked for, and Slack says what is missing
    assert "cxslack integrations edit Payments --evaluation-chart" in chart["reason"]["hint"]  # its real name
    assert "NAME" not in chart["reason"]["hint"]
    cli.ok("integrations", "edit", "payments", "--evaluation-chart")
    assert notify(cli, "CASE-2", "--no-chart")["charts"] == []


def test_a_channel_the_app_is_not_in_gets_no_chart_and_the_remedy(cli: Cli, cx: Any) -> None:
    charted(cli, cx)  # no two-way sync: the bot posts by chat:write.public and never joins
    [chart] = notify(cli)["charts"]
    assert chart["reason"]["code"] == "not_in_channel" and "/invite" in chart["reason"]["hint"]
    sandbox_admin(cx, "invite", channel="payments-alerts")
    assert [c["status"] for c in notify(cli)["charts"]] == ["shared"]
    assert len(file_messages(cx)) == 1


# -- Must hold: an upload whose answer was lost is looked up, not repeated ------------------------
def test_a_lost_share_answer_is_found_in_the_thread_and_not_shared_again(cli: Cli, cx: Any) -> None:
    charted(cli, cx, "--two-way-sync")
    sandbox_admin(cx, "faults", kind="lost", method="files.completeUploadExternal")
    first = notify(cli, expect=5)  # the notification is out; the chart's outcome is unknown
    assert first["ts"] and [c["status"] for c in first["charts"]] == ["in_doubt"]
    assert len(file_messages(cx)) == 1  # Slack did share it
    again = notify(cli)
    assert [c["status"] for c in again["charts"]] == ["already_shared"]
    assert again["charts"][0]["file_id"] == first["charts"][0]["file_id"]
    assert len(file_messages(cx)) == 1 and calls(cx)["files.getUploadURLExternal"] == 1
    assert [c["status"] for c in notify(cli)["charts"]] == ["already_shared"]


def test_a_lost_share_without_history_is_completed_once_at_most(cli: Cli, cx: Any) -> None:
    charted(cli, cx)  # without two-way sync: no history scope to look with
    sandbox_admin(cx, "invite", channel="payments-alerts")
    sandbox_admin(cx, "faults", kind="lost", method="files.completeUploadExternal")
    assert [c["status"] for c in notify(cli, expect=5)["charts"]] == ["in_doubt"]
    # the rerun cannot look, and completing the same upload again is refused (it was completed):
    # still in doubt, nothing new shared, however often it runs
    for _ in range(2):
        [chart] = notify(cli, expect=5)["charts"]
        assert chart["status"] == "in_doubt" and "--resend" in chart["reason"]["hint"]
    assert len(file_messages(cx)) == 1
    # a person looked and wants it again: --resend shares a new one
    assert [c["status"] for c in notify(cli, "CASE-1", "--resend")["charts"]] == ["shared"]
    assert len(file_messages(cx)) == 2


def test_a_share_lost_before_slack_applied_it_is_completed_by_the_rerun(cli: Cli, cx: Any) -> None:
    charted(cli, cx)
    sandbox_admin(cx, "invite", channel="payments-alerts")
    sandbox_admin(cx, "faults", kind="drop", method="files.completeUploadExternal")
    assert [c["status"] for c in notify(cli, expect=5)["charts"]] == ["in_doubt"]
    assert not file_messages(cx)
    [chart] = notify(cli)["charts"]  # completing the same upload now shares it, once
    assert chart["status"] == "shared" and len(file_messages(cx)) == 1


# -- cases chart: the picture without Slack ------------------------------------------------------
def test_cases_chart_draws_locally_and_describes_what_it_drew(cli: Cli, cx: Any, tmp_path: Path) -> None:
    target = tmp_path / "cpu.png"
    doc = cli.ok("cases", "chart", "CASE-4", "--file", str(target), "-o", "json").json()
    assert png_size(target.read_bytes()) == (1200, 675)
    chart = doc["chart"]
    assert doc["file"] == str(target) and chart["alert"]["name"] == "Search p95 latency above 1.5 s"
    drawn = chart["picture"]["drawn"]
    assert drawn["series"][0]["points"] == chart["series"][0]["points"]  # plotted = queried
    assert [m["kind"] for m in drawn["markers"]] == ["triggered", "resolved"]
    assert drawn["threshold"]["value"] == 1.5 and chart["step_seconds"] == 60
    assert not httpx.get(f"{cx.url}/_sandbox/files").json()["files"]  # Slack never heard of it
    human = cli.ok("cases", "chart", "CASE-4", "--file", str(tmp_path / "b.png"))
    assert "Threshold: > 1.5" in human.stdout and "resolved" in human.stdout
    piped = subprocess.run([sys.executable, "-m", "cxslack", "cases", "chart", "CASE-1", "--file", "-"],
                           capture_output=True, check=True)  # fmt: skip
    assert piped.stdout.startswith(PNG_SIGNATURE)


def test_cases_chart_errors(cli: Cli, cx: Any, tmp_path: Path) -> None:
    refused = cli("cases", "chart", "CASE-1", "--file", "-", "-o", "json")
    assert refused.exit_code == 2 and refused.json()["error"]["code"] == "usage_error"
    missing = cli("cases", "chart", "CASE-3", "--file", str(tmp_path / "x.png"), "-o", "json")
    assert missing.exit_code == 3 and missing.json()["error"]["code"] == "no_alert_indicators"
    unsupported = cli("cases", "chart", "CASE-5", "--file", str(tmp_path / "x.png"))
    assert unsupported.exit_code == 1 and "tracing threshold alert" in unsupported.stderr
    sandbox_admin(cx, "coralogix/data-permissions", permissions=[])
    forbidden = cli("cases", "chart", "CASE-1", "--file", str(tmp_path / "x.png"))
    assert forbidden.exit_code == 4 and "alerts:ReadConfig" in forbidden.stderr


# -- the feature in the scope table --------------------------------------------------------------
def test_the_chart_is_a_v0_1_0_feature_with_files_write(cli: Cli) -> None:
    created = add_integration(cli, "Payments", "--evaluation-chart")
    assert created["evaluation_chart"] is True and "files:write" in created["requested_scopes"]
    legacy = cli("integrations", "add", "--name", "Old", "--integration-version", "0.0.9", "--evaluation-chart",
                 "--consent-us-data-transfer", "-o", "json")  # fmt: skip
    assert legacy.exit_code == 2 and legacy.json()["error"]["code"] == "feature_needs_v0_1_0"
    off = cli.ok("integrations", "edit", "payments", "--no-evaluation-chart", "-o", "json").json()[
        "integration"
    ]
    assert "files:write" not in off["requested_scopes"]
    manifest = cli.ok("app", "manifest", "--evaluation-chart", "--format", "json").json()
    assert "files:write" in manifest["oauth_config"]["scopes"]["bot"]
    assert (
        "files:write"
        not in cli.ok("app", "manifest", "--format", "json").json()["oauth_config"]["scopes"]["bot"]
    )


def test_listing_integrations_never_imports_the_charts_extra() -> None:
    probe = ("import sys\nfrom cxslack.cli.app import main\nsys.argv = ['cxslack', 'integrations', 'list', '-o', 'json']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\nassert 'matplotlib' not in sys.modules, 'matplotlib was imported'\n")  # fmt: skip
    subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True)


# -- the pieces ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("promql", "expression", "operator", "value"),
    [
        ("avg_over_time(metric_name[5m]) > 10", "avg_over_time(metric_name[5m])", ">", 10.0),
        (
            'sum(rate(x{job!="a", code=~"5.."}[1m])) >= bool 0.5',
            'sum(rate(x{job!="a", code=~"5.."}[1m]))',
            ">=",
            0.5,
        ),
        ("90 < avg(cpu)", "avg(cpu)", ">", 90.0),
        ("avg(cpu)", "avg(cpu)", None, None),
        ('count(up{job="a>b"} == 0)', 'count(up{job="a>b"} == 0)', None, None),
    ],
)
def test_the_promql_comparison_is_split_off(promql: str, expression: str, operator: str | None,
                                            value: float | None) -> None:  # fmt: skip
    split = split_comparison(promql)
    assert (split.expression, split.operator, split.value) == (expression, operator, value)


def test_windows_and_log_queries() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("90s") == 90 and parse_duration("soon") is None
    assert (interval(600), interval(5400), interval(90)) == ("10m", "90m", "90s")
    query = log_count_query({"luceneQuery": "msg:'x'", "labelFilters": {
        "applicationName": [{"operation": "LOG_FILTER_OPERATION_TYPE_STARTS_WITH", "value": "pay"}],
        "severities": ["LOG_SEVERITY_ERROR"]}}, 600)  # fmt: skip
    assert query == ("source logs | lucene 'msg:\\'x\\'' | filter (startsWith($l.applicationname, 'pay')) && "
                     "($m.severity == ERROR) | groupby roundTime($m.timestamp, 10m) as bucket aggregate count() as count")  # fmt: skip


def test_doctor_checks_the_charts_scope_and_extra(cli: Cli, cx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from cxslack.sandbox.server import DEFAULT_BOT_SCOPES

    install(cli, cx, "Declined", "--evaluation-chart", scopes=DEFAULT_BOT_SCOPES)
    install(cli, cx, "Granted", "--evaluation-chart")
    run = cli("doctor", "--symptom", "evaluation-chart", "-o", "json")
    assert run.exit_code == 1
    rows = {(c["subject"], c["id"]): c for c in run.json()["checks"]}
    declined = rows[("integration Declined", "chart.scopes")]
    assert declined["status"] == "fail" and "files:write" in declined["message"]
    assert "cxslack integrations authorize Declined" in declined["remediation"]
    assert rows[("integration Granted", "chart.scopes")]["status"] == "ok"
    monkeypatch.setattr("cxslack.charts.render.charts_available", lambda: False)
    extra = cli("doctor", "Granted", "--symptom", "evaluation-chart", "-o", "json").json()["checks"]
    assert [c["remediation"] for c in extra if c["id"] == "chart.extra"] == ["pip install 'cxslack[charts]'"]
