"""Helpers shared by the benchmark scripts: timing subprocesses and printing figures."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def median_wall(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> float:
    """Median wall time in seconds of running argv `runs` times (after one warm-up run).

    The warm-up writes bytecode even where PYTHONDONTWRITEBYTECODE is set, so cxslack starts as an
    installed package does (pip compiles it) and as the baseline's own site-packages already do."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
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
    return _run(args, env, (0,))[0]


def run_json(args: list[str], env: dict[str, str], accept: tuple[int, ...] = (0,)) -> tuple[float, Any]:
    """Wall time and JSON output of one `cxslack ARGS -o json` run, which must exit with one of `accept`."""
    elapsed, stdout = _run([*args, "-o", "json"], env, accept)
    return elapsed, json.loads(stdout)


def _run(args: list[str], env: dict[str, str], accept: tuple[int, ...]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cxslack(*args), env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode not in accept:
        raise SystemExit(f"cxslack {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return time.perf_counter() - started, proc.stdout


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


def sandbox_env(url: str, home: Path | None = None, *, coralogix: bool = False) -> dict[str, str]:
    """Environment that points cxslack at the sandbox's Slack (and, with `coralogix`, at its
    Coralogix API and ingress with its API key), with CXSLACK_HOME at `home` when given."""
    from cxslack.sandbox import CLIENT_ID, CLIENT_SECRET

    env = {
        "CXSLACK_SLACK_API_URL": f"{url}/api/",
        "CXSLACK_SLACK_AUTHORIZE_URL": f"{url}/oauth/v2/authorize",
        "CXSLACK_SLACK_CLIENT_ID": CLIENT_ID,
        "CXSLACK_SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "NO_PROXY": "127.0.0.1,localhost,::1",
    }
    if home is not None:
        env["CXSLACK_HOME"] = str(home)
    if coralogix:
        from cxslack.sandbox.coralogix import CORALOGIX_API_KEY

        env.update(
            CXSLACK_CORALOGIX_API_URL=url, CXSLACK_CORALOGIX_INGRESS_URL=url, CX_API_KEY=CORALOGIX_API_KEY
        )
    return env


def admin(url: str, action: str, **body: Any) -> Any:
    """POST an admin action to the sandbox (`/_sandbox/ACTION`); its JSON answer."""
    import httpx

    response = httpx.post(f"{url}/_sandbox/{action}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def sandbox_get(url: str, what: str, **params: Any) -> Any:
    """GET one of the sandbox's admin records (`/_sandbox/WHAT`: calls, messages, coralogix/cases …)."""
    import httpx

    response = httpx.get(f"{url}/_sandbox/{what}", params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def installed_integration(url: str, name: str, *, version: str = "0.1.0", **features: bool) -> str:
    """Add an integration in the current CXSLACK_HOME (with the NewIntegration `features` given:
    two_way_sync, channel_lookup, evaluation_chart …) and install the app with a sandbox grant."""
    from cxslack.oauth.flow import _grant_from, install
    from cxslack.registry import NewIntegration, Registry

    registry = Registry()
    integration = registry.add(
        NewIntegration(name=name, consent_us_data_transfer=True, version=version, **features)
    )
    answer = admin(
        url, "tokens", scopes=integration.requested_bot_scopes, user_scopes=integration.requested_user_scopes
    )
    install(registry, integration.id, _grant_from(answer))
    return integration.id


def routed_cases(
    url: str, integration: str, count: int, channels: int, prefix: str
) -> tuple[list[str], list[str]]:
    """`channels` sandbox channels PREFIX-NNN, `count` Coralogix Cases labelled route:<channel> in
    turn, and a connector `router` on `integration` whose Cases override sends each Case to its
    channel. Returns the Cases' readable ids and the channel names."""
    import httpx

    names = [f"{prefix}-{n:03d}" for n in range(channels)]
    with httpx.Client(base_url=f"{url}/_sandbox/", timeout=30) as client:  # one client for many calls
        for name in names:
            client.post("channels", json={"name": name}).raise_for_status()
        refs = []
        for n in range(count):
            created = client.post(
                "coralogix/cases", json={"title": f"Case {n}", "labels": [f"route:{names[n % channels]}"]}
            )
            created.raise_for_status()
            refs.append(created.json()["case"]["readableId"])
    template = 'cases={{ _context.entityLabels["route"][0] }}'
    subprocess.run(cxslack("connectors", "create", "router", "--integration", integration, "--channel", "general",
                           "--fallback-channel", "ops-fallback", "--override", template),
                   env={**os.environ}, check=True, capture_output=True)  # fmt: skip
    return refs, names


@contextmanager
def ratelimit_mid_run(url: str, method: str, after_calls: int, retry_after: int) -> Iterator[dict[str, Any]]:
    """While the body runs, the sandbox answers the (after_calls + 1)th call to `method` with a
    method-wide 429 (`Retry-After: retry_after`; every later call to the method inside the window
    is refused too). Yields a dict that gets, after the body, `sent_during_retry_after` (calls the
    client sent while told to wait) and `limited` (429s answered for the method)."""

    def log() -> tuple[int, list[dict[str, Any]]]:
        doc = sandbox_get(url, "calls")
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
