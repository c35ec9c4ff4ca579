"""Inputs that used to slip through: unbounded or absurd JSON, durations, addresses and times,
mistyped or mismatched Case JSON, text over Slack's limits, misplaced webhooks, URL passwords."""

from __future__ import annotations

import functools
import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cxslack.slack.limits import HEADER_TEXT_MAX, MARKER, MESSAGE_TEXT_MAX

from .conftest import Cli, add_integration, install, on_call, run_process, sandbox_messages

CASE = {"id": "11111111-2222-3333-4444-555555555555", "readableId": "CASE-123", "title": "Disk full",
        "status": "CASE_STATUS_ACTIVE", "priority": "CASE_PRIORITY_P2",
        "labels": [{"key": "team", "value": "db"}]}  # fmt: skip


def connector(cli: Cli, sb: Any) -> None:
    on_call(cli, sb)


# -- one bounded JSON reader -----------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ("connectors", "render", "on-call", "--entity-type", "alerts", "--payload"),
    ("cases", "notify", "CASE-123", "--connector", "on-call", "--case-json"),
    ("connectors", "import"),
    ("doctor", "--offline", "--payload"),
])  # fmt: skip
def test_json_inputs_are_bounded_in_size_and_depth(cli: Cli, slack: Any, tmp_path: Path,
                                                   command: tuple[str, ...]) -> None:  # fmt: skip
    connector(cli, slack)
    started = time.monotonic()
    endless = cli(*command, "/dev/zero")
    assert endless.exit_code == 2 and "larger than" in endless.stderr
    assert time.monotonic() - started < 30  # it stopped reading at the limit
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    nested = cli(*command, str(deep))
    assert nested.exit_code == 2, nested.stderr
    assert "levels deep" in nested.stderr and "internal" not in nested.stderr.lower()
    objects = tmp_path / "objects.json"
    objects.write_text('{"a":' * 200 + "1" + "}" * 200)
    assert "levels deep" in cli(*command, str(objects)).stderr


# -- durations, addresses, times -------------------------------------------------------------
@pytest.mark.parametrize("value", ["", ":3000", "local host:3000", "127.0.0.1:70000", "127.0.0.1:"])
def test_listen_refuses_an_empty_or_malformed_address(cli: Cli, value: str) -> None:
    # a process with a timeout: an address read as the default would start listening, not fail
    run = run_process(
        "listen", "--http", value, env={"CXSLACK_SLACK_SIGNING_SECRET": "sekrit-value-123"}, timeout=30
    )
    assert run.exit_code == 2 and "--http takes HOST:PORT" in run.stderr


@pytest.mark.parametrize("value", ["inf", "nan", "-5"])
def test_durations_refuse_inf_nan_and_negatives(cli: Cli, value: str) -> None:
    serve = run_process("sandbox", "serve", "--latency", value, timeout=30)  # accepted, it would serve on
    assert serve.exit_code == 2 and "--latency must be a number of seconds" in serve.stderr
    collect = cli("access-logs", "collect", "x", "--interval", value, "--file", "-")
    assert collect.exit_code == 2 and "--interval must be a number of seconds" in collect.stderr


