"""Helpers shared by the benchmark scripts: timing subprocesses and printing figures."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence


def median_wall(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> float:
    """Median wall time in seconds of running argv `runs` times (after one warm-up run)."""
    full_env = {**os.environ, **(env or {})}
    subprocess.run(argv, env=full_env, capture_output=True, check=True)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=full_env, capture_output=True, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def cxslack(*args: str) -> list[str]:
    return [sys.executable, "-m", "cxslack", *args]


def report(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
