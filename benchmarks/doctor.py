"""`cxslack doctor` on a big workspace: Slack calls per method, wall time, and no 429 at Slack's tiers.

5 integrations (two-way sync and --channel-lookup on), 1,000 connectors on 300 channels (every tenth private, a quarter
of the connectors with a cases override), the sandbox in its own process with 50 ms per API call
and its per-method Tier limits on. Channel existence and membership must come from paginated
conversations.list, so the target is <= 3 calls per integration + 1 per 1,000 channels, and no
429. The same-run baseline is `doctor --offline` (no Slack call at all): the difference is what
asking Slack costs.

    python benchmarks/doctor.py [--integrations N] [--connectors N] [--channels N] [--latency S]
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
from _common import admin, installed_integration, report, run_json, sandbox_env, sandbox_get, sandbox_process
from cxslack.sandbox.workspace import Workspace

# Both render to channels the benchmark creates, so a healthy workspace stays healthy.
OVERRIDES = (
    '{% if _context.entityLabels["team"][0] == "db" %}bench-001{% else %}bench-002{% endif %}',
    "{{ case.labels.team[0] }}-bench",
)


def build(url: str, integrations: int, connectors: int, channels: int) -> None:
    from cxslack.connectors import Connector, EntityType
    from cxslack.registry import Registry

    ids = [
        installed_integration(url, f"Bench {n}", two_way_sync=True, channel_lookup=True)
        for n in range(integrations)
    ]
    names = [f"bench-{n:03d}" for n in range(channels)]
    # One client for the bulk of admin calls: `admin()` builds a new one (and TLS context, ~50 ms) per call.
    with httpx.Client(base_url=f"{url}/_sandbox/") as client:
        for n, name in enumerate([*names, "db-bench"]):
            client.post(
                "channels", json={"name": name, "private": n % 10 == 0, "bot_member": n % 10 == 0}
            ).raise_for_status()
    # One transaction for all connectors: `connectors create` a thousand times would rewrite config.toml each time.
    with Registry().editing() as (view, _):
        for n in range(connectors):
            overrides = {EntityType.CASES: OVERRIDES[n % 2]} if n % 4 == 0 else {}
            connector = Connector(
                id=f"bench-{n:04d}", name=f"Bench {n:04d}", integration=ids[n % integrations],
                channel=names[n % channels], fallback_channel="ops-fallback", overrides=overrides,
            )  # fmt: skip
            connector.validate()
            view.connectors[connector.id] = connector.to_toml()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--integrations", type=int, default=5)
    parser.add_argument("--connectors", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sandbox_process() as url:
        env = sandbox_env(url, Path(tmp) / "home")
        os.environ.update(env)
        build(url, args.integrations, args.connectors, args.channels)
        # Latency from here on only: building the workspace takes hundreds of admin calls.
        admin(url, "settings", tier_limits=True, latency=args.latency)
        offline, _ = run_json(["doctor", "--offline"], env, accept=(0, 1))
        before = sandbox_get(url, "calls")
        online, doc = run_json(["doctor"], env, accept=(0, 1))
        after = sandbox_get(url, "calls")
    methods = {m: n - before["methods"].get(m, 0) for m, n in sorted(after["methods"].items())}
    methods = {m: n for m, n in methods.items() if n}
    total = sum(methods.values())
    workspace_channels = len(Workspace().channels) + args.channels + 1  # seeded + created
    target = 3 * args.integrations + math.ceil(workspace_channels / 1000)
    ratelimited = after["ratelimited"] - before["ratelimited"]
    violations = len(after["violations"]) - len(before["violations"])
    summary = doc["summary"]
    report([
        ("integrations / connectors / channels", f"{args.integrations} / {args.connectors} / {args.channels}, "
                                                 f"latency {args.latency * 1000:.0f} ms per call, Tier limits on"),
        ("Slack calls per method", ", ".join(f"{m} {n}" for m, n in methods.items())),
        ("Slack calls in total", f"{total}  (target <= 3 x {args.integrations} + 1 per 1,000 channels = {target})"),
        ("conversations.info per connector channel instead", f">= {args.connectors} calls (Tier 3: 50/min)"),
        ("doctor wall time", f"{online:6.2f} s  ({online / offline:.2f}x of doctor --offline: {offline:.2f} s)"),
        ("checks", f"{summary['total']}: {summary['ok']} ok, {summary['warn']} warn, {summary['fail']} fail, "
                   f"{summary['skip']} skip"),
        ("429s received / sent during Retry-After", f"{ratelimited} / {violations}"),
    ])  # fmt: skip
    if total > target or ratelimited or violations or not doc["healthy"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