def test_since_needs_a_utc_offset(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Prod", "--access-logs")
    run = cli("access-logs", "collect", "prod", "--since", "2026-11-29T08:00:00", "--file", "-")
    assert run.exit_code == 2 and "no UTC offset" in run.stderr and "2026-11-29T08:00:00Z" in run.stderr
    assert cli("sandbox", "serve", "--host", "bad host").exit_code == 2


# -- Case JSON -------------------------------------------------------------------------------
@pytest.mark.parametrize("field,value", [("title", 5), ("priority", ["P1"]), ("status", {"x": 1}),
                                         ("labels", "team"), ("labels", [7])])  # fmt: skip
def test_case_json_with_wrong_field_types_is_refused(cli: Cli, cx: Any, field: str, value: Any) -> None:
    connector(cli, cx)
    run = cli("cases", "notify", "CASE-123", "--connector", "on-call", "--case-json", "-",
              input=json.dumps({**CASE, field: value}))  # fmt: skip
    assert run.exit_code == 2 and field in run.stderr, run.stderr
    assert "Hint:" in run.stderr
    assert sandbox_messages(cx, "payments-alerts") == []


def test_case_json_for_another_case_is_refused(cli: Cli, cx: Any) -> None:
    connector(cli, cx)
    run = cli(
        "cases", "notify", "CASE-1", "--connector", "on-call", "--case-json", "-", input=json.dumps(CASE)
    )
    assert run.exit_code == 2
    assert "is Case CASE-123, not CASE-1" in run.stderr and "cxslack cases notify CASE-123" in run.stderr
    assert sandbox_messages(cx, "payments-alerts") == []
    by_uuid = cli(
        "cases", "notify", CASE["id"], "--connector", "on-call", "--case-json", "-", input=json.dumps(CASE)
    )
    assert by_uuid.exit_code == 0, by_uuid.stderr


# -- Slack's limits ----------------------------------------------------------------------------
def test_a_huge_title_is_cut_to_slacks_limits_with_a_marker(cli: Cli, cx: Any) -> None:
    connector(cli, cx)
    huge = {
        **CASE,
        "title": "x" * 1_000_000,
        "assignee": "a" * 5000,
        "labels": [{"key": "k", "value": "v" * 5000}],
    }
    cli.ok(
        "cases", "notify", "CASE-123", "--connector", "on-call", "--case-json", "-", input=json.dumps(huge)
    )
    [message] = sandbox_messages(cx, "payments-alerts")
    assert len(message["text"]) <= MESSAGE_TEXT_MAX and message["text"].endswith(MARKER)
    header = message["blocks"][0]["text"]["text"]
    assert len(header) <= HEADER_TEXT_MAX and header.endswith(MARKER)
    assert all(len(f["text"]) <= 2000 for f in message["blocks"][1]["fields"])


def test_the_sandbox_refuses_what_slack_refuses(cli: Cli, slack: Any) -> None:
    token = slack.issue_token()["access_token"]

    def post(channel: str, **params: Any) -> dict[str, Any]:  # one channel each: no rate limit in the way
        return dict(httpx.post(slack.api_url + "chat.postMessage", data={"channel": channel, **params},
                               headers={"Authorization": f"Bearer {token}"}).json())  # fmt: skip

    assert post("general", text="x" * MESSAGE_TEXT_MAX)["ok"]
    assert post("alerts", text="x" * (MESSAGE_TEXT_MAX + 1))["error"] == "msg_too_long"
    header = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
    assert post("cases", text="t", blocks=json.dumps(header))["error"] == "invalid_blocks"
    fields = [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]
    assert post("db-cases", text="t", blocks=json.dumps(fields))["error"] == "invalid_blocks"


# -- integrations and secrets --------------------------------------------------------------
def test_a_webhook_url_is_refused_on_a_v010_integration(cli: Cli) -> None:
    add_integration(cli, "Payments")
    run = cli("integrations", "edit", "payments", "--webhook-url-stdin",
              input="https://hooks.slack.com/services/T000/B000/XXXXXXXX\n")  # fmt: skip
    assert run.exit_code == 2 and "incoming webhooks are for earlier versions" in run.stderr
    assert "cxslack integrations authorize Payments" in run.stderr
    assert "XXXXXXXX" not in run.stderr


def test_a_password_in_the_slack_api_url_is_never_shown(
    cli: Cli, slack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxslack.slack import client

    connector(cli, slack)
    monkeypatch.setattr(client, "RetryPolicy", functools.partial(client.RetryPolicy, connection_retries=0))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://ops:hunter2-sekrit@127.0.0.1:{port}/api/"
    for args in (("connectors", "test", "on-call"), ("connectors", "test", "on-call", "-o", "json")):
        run = cli(*args, env={"CXSLACK_SLACK_API_URL": url})
        assert run.exit_code != 0
        assert "could not reach Slack at http://****@127.0.0.1" in run.stdout + run.stderr
        assert "hunter2-sekrit" not in run.stdout + run.stderr
