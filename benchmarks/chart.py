"""The alert evaluation chart: render time, upload calls, and what the extra costs everyone else.

Measures in one run:
- render time per chart: the median of 50 renders of a metric chart (the sandbox's CPU alert shape,
  one point per 5-minute window) and of a 500-point one, after one warm-up render; the warm-up's
  own time (importing matplotlib) is printed too. Target: < 300 ms per chart.
- Slack calls per chart: a metric-alert Case notified against the sandbox, counting
  files.getUploadURLExternal, the upload URL and files.completeUploadExternal. Target: 3.
- start-up of `cxslack integrations list -o json` (and `--version`) with the charts extra installed
  and with it unavailable (matplotlib made unimportable in that process), against the baseline of
  `python -c "import typer"`: the extra must change nothing.

    python benchmarks/chart.py [--runs N]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    installed_integration,
    median_wall,
    report,
    sandbox_env,
    sandbox_get,
    sandbox_process,
    timed,
)

# `integrations list -o json` as the installed entry point runs it, with matplotlib importable or not
ENTRY = "import sys\n{block}from cxslack.cli.app import main\nsys.argv = ['cxslack', *sys.argv[1:]]\nmain()\n"


def chart_data(points: int, window: int = 300) -> object:
    from cxslack.charts.model import AlertQuery, ChartData, Series, Trigger, chart_range

    trigger_at = 1_796_600_000.0
    trigger = Trigger("a1", "v1", trigger_at, None, "triggered", "t")
    query = AlertQuery(
        "a1", "CPU above 90% on checkout-api", "METRIC_THRESHOLD", "metric", "avg(cpu)", window, 90.0, ">"
    )
    start, _, step = chart_range(trigger, window, trigger_at + 10 * window)
    values = tuple(
        (
            start + i * step,
            63 + 3 * math.sin(i / 5) + 36 / (1 + math.exp(-(start + i * step - trigger_at) / 120)),
        )
        for i in range(points)
    )
    return ChartData(
        "CASE-1",
        trigger,
        query,
        start,
        start + points * step,
        step,
        (Series("service=checkout-api", values),),
    )


def render_times(points: int, runs: int = 50) -> tuple[float, float]:
    from cxslack.charts.render import render

    data = chart_data(points)
    started = time.perf_counter()
    render(data)  # type: ignore[arg-type]
    first = time.perf_counter() - started
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        render(data)  # type: ignore[arg-type]
        samples.append(time.perf_counter() - started)
    return first, statistics.median(samples)


def upload_calls() -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(rate_limits=False) as url:
        env = sandbox_env(url, Path(tmp) / "home", coralogix=True)
        os.environ.update(env)
        installed_integration(url, "Payments", two_way_sync=True, evaluation_chart=True)
        timed(["connectors", "create", "On-call", "--integration", "Payments", "--channel", "payments-alerts",
               "--fallback-channel", "ops-fallback"], env)  # fmt: skip
        before = sandbox_get(url, "calls")["methods"]
        timed(["cases", "notify", "CASE-1", "--connector", "on-call"], env)
        after = sandbox_get(url, "calls")["methods"]
    steps = ("files.getUploadURLExternal", "files.upload_url", "files.completeUploadExternal")
    return {step: after.get(step, 0) - before.get(step, 0) for step in steps}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=21, help="start-up runs per command (median)")
    args = parser.parse_args()
    rows = []
    for points in (27, 500):
        first, median = render_times(points)
        if points == 27:  # the process's first chart pays for importing matplotlib
            rows.append(("first render, importing matplotlib", f"{first * 1000:7.1f} ms"))
        rows.append(
            (f"render, {points} points (median of 50)", f"{median * 1000:7.1f} ms  (target < 300 ms)")
        )
    calls = upload_calls()
    rows.append(
        (
            "Slack calls per chart",
            f"{sum(calls.values())}  ({', '.join(f'{k} {v}' for k, v in calls.items())})",
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = {"CXSLACK_HOME": str(Path(tmp) / "home")}
        baseline = median_wall([sys.executable, "-c", "import typer"], args.runs)
        rows.append(("baseline: python -c 'import typer'", f"{baseline * 1000:7.1f} ms"))
        for label, block in (
            ("with the charts extra", ""),
            ("without it", "sys.modules['matplotlib'] = None\n"),
        ):
            entry = [sys.executable, "-c", ENTRY.format(block=block)]
            listing = median_wall([*entry, "integrations", "list", "-o", "json"], args.runs, env)
            version = median_wall([*entry, "--version"], args.runs, env)
            rows.append(
                (
                    f"integrations list -o json, {label}",
                    f"{listing * 1000:7.1f} ms  ({listing / baseline:.2f}x baseline)",
                )
            )
            rows.append(
                (f"--version, {label}", f"{version * 1000:7.1f} ms  ({version / baseline:.2f}x baseline)")
            )
    report(rows)


if __name__ == "__main__":
    main()
