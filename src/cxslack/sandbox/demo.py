"""`cxslack sandbox demo`: the main job end to end with the real commands, against a sandbox.

A sandbox on an ephemeral loopback port and a temporary CXSLACK_HOME; every step runs the real
`cxslack` in a subprocess, and where Slack would show a person the authorize page, the
sandbox's scripted browser presses Allow. The demo succeeds only if every step does.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxslack.sandbox.case_actions import CORALOGIX_TEAM_ID
from cxslack.sandbox.server import SlackSandbox

# cxslack's https loopback callback on a free port (the Slack app is a confidential client, so
# http would be refused); the scripted browser registers it in the app's Redirect URLs once known.
REDIRECT = "https://localhost:0/slack/oauth/callback"
CASES_OVERRIDE = 'cases={% if _context.entityLabels["team"][0] == "db" %}db-cases{% else %}cases{% endif %}'


@dataclass
class Step:
    title: str
    args: list[str] = field(default_factory=list)  # a cxslack command line
    expect: int = 0
    why: str = ""  # why a non-zero `expect` is the right outcome, shown with it
    approve: bool = False  # the command opens an OAuth flow the scripted browser must answer
    action: Callable[[SlackSandbox], str] | None = None  # a Slack-side event instead of a command
    click: str | None = None  # the command listens; once it does, a person clicks this button


@dataclass
class StepResult:
    title: str
    command: str
    exit_code: int
    ok: bool
    output: str

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "command": self.command, "exit_code": self.exit_code, "ok": self.ok}


def _revoke(sandbox: SlackSandbox) -> str:
    import httpx

    httpx.post(f"{sandbox.url}/_sandbox/revoke", json={}, timeout=10).raise_for_status()
    return "The workspace revoked the Coralogix app's tokens (as when an admin removes the app)."


def _root_shows(sandbox: SlackSandbox) -> str:
    import httpx

    messages = httpx.get(
        f"{sandbox.url}/_sandbox/messages", params={"channel": "payments-alerts"}, timeout=10
    ).json()["messages"]
    roots = [m for m in messages if m.get("metadata", {}).get("event_type") == "coralogix_case_notification"]
    replies = [m for m in messages if m.get("thread_ts") and m.get("thread_ts") != m["ts"]]
    buttons = [
        e["text"]["text"]
        for b in roots[0].get("blocks") or []
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    notes = [m for m in replies if not m.get("files")]
    charts = [f for m in replies for f in m.get("files") or []]
    chart = (
        f"; the alert's chart {charts[0]['name']} ({charts[0]['size']:,} bytes) is there too"
        if charts
        else ""
    )
    actions = httpx.get(f"{sandbox.url}/_sandbox/coralogix/actions", timeout=10).json()["actions"]
    acted = "; ".join(f"{a['verb']} {a['path']} {a['body']}" for a in actions)
    return (f"Coralogix got {len(actions)} call: {acted}. Slack now has {len(roots)} root message for CASE-1 "
            f"({roots[0]['text']!r}, buttons now {', '.join(buttons)}) and {len(notes)} reply in its thread: "
            f"{notes[0]['text']!r}{chart}.")  # fmt: skip


def _teammate_replies(sandbox: SlackSandbox) -> str:
    import httpx

    messages = httpx.get(
        f"{sandbox.url}/_sandbox/messages", params={"channel": "payments-alerts"}, timeout=10
    ).json()["messages"]
    root = next(
        m for m in messages if m.get("metadata", {}).get("event_type") == "coralogix_case_notification"
    )
    httpx.post(f"{sandbox.url}/_sandbox/reply", json={"channel": "payments-alerts", "thread_ts": root["ts"], "user": "U0BOB",
               "text": "Rolled back checkout-api to the previous build"}, timeout=10).raise_for_status()  # fmt: skip
    return "In Slack, Bob replies in CASE-1's thread: 'Rolled back checkout-api to the previous build'."


def _timeline(sandbox: SlackSandbox) -> str:
    import httpx

    events = httpx.get(
        f"{sandbox.url}/_sandbox/coralogix/comments", params={"case": "CASE-1"}, timeout=10
    ).json()["comments"]
    comment = events[0]["eventData"]["comment"] if events else {}
    first = (str(comment.get("unsafeText") or "").splitlines() or ["nothing"])[0]
    return f"CASE-1's timeline in Coralogix now has {len(events)} comment from Slack: {first!r}"


def _coralogix_fleet(sandbox: SlackSandbox) -> str:
    """Coralogix's side of a remote migration: both Slack integrations deployed there, three
    Notification Center connectors on the earlier one, and a routing rule that uses one."""
    import httpx

    admin = f"{sandbox.url}/_sandbox/coralogix/"
    for ident, version in (("legacy-slack", "0.0.9"), ("payments-slack", "0.1.0")):
        httpx.post(
            admin + "integrations", json={"id": ident, "version": version}, timeout=10
        ).raise_for_status()
    for ident, channel in (("nc-alerts", "alerts"), ("nc-cases", "cases"), ("nc-db", "db-cases")):
        connector = {"id": ident, "name": f"NC {channel}", "type": "SLACK", "connectorConfig": {"fields": [
            {"fieldName": "integrationId", "value": "legacy-slack"}, {"fieldName": "channel", "value": channel},
            {"fieldName": "fallbackChannel", "value": "ops-fallback"}]}}  # fmt: skip
        httpx.post(admin + "nc/connectors", json={"connector": connector}, timeout=10).raise_for_status()
    router = {
        "id": "main",
        "name": "Main",
        "rules": [{"name": "P1 alerts", "targets": [{"connectorId": "nc-alerts"}]}],
    }
    httpx.post(admin + "nc/routers", json={"router": router}, timeout=10).raise_for_status()
    return ("In Coralogix: Slack integrations legacy-slack (v0.0.9) and payments-slack (v0.1.0) are deployed; "
            "three Notification Center connectors use legacy-slack; router Main's rule 'P1 alerts' targets one.")  # fmt: skip


def steps() -> list[Step]:
    authorize = ["--authorize", "--no-browser", "--redirect-uri", REDIRECT]
    return [
        Step("Add a v0.1.0 integration with two-way sync and the alert evaluation chart, and install the Slack app "
             "(the sandbox approves)",
             ["integrations", "add", "--name", "Payments", "--two-way-sync", "--evaluation-chart",
              "--consent-us-data-transfer", *authorize],
             approve=True),
        Step("Create a connector with a Case channel template and a fallback channel",
             ["connectors", "create", "Payments on-call", "--integration", "Payments", "--channel", "payments-alerts",
              "--fallback-channel", "ops-fallback", "--override", CASES_OVERRIDE]),
        Step("See where a Case notification would go", ["connectors", "render", "payments-on-call", "--entity-type", "cases"]),
        Step("Send a test notification", ["connectors", "test", "payments-on-call"]),
        Step("Tell cxslack the Coralogix team whose members act from Slack (the buttons on Case messages)",
             ["coralogix", "configure", "--team-id", str(CORALOGIX_TEAM_ID)]),
        Step("Post a Coralogix Case to Slack through the connector: Acknowledge, Assign to me and Resolve on its root; its alert's evaluation chart in its thread",
             ["cases", "notify", "CASE-1", "--connector", "payments-on-call"]),
        Step("Bob clicks Acknowledge in Slack; `cxslack listen` acknowledges CASE-1 in Coralogix as Bob (matched by his "
             "email), edits the root to the new status and buttons, and notes who did it in the Case's thread",
             ["listen", "--http", "127.0.0.1:0", "--once"], click="cxslack_case_acknowledge"),
        Step("", action=_root_shows),
        Step("A teammate answers in the Case's Slack thread", action=_teammate_replies),
        Step("Two-way sync brings the reply into the Case timeline (`cxslack listen` does this live)", ["sync"]),
        Step("", action=_timeline),
        Step("Register the existing earlier-version integration (v0.0.9) and install its app",
             ["integrations", "add", "--name", "Legacy", "--integration-version", "0.0.9", "--consent-us-data-transfer", *authorize],
             approve=True),
        Step("It has two connectors", ["connectors", "create", "Legacy alerts", "--integration", "Legacy", "--channel", "alerts",
                                       "--fallback-channel", "ops-fallback"]),
        Step("", ["connectors", "create", "Legacy DB", "--integration", "Legacy", "--channel", "db-cases",
                  "--fallback-channel", "ops-fallback"]),
        Step("Migrate them to v0.1.0 one at a time, each proven by a test notification",
             ["connectors", "migrate", "--from", "Legacy", "--to", "Payments", "--test"]),
        Step("List the integrations", ["integrations", "list"]),
        Step("Now the connectors that live in Coralogix itself", action=_coralogix_fleet),
        Step("See the Slack integrations deployed in Coralogix", ["integrations", "list", "--remote"]),
        Step("Link the local integrations to them",
             ["integrations", "edit", "Legacy", "--coralogix-id", "legacy-slack"]),
        Step("", ["integrations", "edit", "Payments", "--coralogix-id", "payments-slack"]),
        Step("Pull Coralogix's Slack connectors into the local store", ["connectors", "pull"]),
        Step("Plan: what pushing would change in Coralogix (the local-only connectors are created)",
             ["connectors", "plan", "--detailed-exitcode"], expect=2),
        Step("Push it", ["connectors", "push", "--yes"]),
        Step("Coralogix and the local store now agree", ["connectors", "plan", "--detailed-exitcode"]),
        Step("Migrate the Coralogix connectors to v0.1.0 one at a time: pre-test, switch only the integration, confirm",
             ["connectors", "migrate", "--remote", "--from", "Legacy", "--to", "Payments", "--test"]),
        Step("", ["connectors", "migrate", "--remote", "--status", "--from", "Legacy"]),
        Step("The local copies followed: still nothing to push", ["connectors", "plan", "--detailed-exitcode"]),
        Step("Something breaks on the Slack side", action=_revoke),
        Step("doctor finds it", ["doctor", "Payments", "--symptom", "failing"], expect=1,
             why="doctor exits 1 when a check fails, so CI can gate on it"),
        Step("Reinstall the app as doctor says", ["integrations", "authorize", "Payments", "--no-browser", "--redirect-uri", REDIRECT],
             approve=True),
        Step("doctor is clean again", ["doctor", "Payments"]),
    ]  # fmt: skip


def _browser(sandbox: SlackSandbox, home: Path) -> Callable[[subprocess.Popen[str], list[str]], None]:
    """Read the command's output; when it shows the authorize URL, register its callback (a free
    port, known only now) as a Redirect URL of the sandbox's app, as its admin would, then press
    Allow and land on the callback, trusting cxslack's own localhost certificate."""

    def drive(proc: subprocess.Popen[str], transcript: list[str]) -> None:
        import ssl

        import httpx

        from cxslack.oauth.tls import CERT_FILE
        from cxslack.sandbox.authorize import press

        assert proc.stdout is not None
        for line in proc.stdout:
            transcript.append(line)
            if line.startswith(("http://", "https://")):
                url = line.strip()
                callback = httpx.URL(url).params.get("redirect_uri", "")
                transcript.append(f"  [slack app settings] {callback} added to the app's Redirect URLs\n")
                transcript.append("  [browser] opened the authorize page and selected Allow\n")
                try:
                    sandbox.register_redirect_url(callback)
                    trust = ssl.create_default_context(cafile=str(home / "state" / "tls" / CERT_FILE))
                    httpx.get(press(url), timeout=30, verify=trust)
                except (httpx.HTTPError, RuntimeError, ValueError, OSError) as exc:
                    transcript.append(f"  [browser] failed: {exc}\n")

    return drive


