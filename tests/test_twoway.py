"""Two-way comment sync and Case URL previews: the handlers `listen` runs, and `cxslack sync`."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from cxslack.events import RetryableError, make_handler

from .conftest import Cli, install, sandbox_admin, sandbox_messages, tracked_case

_ids = itertools.count(1)


def reply(
    sandbox: Any, root: dict[str, Any], user: str = "U0ALICE", text: str = "Rolled back the deploy"
) -> dict[str, Any]:
    ts = sandbox_admin(sandbox, "reply", channel=root["channel"], thread_ts=root["ts"], user=user, text=text)[
        "ts"
    ]
    return {
        "type": "message",
        "channel": root["channel"],
        "user": user,
        "text": text,
        "ts": ts,
        "thread_ts": root["ts"],
    }


def envelope(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "event_callback",
        "event_id": f"Ev{next(_ids):06d}",
        "team_id": "T0SANDBOX",
        "event": event,
    }


def comments(sandbox: Any, case: str = "CASE-1") -> list[dict[str, Any]]:
    return list(
        httpx.get(f"{sandbox.url}/_sandbox/coralogix/comments", params={"case": case}).json()["comments"]
    )


def comment_text(event: dict[str, Any]) -> str:
    return str(event["eventData"]["comment"].get("unsafeText", ""))


def test_a_reply_becomes_one_comment_with_author_email_and_link(cli: Cli, cx: Any) -> None:
    root = tracked_case(cli, cx)
    handle = make_handler()
    event = reply(cx, root)
    result = handle(envelope(event))
    assert result.action == "comment"
    (comment,) = comments(cx)
    text = comment_text(comment)
    assert "Rolled back the deploy" in text
    assert "alice@example.com" in text
    assert f"/archives/{root['channel']}/p{event['ts'].replace('.', '')}" in text
    for _ in range(3):  # Slack's retries, and redeliveries, never duplicate
        handle(envelope(event))
    assert len(comments(cx)) == 1


def test_a_guest_from_another_team_gets_no_email(cli: Cli, cx: Any) -> None:
    root = tracked_case(cli, cx)
    make_handler()(envelope(reply(cx, root, user="U0EXTERNAL", text="I can see it from our side")))
    text = comment_text(comments(cx)[0])
    assert "Erin" in text and "erin@partner.example" not in text and "@" not in text.split("\n")[0]


def test_bot_and_cxslack_messages_and_untracked_threads_are_skipped(cli: Cli, cx: Any) -> None:
    root = tracked_case(cli, cx)
    handle = make_handler()
    bot = {
        "type": "message",
        "channel": root["channel"],
        "bot_id": "B0SANDBOX",
        "text": "beep",
        "ts": "1.1",
        "thread_ts": root["ts"],
    }
    assert handle(envelope(bot)).action == "skipped"
    update = cli.ok("cases", "notify", "CASE-1", "--connector", "on-call", "-o", "json").json()[
        "notifications"
    ][0]
    ours = next(m for m in sandbox_messages(cx, "payments-alerts") if m["ts"] == update["ts"])
    own = {
        "type": "message",
        "channel": root["channel"],
        "user": "U0BOB",
        **{k: ours[k] for k in ("ts", "thread_ts", "text", "metadata")},
    }
    assert handle(envelope(own)).action == "skipped"
    elsewhere = sandbox_admin(cx, "post", channel="general", user="U0BOB", text="hello")["ts"]
    untracked = {
        "type": "message",
        "channel": "C0GENERAL",
        "user": "U0BOB",
        "text": "x",
        "ts": elsewhere + "1",
        "thread_ts": elsewhere,
    }
    assert handle(envelope(untracked)) is None
    assert comments(cx) == []


def test_muted_cases_are_not_synced(cli: Cli, cx: Any) -> None:
    root = tracked_case(cli, cx)
    cli.ok("cases", "settings", "CASE-1", "--mute-sync")
    handle = make_handler()
    assert handle(envelope(reply(cx, root))).action == "skipped"
    cli.ok("cases", "settings", "CASE-1", "--unmute-sync")
    assert handle(envelope(reply(cx, root, text="now synced"))).action == "comment"
    assert len(comments(cx)) == 1


def test_edits_and_deletions_are_recorded_once(cli: Cli, cx: Any) -> None:
    root = tracked_case(cli, cx)
    handle = make_handler()
    original = reply(cx, root)
    handle(envelope(original))
    edited = {"type": "message", "subtype": "message_changed", "channel": root["channel"],
              "message": {**original, "text": "Rolled back deploy 42"}, "previous_message": original}  # fmt: skip
    assert handle(envelope(edited)).action == "edit"
    assert handle(envelope(edited)).action == "skipped"
    deleted = {
        "type": "message",
        "subtype": "message_deleted",
        "channel": root["channel"],
        "deleted_ts": original["ts"],
        "previous_message": original,
    }
    [comment] = comments(cx)  # the edit updated the comment the reply became: nothing stacked
    assert "Rolled back deploy 42" in comment_text(comment) and comment.get("updateTime")
    assert handle(envelope(deleted)).action == "delete"
    handle(envelope(deleted))
    assert comments(cx) == []  # the deletion deleted it


def test_earlier_versions_and_sync_off_do_not_sync(cli: Cli, cx: Any) -> None:
    root = tracked_case(cli, cx)
    cli.ok("integrations", "edit", "payments", "--no-two-way-sync")
    assert make_handler()(envelope(reply(cx, root))) is None
    assert comments(cx) == []


def test_a_coralogix_outage_is_retryable_and_loses_nothing(cli: Cli, cx: Any) -> None:
    root = tracked_case(cli, cx)
    handle = make_handler()
    event = envelope(reply(cx, root))
    sandbox_admin(cx, "faults", method="coralogix.cases.comment", kind="status", status=503, count=20)
    with pytest.raises(RetryableError):
        handle(event)
    sandbox_admin(cx, "faults", clear=True)
    assert handle(event).action == "comment"
    assert len(comments(cx)) == 1


def test_cxslack_sync_polls_replies_once(cli: Cli, cx: Any) -> None:
    root = tracked_case(cli, cx)
    for n in range(3):
        reply(cx, root, text=f"reply {n}")
    first = cli.ok("sync", "-o", "json").json()
    assert first["counts"]["comment"] == 3
    case_id = cli.ok("cases", "show", "CASE-1", "-o", "json").json()["case"]["id"]
    assert {(s["case"], s["case_name"], s["action"]) for s in first["synced"]} == {
        (case_id, "CASE-1", "comment")
    }
    assert cli.ok("sync", "CASE-1", "-o", "json").json()["counts"]["comment"] == 0
    event = reply(cx, root, text="one more")
    assert cli.ok("sync", "-o", "json").json()["counts"]["comment"] == 1
    make_handler()(envelope(event))  # the same reply arriving as an event later: still once
    assert len(comments(cx)) == 4


def test_a_pasted_case_url_unfurls_and_refreshes_on_status_change(cli: Cli, cx: Any) -> None:
    tracked_case(cli, cx)
    link = cli.ok("cases", "show", "CASE-2", "-o", "json").json()["link"]
    shared = sandbox_admin(cx, "post", channel="general", user="U0BOB", text=f"look at {link}")
    event = {"type": "link_shared", "channel": "C0GENERAL", "user": "U0BOB", "message_ts": shared["ts"],
             "unfurl_id": shared.get("unfurl_id"), "source": "conversations_history", "links": [{"url": link, "domain": "127.0.0.1"}]}  # fmt: skip
    assert make_handler()(envelope(event)) != []

    def preview_text() -> str:
        message = next(m for m in sandbox_messages(cx, "general") if m["ts"] == shared["ts"])
        return str(message["unfurls"])

    assert "Acknowledged" in preview_text() and "P2" in preview_text()
    httpx.post(
        f"{cx.url}/_sandbox/coralogix/cases/update", json={"id": "CASE-2", "status": "CASE_STATUS_RESOLVED"}
    ).raise_for_status()
    cli.ok("cases", "notify", "CASE-2", "--connector", "on-call")
    assert "Resolved" in preview_text()


def test_previews_need_the_links_scopes(cli: Cli, cx: Any) -> None:
    install(cli, cx, "Payments", scopes=["chat:write", "chat:write.public", "users:read", "users:read.email"])
    link = f"{cx.url}/#/cases/CASE-1"
    shared = sandbox_admin(cx, "post", channel="general", user="U0BOB", text=link)
    event = {
        "type": "link_shared",
        "channel": "C0GENERAL",
        "message_ts": shared["ts"],
        "links": [{"url": link}],
    }
    assert make_handler()(envelope(event)) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://acme.app.coralogix.com/#/cases/CASE-123", "CASE-123"),
        ("https://acme.coralogix.us/cases/case-7", "CASE-7"),
        (
            "https://api.coralogix.com/#/cases/0DB8048E-4EF5-53E8-83F0-D01486AAFDBE",
            "0db8048e-4ef5-53e8-83f0-d01486aafdbe",
        ),
        ("https://example.com/blog/cases", None),
        ("https://acme.app.coralogix.com/#/alerts/123", None),
    ],
)
def test_case_url_recognition(url: str, expected: str | None) -> None:
    from cxslack.cases.previews import case_id_from_url

    assert case_id_from_url(url) == expected


def test_doctor_warns_while_nothing_reads_tracked_threads(cli: Cli, cx: Any) -> None:
    tracked_case(cli, cx)

    def listener_check() -> dict[str, Any]:
        doc = cli.ok("doctor", "payments", "--symptom", "no-timeline-updates", "-o", "json").json()
        return next(c for c in doc["checks"] if c["id"] == "timeline.listener")

    silent = listener_check()
    assert silent["status"] == "warn" and "cxslack listen" in silent["remediation"]
    cli.ok("sync")
    assert listener_check()["status"] == "ok"


def test_a_comment_left_in_doubt_by_a_dead_process_is_found_not_sent_again(cli: Cli, cx: Any) -> None:
    """A process that sent a comment and died before recording it leaves the text as `posting`:
    the next one adopts the comment it finds on the Case, waits while one could still land, and
    sends it again only when it never did."""
    import time

    from cxslack.state import open_state
    from cxslack.state.records import SyncedReply
    from cxslack.store import Store

    root = tracked_case(cli, cx)
    handle = make_handler()
    landed = reply(cx, root, text="landed before the crash")
    handle(envelope(landed))
    (sent,) = comments(cx)
    ledger = open_state(Store()).ledger
    synced = ledger.get(root["channel"], landed["ts"])
    assert synced is not None and synced.comment == sent["eventId"]

    def crashed(ts: str, text: str, ago: float) -> None:
        with ledger.claim(root["channel"], ts) as claim:  # what a process that died after sending leaves
            claim.record(SyncedReply(synced.case, posting=text, posting_at=time.time() - ago))

    crashed(landed["ts"], comment_text(sent), ago=1)
    assert handle(envelope(landed)).action == "comment"  # adopted from the timeline
    adopted = ledger.get(root["channel"], landed["ts"])
    assert len(comments(cx)) == 1 and adopted is not None and adopted.comment == sent["eventId"]

    lost = reply(cx, root, text="never reached Coralogix")
    crashed(lost["ts"], "a comment that never landed", ago=1)
    with pytest.raises(RetryableError):  # it could still land: wait
        handle(envelope(lost))
    crashed(lost["ts"], "a comment that never landed", ago=60)
    assert handle(envelope(lost)).action == "comment"  # long enough: it never will, send it
    assert [comment_text(c).split("\n")[1] for c in comments(cx)] == [
        "landed before the crash",
        "never reached Coralogix",
    ]
