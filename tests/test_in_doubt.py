"""Outcome in doubt: a post that lands while its answer comes after the client's timeout.

The sandbox's `late` fault runs chat.postMessage (the message lands) and holds the answer past
the client's timeout, which these tests shorten to 0.3 s (CXSLACK_SLACK_TIMEOUT) so no
test waits the real 15 s. Whatever the scopes, each purpose — a connector's test notification, a
Case's root or update, a migration's test — ends with exactly one message across the channel and
the fallback channel: found in the channel's history when the app may read it (channels:history,
its ID known, a member), otherwise reported in doubt (exit 5) with nothing more sent.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from .conftest import Cli, install, sandbox_admin, sandbox_messages

REPETITIONS = 10
LATE = {"method": "chat.postMessage", "kind": "late", "seconds": 0.6}
# Repetitions take turns over these, so Slack's one-message-a-second per channel costs no waiting.
CHANNELS = ("alerts", "cases", "general", "db-cases", "payments-alerts")
EVERYWHERE = (*CHANNELS, "ops-fallback")


def channel(n: int) -> str:
    return CHANNELS[n % len(CHANNELS)]


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXSLACK_SLACK_TIMEOUT", "0.3")


def tagged(sb: Any, channels: tuple[str, ...], event_type: str, **payload: str) -> list[dict[str, Any]]:
    """Messages in `channels` whose metadata has `event_type` and every `payload` field."""
    found = []
    for name in channels:
        with httpx.Client() as http:
            messages = http.get(f"{sb.url}/_sandbox/messages", params={"channel": name}).json()["messages"]
        for message in messages:
            meta = message.get("metadata") or {}
            fields = meta.get("event_payload") or {}
            if meta.get("event_type") == event_type and all(fields.get(k) == v for k, v in payload.items()):
                found.append(message)
    return found


def setup_integration(cli: Cli, sb: Any, history: bool) -> None:
    """With history: two-way sync (channels:history), and each channel's ID learned and joined by
    an earlier test, as for any channel cxslack has posted to before. Without: the product's
    default scopes, no *:history."""
    install(cli, sb, "Payments", *(["--two-way-sync"] if history else []))
    if history:
        for name in CHANNELS:
            cli.ok("connectors", "create", f"Warm-up {name}", "--integration", "payments", "--channel", name,
                   "--fallback-channel", "ops-fallback")  # fmt: skip
        cli.ok("connectors", "test", "--all")


# -- connectors test ----------------------------------------------------------------------------
@pytest.mark.parametrize("history", [True, False], ids=["channels-history", "no-history"])
def test_connectors_test_leaves_exactly_one_message_when_the_answer_comes_late(
    cli: Cli, slack: Any, history: bool
) -> None:
    setup_integration(cli, slack, history)
    for n in range(REPETITIONS):
        cli.ok("connectors", "create", f"T{n}", "--integration", "payments", "--channel", channel(n),
               "--fallback-channel", "ops-fallback")  # fmt: skip
        sandbox_admin(slack, "faults", **LATE)
        run = cli("connectors", "test", f"t{n}", "-o", "json")
        doc = run.json()
        tests = tagged(slack, EVERYWHERE, "cxslack_test_notification", connector=f"t{n}")
        assert len(tests) == 1, f"repetition {n}: {len(tests)} messages"
        assert not doc["fallback_used"]
        if history:  # found by its metadata: delivered, once
            assert run.exit_code == 0 and doc["recovered"] is True and doc["ts"] == tests[0]["ts"]
        else:  # cannot look: in doubt, with the channel and the time, and never the fallback
            assert run.exit_code == 5 and doc["in_doubt"] is True
            assert doc["error"]["code"] == "test_in_doubt"
            assert f"#{channel(n)}" in doc["error"]["message"] and "--resend" in doc["error"]["hint"]
            rerun = cli("connectors", "test", f"t{n}", "-o", "json")  # the rerun decides: still cannot tell
            assert rerun.exit_code == 5 and rerun.json()["in_doubt"] is True
            assert len(tagged(slack, EVERYWHERE, "cxslack_test_notification", connector=f"t{n}")) == 1


def test_connectors_test_resend_after_looking_and_a_rerun_that_can_look(cli: Cli, slack: Any) -> None:
    setup_integration(cli, slack, history=False)
    cli.ok("connectors", "create", "T", "--integration", "payments", "--channel", "alerts",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    sandbox_admin(slack, "faults", **LATE)
    assert cli("connectors", "test", "t").exit_code == 5
    [lost] = tagged(slack, ("alerts",), "cxslack_test_notification", connector="t")
    assert [c["subject"] for c in in_doubt_checks(cli)] == ["integration Payments"]  # doctor tells too
    # the person looks, finds nothing (a moderator removed it, say), and says so
    sandbox_admin(slack, "delete", channel="alerts", ts=lost["ts"])
    resent = cli("connectors", "test", "t", "--resend", "-o", "json")
    assert resent.exit_code == 0 and resent.json()["recovered"] is False
    assert len(tagged(slack, ("alerts",), "cxslack_test_notification", connector="t")) == 1
    assert cli("connectors", "test", "t").exit_code == 0  # settled: an ordinary test again
    assert in_doubt_checks(cli) == []


def in_doubt_checks(cli: Cli) -> list[dict[str, Any]]:
    doc = cli("doctor", "--symptom", "local", "--offline", "-o", "json").json()
    return [c for c in doc["checks"] if c["id"] == "local.in_doubt"]


def test_connectors_test_all_reports_in_doubt_ones_and_exits_5(cli: Cli, slack: Any) -> None:
    setup_integration(cli, slack, history=False)
    for n, name in enumerate(["alerts", "cases", "general"]):
        cli.ok("connectors", "create", f"A{n}", "--integration", "payments", "--channel", name,
               "--fallback-channel", "ops-fallback")  # fmt: skip
    sandbox_admin(slack, "faults", **LATE)
    run = cli("connectors", "test", "--all", "--workers", "1", "-o", "json")
    assert run.exit_code == 5
    summary = run.json()["summary"]
    assert summary["in_doubt"] == 1 and summary["success"] == 2
    assert sandbox_messages(slack, "ops-fallback") == []


# -- cases notify ------------------------------------------------------------------------------
def case_json(n: int) -> str:
    return json.dumps(
        {
            "case": {
                "id": f"00000000-0000-4000-8000-{n:012d}",
                "readableId": f"CASE-{100 + n}",
                "title": f"Repetition {n}",
                "status": "CASE_STATUS_ACTIVE",
                "priority": "CASE_PRIORITY_P2",
                "labels": [{"key": "team", "value": "payments"}],
            }
        }  # fmt: skip
    )


def notify(cli: Cli, n: int, *extra: str, connector: str = "on-call") -> Any:
    return cli("cases", "notify", f"CASE-{100 + n}", "--connector", connector, "--case-json", "-", "-o", "json",
               *extra, input=case_json(n))  # fmt: skip


@pytest.mark.parametrize("history", [True, False], ids=["channels-history", "no-history"])
def test_cases_notify_posts_exactly_one_root_when_the_answer_comes_late(
    cli: Cli, cx: Any, history: bool
) -> None:
    setup_integration(cli, cx, history)
    for name in CHANNELS:
        cli.ok("connectors", "create", f"On-call {name}", "--integration", "payments", "--channel", name,
               "--fallback-channel", "ops-fallback")  # fmt: skip
    for n in range(REPETITIONS):
        case_id, connector = f"00000000-0000-4000-8000-{n:012d}", f"on-call {channel(n)}"
        sandbox_admin(cx, "faults", **LATE)
        run = notify(cli, n, connector=connector)
        roots = tagged(cx, EVERYWHERE, "coralogix_case_notification", case_id=case_id)
        assert len(roots) == 1, f"repetition {n}: {len(roots)} roots"
        if history:
            [posted] = run.json()["notifications"]
            assert run.exit_code == 0 and posted["recovered"] and posted["ts"] == roots[0]["ts"]
            assert not posted["fallback_used"]
        else:
            assert run.exit_code == 5 and run.json()["error"]["code"] == "root_in_doubt"
            assert f"#{channel(n)}" in run.json()["error"]["message"]
            assert notify(cli, n, connector=connector).exit_code == 5  # the rerun cannot tell either
            assert len(tagged(cx, EVERYWHERE, "coralogix_case_notification", case_id=case_id)) == 1


@pytest.mark.parametrize("history", [True, False], ids=["channels-history", "no-history"])
def test_a_case_update_whose_answer_comes_late_is_posted_once(cli: Cli, cx: Any, history: bool) -> None:
    setup_integration(cli, cx, history)
    cli.ok("connectors", "create", "On-call", "--integration", "payments", "--channel", "alerts",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    assert notify(cli, 1).exit_code == 0  # the root (its answer not lost)
    for _ in range(3):
        sandbox_admin(cx, "faults", **LATE)
        run = notify(cli, 1, "--event", "acknowledged")
        updates = tagged(cx, ("alerts", "ops-fallback"), "coralogix_case_update")
        assert len(updates) == 1
        if history:  # found in the thread (conversations.replies)
            assert run.exit_code == 0 and run.json()["notifications"][0]["recovered"]
            break
        assert run.exit_code == 5 and run.json()["error"]["code"] == "update_in_doubt"
    if not history:
        sandbox_admin(cx, "faults", clear=True)
        resent = notify(cli, 1, "--event", "acknowledged", "--resend")
        assert resent.exit_code == 0
        assert len(tagged(cx, ("alerts",), "coralogix_case_update")) == 2  # the person said to: a duplicate


# -- connectors migrate --test -------------------------------------------------------------------
@pytest.mark.parametrize("history", [True, False], ids=["channels-history", "no-history"])
def test_migrate_test_sends_exactly_one_test_when_the_answer_comes_late(
    cli: Cli, slack: Any, history: bool
) -> None:
    install(cli, slack, "Legacy", "--integration-version", "0.0.9")
    setup_integration(cli, slack, history)
    for n in range(REPETITIONS):
        cli.ok("connectors", "create", f"M{n}", "--integration", "legacy", "--channel", channel(n),
               "--fallback-channel", "ops-fallback")  # fmt: skip
        sandbox_admin(slack, "faults", **LATE)
        run = cli("connectors", "migrate", f"m{n}", "--to", "payments", "--test", "-o", "json")
        tests = tagged(slack, EVERYWHERE, "cxslack_migration_test", connector=f"m{n}")
        assert len(tests) == 1, f"repetition {n}: {len(tests)} tests"
        if history:
            assert run.exit_code == 0 and run.json()["migrated"] == [f"m{n}"]
            continue
        assert run.exit_code == 5
        [failed] = run.json()["failed"]
        assert failed["error"]["code"] == "test_in_doubt" and f"#{channel(n)}" in failed["error"]["message"]
        again = cli("connectors", "migrate", f"m{n}", "--to", "payments", "--test", "-o", "json")
        assert again.exit_code == 5 and again.json()["failed"][0]["error"]["code"] == "test_in_doubt"
        assert len(tagged(slack, EVERYWHERE, "cxslack_migration_test", connector=f"m{n}")) == 1
        cli.ok("connectors", "migrate", f"m{n}", "--to", "payments", "--no-test")  # the person saw it arrive
    shown = cli.ok("connectors", "list", "-o", "json").json()["connectors"]
    assert {c["integration"] for c in shown if c["id"].startswith("m")} == {
        cli.ok("integrations", "show", "payments", "-o", "json").json()["integration"]["id"]
    }


def test_a_webhook_whose_answer_is_lost_is_in_doubt(cli: Cli, httpx_mock: Any) -> None:
    """An incoming webhook cannot be read back: a lost answer is in doubt, and stays so."""
    from .conftest import add_integration

    hook = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"
    httpx_mock.add_exception(httpx.ReadTimeout("no answer"), url=hook)
    add_integration(cli, "Legacy", "--integration-version", "0.0.9")
    cli.ok("integrations", "edit", "legacy", "--webhook-url-stdin", input=hook + "\n")
    cli.ok("connectors", "create", "Old route", "--integration", "legacy", "--channel", "alerts",
           "--fallback-channel", "ops-fallback")  # fmt: skip
    run = cli("connectors", "test", "old-route", "-o", "json")
    assert run.exit_code == 5 and run.json()["in_doubt"] is True
    assert "incoming webhook, which cannot be read back" in run.json()["error"]["message"]
    assert cli("connectors", "test", "old-route").exit_code == 5  # nothing sent: one request in all
    assert len(httpx_mock.get_requests()) == 1
    assert "hooks.slack.com/services" not in run.stdout + run.stderr