def _clicker(sandbox: SlackSandbox, action_id: str) -> Callable[[subprocess.Popen[str], list[str]], None]:
    """Read `cxslack listen`'s output; once it listens, point Slack's Interactivity URL at it and
    have Bob click the button on CASE-1's root."""

    def drive(proc: subprocess.Popen[str], transcript: list[str]) -> None:
        import re

        import httpx

        from cxslack.sandbox.events import SIGNING_SECRET

        assert proc.stdout is not None
        for line in proc.stdout:
            transcript.append(line)
            found = re.search(r"(http://\S+)/slack/events", line)
            if not found:
                continue
            admin = f"{sandbox.url}/_sandbox/"
            httpx.post(admin + "events/subscribe", json={"interactivity_url": f"{found.group(1)}/slack/interactivity",
                       "signing_secret": SIGNING_SECRET}, timeout=10).raise_for_status()  # fmt: skip
            messages = httpx.get(
                admin + "messages", params={"channel": "payments-alerts"}, timeout=10
            ).json()["messages"]
            root = next(
                m
                for m in messages
                if m.get("metadata", {}).get("event_type") == "coralogix_case_notification"
            )
            httpx.post(admin + "click", json={"channel": "payments-alerts", "ts": root["ts"], "action_id": action_id,
                       "user": "U0BOB"}, timeout=10).raise_for_status()  # fmt: skip
            transcript.append(
                f"  [slack] Bob clicked {action_id.removeprefix('cxslack_case_').capitalize()}\n"
            )

    return drive


