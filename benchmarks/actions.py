"""Clicks on Case buttons: 500 Acknowledge clicks over HTTP to a real `cxslack listen`.

Setup (not timed): the sandbox in its own process (rate limits off), a v0.1.0 integration, 500
Cases in its Coralogix, their roots posted by one `cxslack cases notify` across 100 channels, and
each root's Acknowledge clicked by one of three mapped people (the sandbox builds the
block_actions payloads, with their response_url). Then `cxslack listen --http` runs in its own
process and a few senders post every click, signed and form-encoded as Slack does, plus Slack's
retries of a tenth of them (the same payload again) and 50 double clicks (the same button clicked
twice). Reported: ack latency p50/p99 (target p99 < 100 ms, Slack's limit is 3 s), clicks acted
on per second end to end (Coralogix acknowledged, the root edited, the thread note posted), and
lost or repeated acknowledgements (both must be 0), against a same-run baseline: the same
Slack and Coralogix calls one click needs, made directly.

    python benchmarks/actions.py [--clicks N] [--channels M] [--senders K]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    admin,
    cxslack,
    installed_integration,
    percentile,
    post_all,
    report,
    routed_cases,
    run_json,
    sandbox_env,
    sandbox_get,
    sandbox_process,
)

USERS = ("U0ALICE", "U0BOB", "U0CAROL")


def setup(url: str, clicks: int, channels: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Cases, their roots with buttons, and the click payloads (the last `channels`/2 Cases are
    kept for the baseline)."""
    spare = 50
    refs, _ = routed_cases(url, installed_integration(url, "Payments"), clicks + spare, channels, "acts")
    roots = run_json(["cases", "notify", *refs, "--connector", "router", "--workers", "32"], {})[1][
        "notifications"
    ]
    payloads = []
    for n, root in enumerate(roots[:clicks]):
        clicked = admin(url, "click", channel=root["channel"], ts=root["ts"], action_id="cxslack_case_acknowledge",
                        user=USERS[n % len(USERS)])  # fmt: skip
        payloads.append(clicked["payload"])
    for root in roots[:50]:  # the same people click the same buttons again: double clicks
        again = next(p for p in payloads if p["container"]["message_ts"] == root["ts"])
        payloads.append(admin(url, "click", channel=root["channel"], ts=root["ts"], action_id="cxslack_case_acknowledge",
                              user=again["user"]["id"])["payload"])  # fmt: skip
    return payloads, refs[clicks:]


