"""Helpers shared by the benchmark scripts: timing subprocesses and printing figures."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any


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


def timed(args: list[str], env: dict[str, str]) -> float:
    """Wall time of one `cxslack ARGS` run (which must succeed)."""
    started = time.perf_counter()
    proc = subprocess.run(cxslack(*args), env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"cxslack {' '.join(args)} failed: {proc.stderr[-400:]}")
    return time.perf_counter() - started


def percentile(samples: list[float], p: float) -> float:
    return (
        statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1]
        if len(samples) > 1
        else samples[0]
    )


def post_all(count: int, senders: int, post: Callable[[Any, int], Any]) -> list[float]:
    """Call `post(client, index)` for every index below `count` from `senders` threads, each with its
    own keep-alive httpx client; it must answer 200. Returns how long each call took, in seconds."""
    import threading

    import httpx

    latencies: list[float] = []
    lock = threading.Lock()
    cursor = iter(range(count))

    def sender() -> None:
        with httpx.Client(timeout=10, trust_env=False) as client:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                started = time.perf_counter()
                status = post(client, index).status_code
                elapsed = time.perf_counter() - started
                if status != 200:
                    raise SystemExit(f"delivery {index} answered {status}")
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def report(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def _serve(ready: Any, kwargs: dict[str, Any]) -> None:
    import threading

    from cxslack.sandbox import SlackSandbox

    sandbox = SlackSandbox(**kwargs).start()
    ready.put(sandbox.url)
    threading.Event().wait()  # until the parent terminates this process


@contextmanager
def sandbox_process(**kwargs: Any) -> Iterator[str]:
    """A Slack sandbox in its own process (so it does not share our GIL); yields its base URL."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(ready, kwargs), daemon=True)
    proc.start()
    try:
        yield ready.get(timeout=30)
    finally:
        proc.terminate()
        proc.join(timeout=10)


def sandbox_env(url: str) -> dict[str, str]:
    from cxslack.sandbox import CLIENT_ID, CLIENT_SECRET

    return {
        "CXSLACK_SLACK_API_URL": f"{url}/api/",
        "CXSLACK_SLACK_AUTHORIZE_URL": f"{url}/oauth/v2/authorize",
        "CXSLACK_SLACK_CLIENT_ID": CLIENT_ID,
        "CXSLACK_SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "NO_PROXY": "127.0.0.1,localhost,::1",
    }


def admin(url: str, action: str, **body: Any) -> Any:
    import httpx

    response = httpx.post(f"{url}/_sandbox/{action}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def installed_integration(url: str, name: str, *, version: str = "0.1.0", two_way_sync: bool = False,
                          channel_lookup: bool = False) -> str:  # fmt: skip
    """Add an integration in the current CXSLACK_HOME and install the app with a sandbox grant."""
    from cxslack.oauth.flow import _grant_from, install
    from cxslack.registry import NewIntegration, Registry

    registry = Registry()
    integration = registry.add(
        NewIntegration(
            name=name,
            consent_us_data_transfer=True,
            version=version,
            two_way_sync=two_way_sync,
            channel_lookup=channel_lookup,
        )  # fmt: skip
    )
    answer = admin(
        url, "tokens", scopes=integration.requested_bot_scopes, user_scopes=integration.requested_user_scopes
    )
    install(registry, integration.id, _grant_from(answer))
    return integration.id


@contextmanager
def ratelimit_mid_run(url: str, method: str, after_calls: int, retry_after: int) -> Iterator[dict[str, Any]]:
    """While the body runs, the sandbox answers the (after_calls + 1)th call to `method` with a
    method-wide 429 (`Retry-After: retry_after`; every later call to the method inside the window
    is refused too). Yields a dict that gets, after the body, `sent_during_retry_after` (calls the
    client sent while told to wait) and `limited` (429s answered for the method)."""
    import httpx

    def log() -> tuple[int, list[dict[str, Any]]]:
        doc = httpx.get(f"{url}/_sandbox/calls", timeout=30).json()
        return (len([v for v in doc["violations"] if v["method"] == method]),
                [a for a in doc["arrivals"] if a["method"] == method and a.get("status") == 429])  # fmt: skip

    found: dict[str, Any] = {"injected": after_calls}
    violations, limited = log()
    admin(url, "faults", method=method, kind="ratelimit", retry_after=retry_after, after=after_calls)
    try:
        yield found
    finally:
        now, answers = log()
        answers = answers[len(limited) :]
        found["sent_during_retry_after"], found["limited"] = now - violations, len(answers)
        # how long the client was told to wait, from the first 429 to the end of the last window
        found["told_to_wait"] = (
            max(a["answered"] + a["retry_after"] for a in answers) - min(a["answered"] for a in answers)
            if answers else 0.0
        )  # fmt: skip