def _run(step: Step, env: dict[str, str], sandbox: SlackSandbox) -> tuple[int, str]:
    """Run one command with stdout and stderr in one pipe, unbuffered, so its output reads in the
    order it was written (a piped stdout would otherwise be flushed after stderr)."""
    command = [sys.executable, "-m", "cxslack", *step.args]
    env = {**env, "PYTHONUNBUFFERED": "1"}
    driver = (
        _clicker(sandbox, step.click)
        if step.click
        else _browser(sandbox, Path(env["CXSLACK_HOME"]))
        if step.approve
        else None
    )
    if driver is None:
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=300)  # fmt: skip
        return done.returncode, done.stdout
    transcript: list[str] = []
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        reader = threading.Thread(target=driver, args=(proc, transcript), daemon=True)
        reader.start()
        proc.wait(timeout=300)
        reader.join(timeout=30)
    return proc.returncode, "".join(transcript)


def run_demo(say: Callable[[str], None]) -> list[StepResult]:
    """Run every step, reporting each through `say`; stops at the first step that fails."""
    results: list[StepResult] = []
    with tempfile.TemporaryDirectory(prefix="cxslack-demo-") as tmp, SlackSandbox("127.0.0.1", 0) as sandbox:
        env = {
            **os.environ,
            "CXSLACK_HOME": str(Path(tmp) / "home"),
            "CXSLACK_SLACK_API_URL": sandbox.api_url,
            "CXSLACK_SLACK_AUTHORIZE_URL": sandbox.authorize_url,
            "CXSLACK_SLACK_CLIENT_ID": "sandbox-client-id",
            "CXSLACK_SLACK_CLIENT_SECRET": "sandbox-client-secret",
            "CXSLACK_CORALOGIX_API_URL": sandbox.url,
            "CXSLACK_CORALOGIX_INGRESS_URL": sandbox.url,
            "CX_API_KEY": "sandbox-coralogix-api-key",
            "CXSLACK_SLACK_SIGNING_SECRET": "sandbox-signing-secret",
            "NO_PROXY": "127.0.0.1,localhost,::1",
            "CI": "1",  # the demo's commands never prompt
        }
        env.pop("CXSLACK_OUTPUT", None)
        say(f"Slack sandbox at {sandbox.url}; a temporary CXSLACK_HOME at {env['CXSLACK_HOME']}")
        number = 0
        for step in steps():
            if step.title:  # an untitled step continues the one before: same number
                number += 1
                say(f"\n── {number}. {step.title}")
            if step.action is not None:
                say(f"   {step.action(sandbox)}")
                results.append(StepResult(step.title, "(outside cxslack)", 0, True, ""))
                continue
            line = "cxslack " + shlex.join(step.args)
            say(f"$ {line}")
            code, output = _run(step, env, sandbox)
            for text in output.rstrip().splitlines():
                say(f"   {text}")
            ok = code == step.expect
            if not ok:
                say(f"   ✘ exit {code} (expected {step.expect})")
            elif code:
                say(f"   ✔ exit {code}, as expected: {step.why}")
            else:
                say("   ✔ exit 0")
            results.append(StepResult(step.title, line, code, ok, output))
            if not ok:
                break
    return results
