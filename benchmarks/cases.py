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
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    installed_integration,
    report,
    routed_cases,
    run_json,
    sandbox_env,
    sandbox_get,
    sandbox_process,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(latency=args.latency) as url:
        env = sandbox_env(url, Path(tmp) / "home", coralogix=True)
        os.environ.update(env)
        integration = installed_integration(url, "Cases")
        readable, channels = routed_cases(url, integration, args.cases, args.channels, "cases")
        wall, doc = run_json(
            ["cases", "notify", *readable, "--connector", "router", "--workers", str(args.channels)], env
        )
        calls = sandbox_get(url, "calls")
        per_channel = [len(sandbox_get(url, "messages", channel=name)["messages"]) for name in channels]
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
