"""`cxslack connectors test --all` fan-out against the sandbox with realistic latency and limits.

200 connectors on 200 channels, the sandbox in its own process with 50 ms per API call and its
per-channel rate limits on. Measures the wall time of `connectors test --all` against the
sequential minimum (200 × latency) and, in the same run, against `--workers 1`. Checks that every
message arrived exactly once and that no request was sent while a Retry-After was pending.
Target: ≤ 0.2× the sequential minimum.

Then once more with a method-wide 429 (`Retry-After: 3`) injected for chat.postMessage halfway
through: every channel must wait it out (the gate holds the workspace-wide key), so the run takes
about 3 s longer; reports the calls sent during the Retry-After (target 0) and the time beyond
the window against the same target.

    python benchmarks/fanout.py [--connectors N] [--latency S]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    admin,
    installed_integration,
    ratelimit_mid_run,
    report,
    run_json,
    sandbox_env,
    sandbox_get,
    sandbox_process,
)


def build(url: str, count: int) -> None:
    from cxslack.connectors import Connector, ConnectorStore

    integration = installed_integration(url, "Fanout")
    store = ConnectorStore()
    for n in range(count):
        admin(url, "channels", name=f"fan-{n:03d}")
        store.create(
            Connector(
                id=f"fan-{n:03d}",
                name=f"Fan {n:03d}",
                integration=integration,
                channel=f"fan-{n:03d}",
                fallback_channel="ops-fallback",
            )
        )


def run_all(env: dict[str, str], workers: int) -> tuple[float, dict]:
    elapsed, doc = run_json(["connectors", "test", "--all", "--workers", str(workers)], env)
    return elapsed, doc["summary"]


def delivered(url: str, count: int) -> list[int]:
    return [len(sandbox_get(url, "messages", channel=f"fan-{n:03d}")["messages"]) for n in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connectors", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--retry-after", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(latency=args.latency) as url:
        env = sandbox_env(url, Path(tmp) / "home")
        os.environ.update(env)
        build(url, args.connectors)
        floor = args.connectors * args.latency
        fast, summary = run_all(env, 16)
        after_fast = delivered(url, args.connectors)
        slow, _ = run_all(env, 1)
        after_slow = delivered(url, args.connectors)
        calls = sandbox_get(url, "calls")
        with ratelimit_mid_run(url, "chat.postMessage", args.connectors // 2, args.retry_after) as limited:
            held, held_summary = run_all(env, 16)
        after_held = delivered(url, args.connectors)
    exactly_once = all(n == 1 for n in after_fast) and all(n == 2 for n in after_slow)
    held_once = all(n == 3 for n in after_held)
    beyond = held - limited["told_to_wait"]
    report([
        ("connectors / channels", f"{args.connectors} / {args.connectors}, latency {args.latency * 1000:.0f} ms per call"),
        ("sequential minimum (N x latency)", f"{floor:6.2f} s"),
        ("test --all (16 workers)", f"{fast:6.2f} s  ({fast / floor:.2f}x sequential minimum, target <= 0.2x)"),
        ("test --all --workers 1 (same run)", f"{slow:6.2f} s  ({fast / slow:.2f}x of it)"),
        ("delivered", f"{summary['success']} of {summary['total']}; each message exactly once: {exactly_once}"),
        ("429s received / sent during Retry-After", f"{calls['ratelimited']} / {len(calls['violations'])}"),
        (f"with a method-wide 429 (Retry-After {args.retry_after} s) after {limited.get('injected', '?')} posts",
         f"{held:6.2f} s  (told to wait {limited['told_to_wait']:.2f} s; {beyond:.2f} s beyond that: "
         f"{beyond / floor:.2f}x sequential minimum, target <= 0.2x)"),
        ("  delivered, 429s, sent during Retry-After",
         f"{held_summary['success']} of {held_summary['total']}, each once: {held_once}; {limited['limited']} x 429; "
         f"{limited['sent_during_retry_after']} sent during Retry-After (target 0)"),
    ])  # fmt: skip
    if not exactly_once or calls["violations"] or not held_once or limited["sent_during_retry_after"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