def send_all(base: str, bodies: list[bytes], senders: int) -> list[float]:
    """Post every click, signed and form-encoded as Slack does; ack latencies in s."""
    from cxslack.sandbox.events import SIGNING_SECRET, signed_headers

    def post(client: httpx.Client, index: int) -> httpx.Response:
        headers = {
            **signed_headers(SIGNING_SECRET, bodies[index]),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return client.post(f"{base}/slack/interactivity", content=bodies[index], headers=headers)

    return post_all(len(bodies), senders, post)


def baseline(url: str, refs: list[str]) -> float:
    """Seconds per click for the calls one click needs, made directly: read the Case, acknowledge
    it, its deep link, edit the root, post the note (users.info and the team search are cached)."""
    from cxslack.sandbox.case_actions import member_id
    from cxslack.sandbox.coralogix import CORALOGIX_API_KEY

    bot = admin(url, "tokens", scopes=["chat:write", "chat:write.public"])["access_token"]
    slack = httpx.Client(base_url=f"{url}/api/", headers={"Authorization": f"Bearer {bot}"}, timeout=10)
    coralogix = httpx.Client(base_url=f"{url}/mgmt/openapi/5", headers={"Authorization": f"Bearer {CORALOGIX_API_KEY}"},
                             timeout=10)  # fmt: skip
    actor = {"userId": member_id("bob@example.com")}
    started = time.perf_counter()
    for ref in refs:
        coralogix.get(f"/cases/cases/v1/{ref}").raise_for_status()
        coralogix.post("/cases/acknowledged/v1", json={"ids": [ref], "actor": actor}).raise_for_status()
        coralogix.get(f"/cases/cases/v1/{ref}/deep-links").raise_for_status()
        posted = slack.post("chat.postMessage", data={"channel": "general", "text": ref}).json()
        slack.post(
            "chat.update", data={"channel": posted["channel"], "ts": posted["ts"], "text": ref}
        ).raise_for_status()
        slack.post("chat.postMessage", data={"channel": "general", "text": "note", "thread_ts": posted["ts"]})
    return (time.perf_counter() - started) / len(refs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clicks", type=int, default=500)
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(rate_limits=False) as url:
        from cxslack.sandbox.case_actions import CORALOGIX_TEAM_ID
        from cxslack.sandbox.events import SIGNING_SECRET

        os.environ.update({**sandbox_env(url, Path(tmp) / "home", coralogix=True), "CX_TEAM_ID": str(CORALOGIX_TEAM_ID),
                           "CXSLACK_SLACK_SIGNING_SECRET": SIGNING_SECRET})  # fmt: skip
        print(
            f"setting up {args.clicks} Cases and their roots over {args.channels} channels …", file=sys.stderr
        )
        payloads, spare = setup(url, args.clicks, args.channels)
        bodies = [urlencode({"payload": json.dumps(p)}).encode() for p in payloads]
        retries = bodies[: args.clicks : 10]  # Slack sends these again: the same payload
        proc = subprocess.Popen(cxslack("listen", "--http", "127.0.0.1:0"), env={**os.environ},
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"(http://\S+)/slack/events", line)
        if not found:
            raise SystemExit(f"listen did not start: {line}")
        base = found.group(1)
        threading.Thread(
            target=lambda: [None for _ in proc.stderr or ()], daemon=True
        ).start()  # drain its log
        try:
            started = time.perf_counter()
            acks = send_all(base, bodies + retries, args.senders)
            ack_wall = time.perf_counter() - started
            deadline = time.monotonic() + 600
            with httpx.Client(timeout=10, trust_env=False) as client:
                while client.get(f"{base}/healthz").json()["processed"] < len(bodies):
                    if time.monotonic() > deadline:
                        raise SystemExit("not every click was processed within 600 s")
                    time.sleep(0.02)
            acted_wall = time.perf_counter() - started
            health = httpx.get(f"{base}/healthz").json()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        calls = sandbox_get(url, "coralogix/actions")["actions"]
        acked = Counter(
            tuple(c["body"]["ids"])
            for c in calls
            if c["path"] == "/cases/acknowledged/v1" and c["status"] == 200
        )
        cases = {c["readableId"]: c for c in sandbox_get(url, "coralogix/cases")["cases"]}
        per_click = baseline(url, spare)
    wanted = len({p["container"]["message_ts"] for p in payloads})
    lost = sum(1 for c in cases.values() if c["title"].startswith("Case ") and c["status"] != "CASE_STATUS_ACKNOWLEDGED"
               and c["readableId"] not in spare)  # fmt: skip
    repeated = sum(n - 1 for n in acked.values() if n > 1)
    p99 = percentile(acks, 99)
    rate = wanted / acted_wall
    ms = 1000
    report([
        ("clicks", f"{wanted} Acknowledge clicks by 3 people + {len(payloads) - wanted} double clicks + {len(retries)} Slack retries, {args.senders} senders"),
        ("ack latency p50 / p99 / max", f"{percentile(acks, 50) * ms:6.2f} / {p99 * ms:6.2f} / {max(acks) * ms:6.2f} ms  (target p99 < 100 ms; Slack's limit 3 s)"),
        ("acks per second", f"{len(acks) / ack_wall:8.0f}"),
        ("clicks acted on per second", f"{rate:8.1f}  (all {wanted} acknowledged, roots edited, notes posted in {acted_wall:.1f} s)"),
        ("baseline: the same calls direct", f"{1 / per_click:8.1f} per second  -> listen does {rate * per_click:.2f}x the direct rate"),
        ("duplicates dropped at intake", str(health["duplicates"])),
        ("lost / repeated acknowledgements", f"{lost} / {repeated}  (must be 0 / 0)"),
    ])  # fmt: skip
    if lost or repeated or p99 >= 0.1:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
