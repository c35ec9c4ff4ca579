"""Case notifications for 100 Cases across 20 channels against the sandbox at 50 ms per call.

One `cxslack cases notify CASE… --connector router` run: each Case is fetched from the
sandbox's Coralogix API (plus its deep link) and posted to the channel its labels route to. The
floor is Slack's per-channel limit: about 1 message per second per channel, so 5 messages to a
channel take at least 4 s after the first (plus one call's latency). Target: within 1.5× of that
floor, with no 429 received. Prints the ratio and the 429 count.

    python benchmarks/cases.py [--cases N] [--channels M] [--latency S]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import admin, cxslack, installed_integration, report, sandbox_env, sandbox_process


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(latency=args.latency) as url:
        from cxslack.sandbox.coralogix import CORALOGIX_API_KEY

        env = {**sandbox_env(url), "CXSLACK_HOME": str(Path(tmp) / "home"), "CXSLACK_CORALOGIX_API_URL": url,
               "CXSLACK_CORALOGIX_INGRESS_URL": url, "CX_API_KEY": CORALOGIX_API_KEY}  # fmt: skip
        os.environ.update(env)
        integration = installed_integration(url, "Cases")
        for n in range(args.channels):
            admin(url, "channels", name=f"cases-{n:02d}")
        readable = []
        for n in range(args.cases):
            created = httpx.post(
                f"{url}/_sandbox/coralogix/cases",
                json={"title": f"Case {n}", "labels": [f"route:cases-{n % args.channels:02d}"]},
            )
            created.raise_for_status()
            readable.append(created.json()["case"]["readableId"])
        template = 'cases={{ _context.entityLabels["route"][0] }}'
        subprocess.run(cxslack("connectors", "create", "router", "--integration", integration, "--channel", "general",
                               "--fallback-channel", "ops-fallback", "--override", template), env={**os.environ}, check=True,
                       capture_output=True)  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.run(cxslack("cases", "notify", *readable, "--connector", "router", "--workers", str(args.channels), "-o", "json"),
                              env={**os.environ}, capture_output=True, text=True)  # fmt: skip
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"cases notify failed: {proc.stderr[-500:]}")
        doc = json.loads(proc.stdout)
        calls = httpx.get(f"{url}/_sandbox/calls").json()
        per_channel = [len(httpx.get(f"{url}/_sandbox/messages", params={"channel": f"cases-{n:02d}"}).json()["messages"])
                       for n in range(args.channels)]  # fmt: skip
    deepest = max(per_channel)
    floor = (deepest - 1) * 1.0 + args.latency
    report([
        ("Cases / channels", f"{args.cases} / {args.channels} (up to {deepest} messages per channel), {args.latency * 1000:.0f} ms per call"),
        ("per-channel floor (~1 msg/s)", f"{floor:6.2f} s"),
        ("cases notify (one run)", f"{wall:6.2f} s  ({wall / floor:.2f}x the floor, target <= 1.5x)"),
        ("roots posted", f"{sum(1 for n in doc['notifications'] if n['action'] == 'root')} of {args.cases}, {len(doc['failed'])} failed"),
        ("429s received", str(calls["ratelimited"])),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
