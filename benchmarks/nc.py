"""Notification Center sync against the sandbox at 50 ms per Coralogix call.

1. `connectors pull` then `connectors plan` of 1,000 remote Slack connectors: the API calls they
   use (one list each, never one call per connector) and their wall time against the floor those
   calls set (calls x latency), with `cxslack --version` measured in the same run as the start-up
   baseline.
2. `connectors push` of 100 changed connectors: a list, then per connector a re-read and a full
   PUT, 4 at a time; wall time against the sequential floor (every call one after the other) and
   against the floor at 4 at a time.

    python benchmarks/nc.py [--connectors N] [--changed M] [--latency S]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cxslack, median_wall, report, sandbox_env, sandbox_get, sandbox_process, timed

OLD, NEW = "old-int", "new-int"


def coralogix_calls(url: str) -> int:
    methods = sandbox_get(url, "calls")["methods"]
    return sum(n for method, n in methods.items() if method.startswith("coralogix."))


def seed(url: str, count: int) -> None:
    for ident, version in ((OLD, "0.0.9"), (NEW, "0.1.0")):
        httpx.post(
            f"{url}/_sandbox/coralogix/integrations", json={"id": ident, "version": version}
        ).raise_for_status()
    with httpx.Client(timeout=30) as client:
        for n in range(count):
            client.post(f"{url}/_sandbox/coralogix/nc/connectors", json={"connector": {
                "id": f"c{n:04d}", "name": f"Connector {n:04d}", "type": "SLACK",
                "connectorConfig": {"fields": [
                    {"fieldName": "integrationId", "value": OLD if n % 2 else NEW},
                    {"fieldName": "channel", "value": f"team-{n % 50:02d}"},
                    {"fieldName": "fallbackChannel", "value": "ops-fallback"}]},
                "configOverrides": [{"entityType": "CASES", "fields": [
                    {"fieldName": "channel", "template": "{{ _context.entityLabels.team[0] }}-cases"}]}]}}
            ).raise_for_status()  # fmt: skip


def link() -> None:
    from cxslack.registry import NewIntegration, Registry

    registry = Registry()
    for name, version, ident in (("Legacy", "0.0.9", OLD), ("Current", "0.1.0", NEW)):
        registry.add(
            NewIntegration(name=name, version=version, consent_us_data_transfer=True, coralogix_id=ident)
        )


def change(count: int) -> None:
    from cxslack.registry import Registry

    with Registry().editing() as (view, _):
        for ident in sorted(view.connectors)[:count]:
            view.connectors[ident]["channel"] = "general"


def measured(args: list[str], env: dict[str, str], url: str) -> tuple[float, int]:
    before = coralogix_calls(url)
    wall = timed(args, env)
    return wall, coralogix_calls(url) - before


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connectors", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    ms = args.latency * 1000
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(latency=args.latency) as url:
        env = {**sandbox_env(url, Path(tmp) / "home", coralogix=True), "CI": "1"}
        os.environ.update(env)
        seed(url, args.connectors)
        link()
        base = median_wall(cxslack("--version"), 5, env)
        pull, pull_calls = measured(["connectors", "pull"], env, url)
        plan, plan_calls = measured(["connectors", "plan", "--detailed-exitcode"], env, url)
        change(args.changed)
        push, push_calls = measured(["connectors", "push", "--yes"], env, url)
        after, after_calls = measured(["connectors", "plan", "--detailed-exitcode"], env, url)

    def against(wall: float, calls: int) -> str:
        floor = calls * args.latency
        return (f"{wall:5.2f} s, {calls} call(s); floor {floor:.2f} s; {wall - floor:.2f} s beyond it "
                f"({wall - floor - base:.2f} s beyond floor + start-up)")  # fmt: skip

    sequential = push_calls * args.latency
    concurrent = (1 + 2 * math.ceil(args.changed / 4)) * args.latency
    report([
        ("start-up baseline (cxslack --version)", f"{base:5.2f} s"),
        (f"pull of {args.connectors} connectors at {ms:.0f} ms/call", against(pull, pull_calls)),
        ("plan, no changes", against(plan, plan_calls)),
        ("pull + plan", f"{pull + plan:5.2f} s for {pull_calls + plan_calls} calls (one per connector would be "
                        f"{2 * args.connectors}: {2 * args.connectors * args.latency:.0f} s)"),
        (f"push of {args.changed} changed connectors", f"{push:5.2f} s, {push_calls} calls (1 list + a GET and a PUT each)"),
        ("  vs the calls one after another", f"{sequential:5.2f} s  ({push / sequential:.2f}x)"),
        ("  vs the floor at 4 at a time", f"{concurrent:5.2f} s  ({push / concurrent:.2f}x)"),
        ("plan after the push", against(after, after_calls)),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
