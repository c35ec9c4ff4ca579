"""Acting on a Case from Slack, end to end: the sandbox's people click the buttons on a Case's root
message, Slack (the sandbox) delivers block_actions to the real `cxslack listen` process over HTTP
(signed) and over Socket Mode, and the click acts in Coralogix (the sandbox) as that person."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from cxslack.sandbox.case_actions import member_id
from cxslack.sandbox.events import SIGNING_SECRET, signed_headers

from .conftest import Cli, case_root, install, sandbox_admin, sandbox_messages, wait_for

HTTP = httpx.Client(timeout=10)
BOB, CAROL = member_id("bob@example.com"), member_id("carol@example.com")


@dataclass
class Listening:
    cx: Any
    root: dict[str, Any]
    transport: str
    url: str | None  # the listener's base URL over HTTP

    def click(self, action: str, user: str = "U0BOB", **extra: Any) -> dict[str, Any]:
        return dict(sandbox_admin(self.cx, "click", channel=self.root["channel"], ts=self.root["ts"],
                                  action_id=f"cxslack_case_{action}", user=user, **extra))  # fmt: skip

    def messages(self) -> list[dict[str, Any]]:
        return sandbox_messages(self.cx, self.root["channel"])

    def root_message(self) -> dict[str, Any]:
        return next(m for m in self.messages() if m["ts"] == self.root["ts"])

    def buttons(self) -> list[str]:
        blocks = self.root_message().get("blocks") or []
        return [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]

    def notes(self) -> list[str]:
        return [
            m["text"]
            for m in self.messages()
            if m.get("thread_ts") == self.root["ts"] and m["ts"] != self.root["ts"]
        ]

    def actions(self, verb_path: str | None = None) -> list[dict[str, Any]]:
        found = HTTP.get(f"{self.cx.url}/_sandbox/coralogix/actions").json()["actions"]
        return [a for a in found if verb_path is None or f"{a['verb']} {a['path']}".startswith(verb_path)]

    def ephemeral(self, user: str) -> list[str]:
        return [
            e["text"]
            for e in HTTP.get(f"{self.cx.url}/_sandbox/ephemeral", params={"user": user}).json()["ephemeral"]
        ]

    def case(self, ref: str = "CASE-1") -> dict[str, Any]:
        cases = HTTP.get(f"{self.cx.url}/_sandbox/coralogix/cases").json()["cases"]
        return next(c for c in cases if c["readableId"] == ref)

    def comments(self) -> list[str]:
        events = HTTP.get(f"{self.cx.url}/_sandbox/coralogix/comments", params={"case": "CASE-1"}).json()[
            "comments"
        ]
        return [str(e["eventData"]["comment"].get("unsafeText", "")) for e in events]

    def settled(self) -> None:
        """Every click delivered and processed (the listener's health says nothing waits)."""
        assert self.cx.events.drain(10)
        if self.url:
            wait_for(lambda: HTTP.get(f"{self.url}/healthz").json()["inbox_depth"] == 0)
        time.sleep(0.3)  # Socket Mode: the ack reaches the sandbox before the handler finishes


def start_listen(cx: Any, transport: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str | None]:
    args = ["--http", "127.0.0.1:0"]
    if transport == "socket-mode":
        env["CXSLACK_SLACK_APP_TOKEN"] = sandbox_admin(cx, "app-token")["token"]
        args = ["--socket-mode"]
    proc = subprocess.Popen([sys.executable, "-m", "cxslack", "listen", *args], env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stderr is not None
    line = ""
    while "Listening" not in line and "Connected" not in line:
        line = proc.stderr.readline()
        assert line, "listen exited early"
    found = re.search(r"(http://\S+)/slack/events", line)
    base = found.group(1) if found else None
    if base:
        sandbox_admin(
            cx,
            "events/subscribe",
            url=f"{base}/slack/events",
            interactivity_url=f"{base}/slack/interactivity",
        )
    return proc, base


@pytest.fixture(params=["http", "socket-mode"])
def listening(request: pytest.FixtureRequest, cli: Cli, cx: Any) -> Iterator[Listening]:
    """CASE-1's root in #payments-alerts with its buttons, and `cxslack listen` over one transport
    (the cx fixture names the sandbox's Coralogix team, CX_TEAM_ID)."""
    root = case_root(cli, cx)
    env = {**os.environ, "CXSLACK_SLACK_SIGNING_SECRET": SIGNING_SECRET}
    proc, base = start_listen(cx, request.param, env)
    try:
        yield Listening(cx, root, request.param, base)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_the_root_offers_the_buttons_its_status_allows(listening: Listening) -> None:
    assert listening.buttons() == ["Acknowledge", "Assign to me", "Resolve"]
    [block] = [b for b in listening.root_message()["blocks"] if b["type"] == "actions"]
    resolve = next(e for e in block["elements"] if e["text"]["text"] == "Resolve")
    assert (
        resolve["confirm"]["confirm"]["text"] == "Resolve" and "CASE-1" in resolve["confirm"]["title"]["text"]
    )


def test_acknowledge_acts_once_as_the_person_and_shows_it(listening: Listening) -> None:
    sandbox_admin(listening.cx, "faults", kind="latency", method="coralogix.cases.get", seconds=0.5, count=1)
    first = listening.click("acknowledge")
    second = listening.click("acknowledge")  # a double click, before the first is done
    assert first["sent"] and second["sent"]
    sandbox_admin(
        listening.cx, "events/redeliver", event_id=first["delivery"], count=2
    )  # the same payload ×3
    wait_for(lambda: listening.buttons() == ["Assign to me", "Resolve"])
    listening.settled()
    [call] = listening.actions("POST /cases/acknowledged/v1")
    assert (
        call["body"] == {"ids": [listening.case()["id"]], "actor": {"userId": BOB}} and call["status"] == 200
    )
    assert listening.case()["status"] == "CASE_STATUS_ACKNOWLEDGED"
    root = listening.root_message()
    assert "Acknowledged" in root["text"]
    [note] = listening.notes()
    assert "Acknowledged from Slack by Bob Brown (bob@example.com)" in note
    assert listening.ephemeral("U0BOB") == []  # nothing to explain


@pytest.mark.parametrize(
    ("user", "setup", "said"),
    [
        ("U0DAVE", None, "not an active member of the Coralogix team"),  # inactive in Coralogix
        ("U0EXTERNAL", None, "another Slack workspace"),  # a Slack Connect guest
        ("U0BOB", {"permissions": ["case:Read", "case:Comment"]}, "case:Acknowledge"),  # 403 from Coralogix
    ],
    ids=["unmapped", "other-team", "coralogix-403"],
)
def test_a_refused_click_changes_nothing_and_tells_only_that_person(
    listening: Listening, user: str, setup: dict[str, Any] | None, said: str
) -> None:
    if setup:
        sandbox_admin(listening.cx, "coralogix/permissions", **setup)
    before = listening.root_message()
    listening.click("acknowledge", user=user)
    wait_for(lambda: listening.ephemeral(user))
    listening.settled()
    [answer] = listening.ephemeral(user)
    assert said in answer and "Nothing was changed." in answer
    assert [e for u in ("U0ALICE", "U0BOB", "U0CAROL") if u != user for e in listening.ephemeral(u)] == []
    assert listening.case()["status"] == "CASE_STATUS_ACTIVE"
    assert [a for a in listening.actions() if a["status"] == 200] == []
    assert listening.root_message() == before and listening.notes() == []


def test_resolve_carries_a_reason_and_close_follows(listening: Listening) -> None:
    assert listening.click("resolve", confirm=False)["sent"] is False  # the confirm dialog, denied
    listening.click("resolve")
    wait_for(lambda: listening.buttons() == ["Close"])
    [call] = listening.actions("PUT /cases/resolved/v1/")
    assert call["body"] == {"reason": "Resolved from Slack by Bob Brown <bob@example.com>"}
    assert "resolved from Slack by Bob Brown <bob@example.com>" in listening.comments()
    listening.click("close", user="U0CAROL")
    wait_for(lambda: listening.case()["status"] == "CASE_STATUS_CLOSED")
    wait_for(lambda: listening.buttons() == [])
    assert "closed from Slack by Carol Chen <carol@example.com>" in listening.comments()
    notes = listening.notes()
    assert (
        len(notes) == 2
        and "Resolved from Slack by Bob Brown" in notes[0]
        and "Closed from Slack by Carol Chen" in notes[1]
    )


def test_assign_to_me_assigns_the_person_who_clicked(listening: Listening) -> None:
    listening.click("assign", user="U0CAROL")
    wait_for(lambda: listening.notes())
    [call] = listening.actions("POST /cases/assigned/v1/")
    assert call["body"] == {"assignee": {"userId": CAROL}}
    assert "Assigned to Carol Chen (carol@example.com) from Slack" in listening.notes()[0]


def test_a_case_already_there_or_gone_is_explained(listening: Listening) -> None:
    HTTP.post(f"{listening.cx.url}/_sandbox/coralogix/cases/update",
              json={"id": "CASE-1", "status": "CASE_STATUS_ACKNOWLEDGED"}).raise_for_status()  # fmt: skip
    listening.click("acknowledge")
    wait_for(lambda: listening.ephemeral("U0BOB"))
    assert "CASE-1 is already Acknowledged. Nothing was changed." in listening.ephemeral("U0BOB")[0]
    sandbox_admin(listening.cx, "faults", kind="status", method="coralogix.cases.get", status=404, count=1)
    listening.click("resolve", user="U0CAROL")
    wait_for(lambda: listening.ephemeral("U0CAROL"))
    assert "no longer exists in Coralogix" in listening.ephemeral("U0CAROL")[0]
    listening.settled()
    assert listening.actions() == [] and listening.notes() == []


def test_a_badly_signed_click_is_401_and_nothing_is_processed(cli: Cli, cx: Any) -> None:
    proc, base = start_listen(cx, "http", {**os.environ, "CXSLACK_SLACK_SIGNING_SECRET": SIGNING_SECRET})
    try:
        payload = '{"type": "block_actions", "actions": [{"action_id": "cxslack_case_acknowledge"}]}'
        body = urlencode({"payload": payload}).encode()
        for secret in ("not-the-secret", None):
            headers = signed_headers(secret, body) if secret else {}
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            assert HTTP.post(f"{base}/slack/interactivity", content=body, headers=headers).status_code == 401
        health = HTTP.get(f"{base}/healthz").json()
        assert health["clicks_received"] == 0 and health["inbox_depth"] == 0 and health["processed"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert HTTP.get(f"{cx.url}/_sandbox/coralogix/actions").json()["actions"] == []


def test_earlier_versions_and_buttons_turned_off_carry_no_buttons(cli: Cli, cx: Any) -> None:
    install(cli, cx, "Legacy", "--integration-version", "0.0.9")
    install(cli, cx, "Payments")
    for name, integration, extra in (("Old", "legacy", ()), ("Quiet", "payments", ("--no-case-actions",)),
                                     ("Loud", "payments", ())):  # fmt: skip
        cli.ok("connectors", "create", name, "--integration", integration, "--channel", "payments-alerts",
               "--fallback-channel", "ops-fallback", *extra)  # fmt: skip

    def blocks(connector: str, case: str = "CASE-1") -> list[str]:
        posted = cli.ok("cases", "notify", case, "--connector", connector, "-o", "json").json()[
            "notifications"
        ][0]
        root = next(m for m in sandbox_messages(cx, "payments-alerts") if m["ts"] == posted["root_ts"])
        return [b["type"] for b in root.get("blocks") or []]

    assert "actions" not in blocks("old") and "actions" not in blocks("quiet")
    assert "actions" in blocks("loud")
    cli.ok("cases", "settings", "CASE-1", "--no-case-actions")
    assert "actions" not in blocks("loud")  # the root loses them at the next notification


def test_an_outage_is_retried_and_still_acts_and_shows_once(listening: Listening) -> None:
    sandbox_admin(
        listening.cx, "faults", kind="status", method="coralogix.cases.acknowledge", status=500, count=1
    )
    sandbox_admin(listening.cx, "faults", kind="status", method="chat.update", status=503, count=4)
    listening.click("acknowledge")
    wait_for(lambda: listening.buttons() == ["Assign to me", "Resolve"], timeout=30)
    listening.settled()
    assert [a["status"] for a in listening.actions("POST /cases/acknowledged/v1")] == [500, 200]
    assert len(listening.notes()) == 1 and listening.ephemeral("U0BOB") == []


# -- the handler in-process: the rarer paths ---------------------------------------------------
@pytest.fixture
def posted(cli: Cli, cx: Any) -> dict[str, Any]:
    """CASE-1's root with its buttons; no listener (the tests hand clicks to the handler)."""
    return case_root(cli, cx, scopes=["chat:write", "chat:write.public", "users:read"])  # no users:read.email


def clicked(cx: Any, root: dict[str, Any], action: str, user: str = "U0BOB") -> dict[str, Any]:
    """A person clicks: the block_actions envelope the listener would hand to the handler."""
    from cxslack.listen.interactivity import click_envelope

    payload = sandbox_admin(cx, "click", channel=root["channel"], ts=root["ts"], action_id=f"cxslack_case_{action}",
                            user=user)["payload"]  # fmt: skip
    built = click_envelope(payload)
    assert built is not None
    return built


def handle(envelope: dict[str, Any]) -> Any:
    from cxslack.events import make_handler

    return make_handler()(envelope)


def ephemeral(cx: Any, user: str) -> list[dict[str, Any]]:
    return list(HTTP.get(f"{cx.url}/_sandbox/ephemeral", params={"user": user}).json()["ephemeral"])


def test_without_users_read_email_nobody_can_be_found(cx: Any, posted: dict[str, Any]) -> None:
    result = handle(clicked(cx, posted, "acknowledge"))
    assert (result.outcome, result.detail) == ("refused", "no_email")
    [answer] = ephemeral(cx, "U0BOB")
    assert (
        "users:read.email" in answer["text"] and "cxslack integrations authorize Payments" in answer["text"]
    )


def test_an_expired_response_url_falls_back_to_chat_post_ephemeral(
    cli: Cli, cx: Any, posted: dict[str, Any]
) -> None:
    cli.ok("cases", "settings", "CASE-1", "--no-case-actions")  # turned off after the root was posted
    click = clicked(cx, posted, "acknowledge")
    sandbox_admin(cx, "clock", advance=31 * 60)  # the click's response_url expires before it is handled
    result = handle(click)
    assert (result.outcome, result.detail) == ("refused", "off")
    [answer] = ephemeral(cx, "U0BOB")
    assert answer["via"] == "chat.postEphemeral" and "turned off for this Case" in answer["text"]


def test_an_outage_past_the_patience_tells_the_person(cli: Cli, cx: Any) -> None:
    root = case_root(cli, cx)
    sandbox_admin(cx, "faults", kind="status", method="coralogix.cases.acknowledge", status=500, count=1)
    result = handle({**clicked(cx, root, "acknowledge"), "received_at": time.time() - 600})
    assert result.outcome == "unconfirmed"
    [answer] = ephemeral(cx, "U0BOB")
    assert "may not have been applied" in answer["text"]


@pytest.mark.parametrize("mode", ["thread-broadcast", "new-message"])
def test_the_note_follows_the_cases_reply_mode(cli: Cli, cx: Any, mode: str) -> None:
    root = case_root(cli, cx)
    cli.ok("cases", "settings", "CASE-1", "--reply-mode", mode)
    assert handle(clicked(cx, root, "acknowledge")).outcome == "shown"
    later = [m for m in sandbox_messages(cx, root["channel"]) if m["ts"] > root["ts"]]
    [note] = [
        m for m in later if "Acknowledged from Slack by Bob Brown (bob@example.com)" in str(m.get("blocks"))
    ]
    if mode == "thread-broadcast":
        assert note["thread_ts"] == root["ts"] and note.get("subtype") == "thread_broadcast"
    else:  # a new card in the channel, without buttons (only the root has them)
        assert "thread_ts" not in note and not [b for b in note["blocks"] if b["type"] == "actions"]


@pytest.mark.parametrize(("user_team", "outcome"), [("T0SANDBOX", "shown"), ("T0ELSEWHERE", "refused")])
def test_an_org_wide_install_click_has_no_team_and_is_placed_by_the_users_own(
    cli: Cli, cx: Any, user_team: str, outcome: str
) -> None:
    """block_actions from an org-wide install carry `team: null` and an `enterprise`
    (docs.slack.dev/reference/interaction-payloads/block_actions-payload): the person's workspace
    is `user.team_id`, which decides whether they may act, as `team.id` does otherwise."""
    from cxslack.listen.interactivity import click_envelope

    root = case_root(cli, cx)
    payload = sandbox_admin(cx, "click", channel=root["channel"], ts=root["ts"],
                            action_id="cxslack_case_acknowledge", user="U0BOB")["payload"]  # fmt: skip
    payload.update(
        team=None, enterprise={"id": "E0SANDBOX", "name": "Sandbox Org"}, is_enterprise_install=True
    )
    payload["user"]["team_id"] = user_team
    envelope = click_envelope(payload)
    assert envelope is not None
    result = handle(envelope)
    assert result.outcome == outcome
    assert (cx_status(cx) == "CASE_STATUS_ACKNOWLEDGED") is (outcome == "shown")


def cx_status(cx: Any) -> str:
    cases = HTTP.get(f"{cx.url}/_sandbox/coralogix/cases").json()["cases"]
    return str(next(c for c in cases if c["readableId"] == "CASE-1")["status"])
