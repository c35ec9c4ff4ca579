"""`cxslack connectors migrate` cost: per-connector overhead, durable, and overhead beyond Slack.

1. 1,000 connectors with --no-test: total wall time, and per-connector overhead against the
   same run's `cxslack connectors migrate --dry-run` (start-up and planning measured alone).
   Target ≤ 5 ms per connector; every switch is fsync'd to the journal before the next.
2. 200 connectors with --test against the sandbox at 50 ms per API call: wall time against the
   Slack floor, measured in the same run as the same number of sequential chat.postMessage calls
   made straight through slack_sdk to the same sandbox. Target ≤ 10% over.
3. The same, with a method-wide 429 (`Retry-After: 3`) injected for chat.postMessage halfway:
   the run waits it out once; reports the calls sent during the Retry-After (target 0) and the
   overhead beyond the Slack floor plus the window (target ≤ 10%).

    python benchmarks/migrate.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    admin,
    installed_integration,
    ratelimit_mid_run,
    report,
    sandbox_env,
    sandbox_get,
    sandbox_process,
    timed,
)


def fleet(url: str, count: int, *, channels: bool) -> None:
    from cxslack.connectors import Connector, ConnectorStore
    from cxslack.registry import Registry

    old = installed_integration(url, "Legacy", version="0.0.9")
    installed_integration(url, "Cases")
    with Registry().editing() as (view, _):
        for n in range(count):
            if channels:
                admin(url, "channels", name=f"mig-{n:04d}")
            connector = Connector(id=f"c{n:04d}", name=f"C {n:04d}", integration=old,
                                  channel=f"mig-{n:04d}" if channels else "alerts", fallback_channel="ops-fallback")  # fmt: skip
            view.connectors[connector.id] = connector.to_toml()
    ConnectorStore().load()  # the fleet parses


def slack_floor(url: str, calls: int) -> float:
    """The same number of sequential chat.postMessage calls, straight through slack_sdk."""
    from slack_sdk import WebClient

    token = admin(url, "tokens", scopes=["chat:write", "chat:write.public"])["access_token"]
    client = WebClient(token=token, base_url=f"{url}/api/")
    started = time.perf_counter()
    for n in range(calls):
        client.chat_postMessage(channel=f"mig-{n % 200:04d}", text="floor")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-test-connectors", type=int, default=1000)
    parser.add_argument("--test-connectors", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--retry-after", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(rate_limits=False) as url:
        env = sandbox_env(url, Path(tmp) / "a")
        os.environ.update(env)
        fleet(url, args.no_test_connectors, channels=False)
        planning = timed(["connectors", "migrate", "--from", "legacy", "--to", "cases", "--dry-run"], env)
        total = timed(["connectors", "migrate", "--from", "legacy", "--to", "cases", "--no-test"], env)
        per = (total - planning) / args.no_test_connectors
        rows += [
            (
                f"--no-test, {args.no_test_connectors} connectors",
                f"{total:6.2f} s total ({planning:.2f} s of it start-up and planning)",
            ),
            ("  per-connector overhead (durable)", f"{per * 1000:6.2f} ms  (target <= 5 ms)"),
        ]
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(latency=args.latency) as url:
        env = sandbox_env(url, Path(tmp) / "b")
        os.environ.update(env)
        fleet(url, args.test_connectors, channels=True)
        before = sandbox_get(url, "calls")["total"]
        planning = timed(["connectors", "migrate", "--from", "legacy", "--to", "cases", "--dry-run"], env)
        total = timed(["connectors", "migrate", "--from", "legacy", "--to", "cases", "--test"], env)
        calls = sandbox_get(url, "calls")["total"] - before
        floor = slack_floor(url, calls)
        rows += [
            (f"--test, {args.test_connectors} connectors, {args.latency * 1000:.0f} ms/call", f"{total:6.2f} s total, {calls} Slack calls"),
            ("  Slack floor (same calls, bare slack_sdk)", f"{floor:6.2f} s  ({calls} x {args.latency * 1000:.0f} ms = {calls * args.latency:.2f} s)"),
            ("  overhead beyond Slack calls", f"{(total - floor) / floor * 100:6.1f} %  ({(total - planning - floor) / floor * 100:.1f} % without start-up; target <= 10 %)"),
        ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(latency=args.latency) as url:
        env = sandbox_env(url, Path(tmp) / "c")
        os.environ.update(env)
        fleet(url, args.test_connectors, channels=True)
        before = sandbox_get(url, "calls")["total"]
        with ratelimit_mid_run(
            url, "chat.postMessage", args.test_connectors // 2, args.retry_after
        ) as limited:
            held = timed(["connectors", "migrate", "--from", "legacy", "--to", "cases", "--test"], env)
        calls = sandbox_get(url, "calls")["total"] - before - limited["limited"]
        floor = slack_floor(url, calls) + limited["told_to_wait"]
        rows += [
            (f"--test with a method-wide 429 (Retry-After {args.retry_after} s) after {limited.get('injected', '?')} tests",
             f"{held:6.2f} s total; floor {floor:.2f} s (the same calls bare, plus the "
             f"{limited['told_to_wait']:.2f} s the 429s asked for)"),
            ("  overhead beyond floor and window", f"{(held - floor) / floor * 100:6.1f} %  (target <= 10 %)"),
            ("  429s / sent during Retry-After", f"{limited['limited']} / {limited['sent_during_retry_after']}  (target 0)"),
        ]  # fmt: skip
    report(rows)
    if limited["sent_during_retry_after"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
