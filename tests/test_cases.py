"""Case notifications: reply modes, the root kept current, at most one root, Coralogix errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from cxslack.sandbox.coralogix import CORALOGIX_READONLY_API_KEY, member_id

from .conftest import Cli, on_call, sandbox_admin, sandbox_messages


def ready(cli: Cli, sandbox: Any, *extra: str) -> None:
    on_call(cli, sandbox, "--two-way-sync", connector=extra)


def set_case(sandbox: Any, case: str, **fields: str) -> None:
    httpx.post(
        f"{sandbox.url}/_sandbox/coralogix/cases/update", json={"id": case, **fields}
    ).raise_for_status()


def notify(cli: Cli, *args: str) -> dict[str, Any]:
    return cli.ok("cases", "notify", *args, "--connector", "on-call", "-o", "json").json()["notifications"][0]


def top_level(sandbox: Any) -> list[dict[str, Any]]:
    return [m for m in sandbox_messages(sandbox, "payments-alerts") if m.get("thread_ts") in (None, m["ts"])]


def replies(sandbox: Any) -> list[dict[str, Any]]:
    return [
        m for m in sandbox_messages(sandbox, "payments-alerts") if m.get("thread_ts") not in (None, m["ts"])
    ]


def test_show_prints_the_case_and_its_link(cli: Cli, cx: Any) -> None:
    doc = cli.ok("cases", "show", "case-1", "-o", "json").json()
    assert doc["case"]["readableId"] == "CASE-1"
    assert doc["link"].startswith(cx.url) and doc["case"]["id"] in doc["link"]
    assert doc["assignee"] == "Alice Anderson"  # the team member behind UserDetails.userId
    text = cli.ok("cases", "show", "CASE-1").stdout
    assert "P1" in text and "Alice Anderson" in text and "userId" not in text and "{" not in text


def test_show_without_a_team_id_names_no_assignee(cli: Cli, cx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CX_TEAM_ID")
    text = cli.ok("cases", "show", "CASE-1").stdout
    assert "assigned (to name them: cxslack coralogix configure --team-id ID)" in text
    assert "userId" not in text and "{" not in text


def test_thread_mode_posts_one_root_and_replies_and_keeps_the_root_current(cli: Cli, cx: Any) -> None:
    ready(cli, cx)
    first = notify(cli, "CASE-1")
    assert first["action"] == "root" and first["reply_mode"] == "thread"
    for status in ("CASE_STATUS_ACKNOWLEDGED", "CASE_STATUS_RESOLVED"):
        set_case(cx, "CASE-1", status=status)
        later = notify(cli, "CASE-1")
        assert later["action"] == "reply" and later["root_ts"] == first["ts"] and later["root_updated"]
    assert len(top_level(cx)) == 1 and len(replies(cx)) == 2
    root = top_level(cx)[0]
    assert "Resolved" in root["text"]  # the root always shows the latest status
    assert root["metadata"]["event_type"] == "coralogix_case_notification"
    uuid = cli.ok("cases", "show", "CASE-1", "-o", "json").json()["case"]["id"]
    assert root["metadata"]["event_payload"]["case_id"] == uuid
    header = root["blocks"][0]
    assert header["type"] == "header" and "CASE-1" in header["text"]["text"]


def test_new_message_mode_posts_every_update_as_a_new_message(cli: Cli, cx: Any) -> None:
    ready(cli, cx, "--case-reply-mode", "new-message")
    for _ in range(3):
        assert notify(cli, "CASE-2")["reply_mode"] == "new-message"
    assert len(top_level(cx)) == 3 and replies(cx) == []


def test_thread_broadcast_sets_reply_broadcast(cli: Cli, cx: Any) -> None:
    ready(cli, cx)
    cli.ok("cases", "settings", "CASE-1", "--reply-mode", "thread-broadcast")
    notify(cli, "CASE-1")
    notify(cli, "CASE-1", "--event", "priority-changed")
    (reply,) = replies(cx)
    assert reply["subtype"] == "thread_broadcast"
    assert "Priority changed" in reply["text"]


def test_per_case_settings_override_the_connector_default(cli: Cli, cx: Any) -> None:
    ready(cli, cx, "--case-reply-mode", "new-message")
    shown = cli.ok(
        "cases", "settings", "case-3", "--reply-mode", "thread", "--mute-sync", "-o", "json"
    ).json()
    assert shown == {"case": "CASE-3", "reply_mode": "thread", "mute_sync": True, "case_actions": None}
    notify(cli, "CASE-3")
    assert notify(cli, "CASE-3")["action"] == "reply"
    assert cli("cases", "settings", "CASE-3", "--reply-mode", "sideways").exit_code == 2
    assert cli("cases", "settings", "not a case").exit_code == 2


def test_case_routing_uses_the_cases_override(cli: Cli, cx: Any) -> None:
    ready(
        cli,
        cx,
        "--override",
        'cases={% if _context.entityLabels.service is defined and "checkout" in _context.entityLabels.service %}'
        "cases{% else %}db-cases{% endif %}",
    )
    assert notify(cli, "CASE-1")["channel"] == "C0CASES"
    assert notify(cli, "CASE-3")["channel"] == "C0DBCASES"


def test_case_json_from_stdin_for_webhooks(cli: Cli, cx: Any) -> None:
    ready(cli, cx)
    case = '{"case": {"id": "11111111-2222-3333-4444-555555555555", "readableId": "CASE-77", "title": "From a webhook", "status": "CASE_STATUS_ACTIVE", "priority": "CASE_PRIORITY_P2", "labels": {"team": ["db"]}}}'
    run = cli.ok(
        "cases", "notify", "CASE-77", "--connector", "on-call", "--case-json", "-", "-o", "json", input=case
    )
    assert run.json()["notifications"][0]["action"] == "root"
    assert "From a webhook" in top_level(cx)[0]["text"]
    assert (
        cli(
            "cases", "notify", "CASE-77", "--connector", "on-call", "--case-json", "-", input="{nope"
        ).exit_code
        == 2
    )


def kill_while_posting(cx: Any, *args: str) -> None:
    """Start `cases notify`, kill -9 it while its chat.postMessage is in flight, and let the
    sandbox finish that post: Slack has the root, cxslack's thread map does not."""
    sandbox_admin(cx, "faults", method="chat.postMessage", kind="latency", seconds=1.5, count=1)
    before = httpx.get(f"{cx.url}/_sandbox/calls").json()["methods"].get("chat.postMessage", 0)
    proc = subprocess.Popen([sys.executable, "-m", "cxslack", "cases", "notify", *args, "--connector", "on-call"],
                            env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while (
        httpx.get(f"{cx.url}/_sandbox/calls").json()["methods"].get("chat.postMessage", 0) == before
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    roots = len(top_level(cx))
    while len(top_level(cx)) == roots and time.monotonic() < deadline:  # the sandbox finishes the post
        time.sleep(0.05)


def test_a_root_posted_just_before_a_crash_is_found_not_repeated(cli: Cli, cx: Any) -> None:
    """The channel's ID is remembered from an earlier post and the bot joined it (two-way sync):
    the next notify reads the channel's history by ID and adopts the root."""
    ready(cli, cx)
    notify(cli, "CASE-2")  # an earlier post: cxslack learns #payments-alerts' ID and joins it
    kill_while_posting(cx, "CASE-1")
    assert len(top_level(cx)) == 2
    again = notify(cli, "CASE-1")
    assert again["recovered_root"] is True and again["action"] == "reply"
    assert len(top_level(cx)) == 2


def test_a_root_in_doubt_that_cannot_be_looked_up_is_not_posted_again(cli: Cli, cx: Any) -> None:
    """The first post ever to the channel, channels:read/groups:read declined (the default): no
    ID to read history by. cxslack says so and posts nothing until told what happened."""
    ready(cli, cx)
    kill_while_posting(cx, "CASE-1")
    assert len(top_level(cx)) == 1
    run = cli("cases", "notify", "CASE-1", "--connector", "on-call")
    assert run.exit_code == 5  # in doubt: a person looks
    assert "cannot tell whether it arrived" in run.stderr and "#payments-alerts" in run.stderr
    assert "--root-link" in run.stderr and "--resend" in run.stderr
    assert len(top_level(cx)) == 1  # nothing posted a second time
    [root] = top_level(cx)
    link = f"https://sandbox-workspace.slack.com/archives/C0PAYMENTSALERTS/p{root['ts'].replace('.', '')}"
    adopted = notify(cli, "CASE-1", "--root-link", link)
    assert adopted["action"] == "reply" and adopted["root_ts"] == root["ts"]
    assert len(top_level(cx)) == 1 and len(replies(cx)) == 1


def test_repost_root_after_looking(cli: Cli, cx: Any) -> None:
    ready(cli, cx)
    kill_while_posting(cx, "CASE-1")
    sandbox_admin(cx, "delete", channel="payments-alerts", ts=top_level(cx)[0]["ts"])  # it is not there
    assert cli("cases", "notify", "CASE-1", "--connector", "on-call").exit_code == 5
    reposted = notify(cli, "CASE-1", "--resend")
    assert reposted["action"] == "root" and len(top_level(cx)) == 1


def test_two_notifies_at_once_make_one_root(cli: Cli, cx: Any) -> None:
    ready(cli, cx)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cxslack", "cases", "notify", "CASE-2", "--connector", "on-call"],
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    assert len(top_level(cx)) == 1 and len(replies(cx)) == 1


def test_coralogix_errors_map_to_exit_codes_naming_the_permission(
    cli: Cli, cx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready(cli, cx)
    missing = cli("cases", "notify", "CASE-404", "--connector", "on-call", "-o", "json")
    assert missing.exit_code == 3
    monkeypatch.setenv("CX_API_KEY", "cx-api-key-for-tests")
    denied = cli("cases", "notify", "CASE-1", "--connector", "on-call")
    assert denied.exit_code == 4 and "case:Read" in denied.stderr
    monkeypatch.setenv("CX_API_KEY", CORALOGIX_READONLY_API_KEY)
    assert cli("cases", "show", "CASE-1").exit_code == 0
    monkeypatch.delenv("CX_API_KEY")
    unconfigured = cli("cases", "show", "CASE-1")
    assert unconfigured.exit_code == 4 and "cxslack coralogix configure" in unconfigured.stderr


def test_coralogix_503_twice_then_200_succeeds(cli: Cli, cx: Any) -> None:
    ready(cli, cx)
    sandbox_admin(cx, "faults", method="coralogix.cases.get", kind="status", status=503, count=2)
    assert notify(cli, "CASE-1")["action"] == "root"


def test_many_cases_in_one_run_and_partial_failure(cli: Cli, cx: Any) -> None:
    ready(cli, cx)
    run = cli("cases", "notify", "CASE-1", "CASE-2", "CASE-404", "--connector", "on-call", "-o", "json")
    assert run.exit_code == 5
    doc = run.json()
    assert sorted(n["case"] for n in doc["notifications"]) == ["CASE-1", "CASE-2"]
    assert doc["failed"][0]["case"] == "CASE-404"


def test_a_public_channel_named_in_the_connector_is_joined_by_id_and_replies_sync_once(
    cli: Cli, cx: Any
) -> None:
    """The product page's order on the strict sandbox: post by name (chat:write.public), take the
    ID from chat.postMessage's answer, join by that ID; the bot is then a member, so a person's
    reply reaches `cxslack sync` (and Slack's events) and becomes exactly one comment."""
    ready(cli, cx)
    channel = cx.workspace.channels["C0PAYMENTSALERTS"]
    assert channel.bot_member is False
    root = notify(cli, "CASE-1")
    assert root["channel"] == "C0PAYMENTSALERTS" and channel.bot_member is True
    sandbox_admin(cx, "reply", channel="payments-alerts", thread_ts=root["ts"], user="U0BOB", text="looking")
    for _ in range(2):
        cli.ok("sync")
    comments = httpx.get(f"{cx.url}/_sandbox/coralogix/comments", params={"case": "CASE-1"}).json()[
        "comments"
    ]
    assert len(comments) == 1
    later = notify(cli, "CASE-1")  # by the remembered ID: no call needs the name any more
    assert later["channel"] == "C0PAYMENTSALERTS" and later["action"] == "reply"


def slack_texts(value: Any) -> list[str]:
    """Every string a person can read in a message: its text and every text in its blocks."""
    if isinstance(value, dict):
        return [
            t
            for k, v in value.items()
            if k in ("text", "blocks", "fields", "elements")
            for t in slack_texts(v)
        ]
    if isinstance(value, list):
        return [t for item in value for t in slack_texts(item)]
    return [value] if isinstance(value, str) else []


def test_a_v5_case_renders_as_people_read_it(cli: Cli, cx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Assignee UserDetails {userId}, labels [{key, value}], CASE_PRIORITY_/CASE_STATUS_ enums: the
    card says who (a Slack mention of the team member), key:value, P1 and Active — and no text
    anywhere holds a `{`, a userId or a Python repr."""
    ready(cli, cx)
    root = notify(cli, "CASE-1")
    [card] = top_level(cx)
    fields = [f["text"] for f in card["blocks"][1]["fields"]]
    assert fields == [
        "*Status*\nActive",
        "*Priority*\nP1",
        "*Assignee*\n<@U0ALICE>",
        "*Labels*\nenv:prod, service:checkout",
    ]
    set_case(cx, "CASE-1", assignee="carol@example.com")
    notify(cli, "CASE-1", "--event", "assignee-changed")
    assert "assigned to *<@U0CAROL>*" in replies(cx)[-1]["blocks"][0]["text"]["text"]
    monkeypatch.delenv("CX_TEAM_ID")  # nobody to ask who the userId is: the assignee is left out
    set_case(cx, "CASE-1", priority="CASE_PRIORITY_P2")
    notify(cli, "CASE-1", "--event", "priority-changed")
    [card] = top_level(cx)
    assert [f["text"].split("\n")[0] for f in card["blocks"][1]["fields"]] == [
        "*Status*",
        "*Priority*",
        "*Labels*",
    ]
    notify(cli, "CASE-1", "--event", "assignee-changed")
    assert replies(cx)[-1]["text"] == "CASE-1: Assignee changed (assigned)"
    httpx.post(f"{cx.url}/_sandbox/coralogix/cases/update", json={"id": "CASE-1", "assignee": None})
    notify(cli, "CASE-1", "--event", "assignee-changed")
    assert "unassigned" in replies(cx)[-1]["text"]
    for message in sandbox_messages(cx, "payments-alerts"):
        for text in slack_texts(message):
            assert "{" not in text and "userId" not in text and "None" not in text, text
            assert not any(member_id(p) in text for p in ("alice@example.com", "carol@example.com")), text
    assert root["action"] == "root"
