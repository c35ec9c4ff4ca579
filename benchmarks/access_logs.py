"""`cxslack access-logs collect --forward` cost: checkpointed, journaled forwarding against the floor.

N logins (default 50,000) in the sandbox: the wall time of a first `collect --forward` (reads
every page, forwards every entry in fsync-journaled batches) against the same run's floor: the
same team.accessLogs pages and the same ingestion requests made straight through slack_sdk and
httpx, without a checkpoint. Then a second run (nothing new), which reads only the overlap
behind the checkpoint.

    python benchmarks/access_logs.py [--logins N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import admin, report, sandbox_env, sandbox_process, timed

SEND_KEY = "sandbox-send-key"


def installed(url: str) -> str:
    from cxslack.oauth.flow import _grant_from, install
    from cxslack.registry import NewIntegration, Registry

    registry = Registry()
    integration = registry.add(NewIntegration(name="Prod", access_logs=True, consent_us_data_transfer=True))
    answer = admin(
        url, "tokens", scopes=integration.requested_bot_scopes, user_scopes=integration.requested_user_scopes
    )
    install(registry, integration.id, _grant_from(answer))
    return str(answer["authed_user"]["access_token"])


def floor(url: str, user_token: str) -> float:
    """Every page, then the same entries in ~1,000-entry requests: what any collector must do."""
    from slack_sdk import WebClient

    client = WebClient(token=user_token, base_url=f"{url}/api/")
    started = time.perf_counter()
    logins, cursor = [], None
    while True:
        page = client.api_call(
            "team.accessLogs", data={"limit": 1000, **({"cursor": cursor} if cursor else {})}
        )
        logins += page["logins"]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    with httpx.Client(timeout=30) as http:
        for start in range(0, len(logins), 1000):
            entries = [
                {
                    "applicationName": "floor",
                    "subsystemName": "floor",
                    "severity": 3,
                    "text": json.dumps(entry),
                }
                for entry in logins[start : start + 1000]
            ]
            http.post(
                f"{url}/logs/v1/singles", json=entries, headers={"Authorization": f"Bearer {SEND_KEY}"}
            ).raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--logins", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(rate_limits=False) as url:
        env = {**sandbox_env(url, Path(tmp) / "home", coralogix=True), "CX_SEND_KEY": SEND_KEY}
        os.environ.update(env)
        token = installed(url)
        admin(url, "access-logs", count=args.logins)
        base = floor(url, token)
        first = timed(["access-logs", "collect", "prod", "--forward"], env)
        second = timed(["access-logs", "collect", "prod", "--forward"], env)
        startup = timed(["--version"], env)
    report([
        ("logins", f"{args.logins:,}"),
        ("floor (slack_sdk + httpx, no checkpoint)", f"{base:.2f} s"),
        ("cxslack first run", f"{first:.2f} s ({first / base:.2f}× the floor; start-up {startup:.2f} s)"),
        ("cxslack second run (nothing new)", f"{second:.2f} s"),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
