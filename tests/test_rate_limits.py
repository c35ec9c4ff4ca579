"""Retry-After holds the method Slack limited, across every thread, until the window passes.

Slack limits a Tier method (conversations.join: Tier 3) per method and workspace, and
chat.postMessage per channel and workspace-wide; its 429 does not say which. These tests inject
one method-wide 429 in the middle of a real fan-out and read the sandbox's arrival log: after the
429 was answered, no request for that method arrives until the window has passed (a request
already on its way when it was answered — within the sandbox's IN_FLIGHT allowance — is the only
exception), and everything is delivered afterwards, once. The sandbox's latency spreads the
workers out, so some would send well inside the window if the gate let them.
"""

from __future__ import annotations

from typing import Any

import httpx

from cxslack.sandbox.traffic import IN_FLIGHT

from .conftest import Cli, install, sandbox_admin, sandbox_messages

RETRY_AFTER = 3


def arrivals(sb: Any, method: str) -> list[dict[str, Any]]:
    log = httpx.get(f"{sb.url}/_sandbox/calls").json()
    return [a for a in log["arrivals"] if a["method"] == method]


def assert_held(sb: Any, method: str) -> None:
    calls = arrivals(sb, method)
    first = next(a for a in calls if a.get("status") == 429)
    answered, until = first["answered"], first["answered"] + RETRY_AFTER
    inside = [a for a in calls if answered < a["at"] < until]
    assert all(a["at"] <= answered + IN_FLIGHT for a in inside), (
        f"{method} sent while a Retry-After was pending: "
        + ", ".join(f"{a['channel']} at +{a['at'] - answered:.2f} s" for a in inside)
    )
    assert [a for a in calls if a["at"] >= until], f"nothing was sent for {method} after the window"
    assert httpx.get(f"{sb.url}/_sandbox/calls").json()["violations"] == []


def test_a_method_wide_429_during_test_all_over_50_channels_holds_every_post(cli: Cli, slack: Any) -> None:
    install(cli, slack, "Payments", "--two-way-sync")  # each post is followed by a join: workers spread out
    for n in range(50):
        sandbox_admin(slack, "channels", name=f"rl-{n:02d}")
        cli.ok("connectors", "create", f"RL {n:02d}", "--integration", "payments", "--channel", f"rl-{n:02d}",
               "--fallback-channel", "ops-fallback")  # fmt: skip
    sandbox_admin(slack, "settings", latency=0.5)
    sandbox_admin(
        slack, "faults", method="chat.postMessage", kind="ratelimit", retry_after=RETRY_AFTER, after=20
    )
    run = cli("connectors", "test", "--all", "--workers", "16", "-o", "json")
    assert run.exit_code == 0, run.stderr
    assert run.json()["summary"] == {"total": 50, "success": 50, "failure": 0, "fallback": 0, "in_doubt": 0}
    assert_held(slack, "chat.postMessage")
    for n in range(50):  # everything delivered after, each once, none to the fallback
        assert len(sandbox_messages(slack, f"rl-{n:02d}")) == 1
    assert sandbox_messages(slack, "ops-fallback") == []


def test_a_tier_3_429_on_conversations_join_holds_every_join_while_cases_are_notified(
    cli: Cli, cx: Any
) -> None:
    """Five Cases, each routed to its own channel, notified at once with two-way sync: each root is
    followed by conversations.join. The second join is refused with Retry-After 3, and posts to
    three of the channels are slowed so their joins come while the window is open."""
    install(cli, cx, "Payments", "--two-way-sync")
    for n in range(1, 6):
        sandbox_admin(cx, "channels", name=f"case-{n}")
    cli.ok("connectors", "create", "On-call", "--integration", "payments", "--channel", "alerts",
           "--fallback-channel", "ops-fallback", "--override", "cases={{ case.readableId | lower }}")  # fmt: skip
    sandbox_admin(cx, "faults", faults=[
        {"method": "conversations.join", "kind": "ratelimit", "retry_after": RETRY_AFTER, "after": 1},
        {"method": "chat.postMessage", "kind": "latency", "seconds": 1.0, "after": 2, "count": 3},
    ])  # fmt: skip
    run = cli("cases", "notify", *(f"CASE-{n}" for n in range(1, 6)), "--connector", "on-call", "--workers", "5",
              "-o", "json")  # fmt: skip
    assert run.exit_code == 0, run.stderr
    roots = {n["channel"] for n in run.json()["notifications"] if n["action"] == "root"}
    assert len(roots) == 5 and not any(n["fallback_used"] for n in run.json()["notifications"])
    assert_held(cx, "conversations.join")
    joined = [a["channel"] for a in arrivals(cx, "conversations.join") if a.get("status") != 429]
    assert sorted(set(joined)) == sorted(roots)  # every channel joined, after the window
