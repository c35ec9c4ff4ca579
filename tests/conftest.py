"""Every test runs the real `cxslack` against a temporary CXSLACK_HOME."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cxslack.cli.app import app
from tests.postgres_fixture import pg_url, postgres  # noqa: F401  (a throwaway PostgreSQL, for every module)
from tests.sandbox_fixture import sandbox  # noqa: F401  (the `sandbox` fixture, for every test module)

# A suite started as a background job of a non-interactive shell (`bash -c '… &'`, some CI runners)
# inherits SIGINT ignored, and so would every cxslack the tests start: the Ctrl-C tests could never
# pass. Take Python's default back, as an interactive terminal has it (exec gives children SIG_DFL).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ENV_TO_CLEAR = (
    "CXSLACK_OUTPUT", "CXSLACK_SLACK_API_URL", "CXSLACK_SLACK_AUTHORIZE_URL", "CXSLACK_SLACK_CLIENT_ID",
    "CXSLACK_SLACK_CLIENT_SECRET", "CX_API_KEY", "CX_REGION", "CX_PROFILE", "CX_SEND_KEY", "CX_TEAM_ID", "NO_COLOR",
    "FORCE_COLOR", "CXSLACK_DEBUG", "CXSLACK_SLACK_TIMEOUT",
)  # fmt: skip


# Everything the suite prints is scanned: a token-shaped string that is not masked, or a secret a
# test used, fails the whole session. (The sandbox's client secret is a published constant that
# `sandbox serve` prints on purpose for `export`, so it is not on this list.)
UNMASKED_TOKEN = re.compile(r"\b(?:xox[abpeorsc](?:\.xox[abp])?|xapp)-(?!\*\*\*\*)[A-Za-z0-9-]{4,}")
TEST_SECRETS = (
    "not-the-secret",
    "sekrit-value-123",
    "s3cr3t-value",
    "cx-api-key-for-tests",
    "cx-send-key-for-tests",
)
LEAKS: list[str] = []


def scan(where: str, *texts: str) -> None:
    for text in texts:
        match = UNMASKED_TOKEN.search(text or "")
        if match:
            LEAKS.append(f"{where}: token {match.group(0)[:12]}…")
        for secret in TEST_SECRETS:
            if secret in (text or ""):
                LEAKS.append(f"{where}: test secret {secret[:4]}…")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for section, content in report.sections:
        scan(f"{report.nodeid} ({section})", content)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if LEAKS:
        print("\nSecrets reached output:\n  " + "\n  ".join(LEAKS))
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def cxslack_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cxslack-home"
    monkeypatch.setenv("CXSLACK_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))  # no real ~/.cx profile reaches a test
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    for name in ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CI", "true")
    return home


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """Runs the real command tree in-process (CliRunner) or as a subprocess."""

    def __init__(self) -> None:
        self.runner = CliRunner()
        self.command = typer.main.get_command(app)

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Run:
        result = self.runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        scan(f"cxslack {' '.join(args)[:60]}", result.stdout, result.stderr)
        return Run(result.exit_code, result.stdout, result.stderr)

    def ok(self, *args: str, **kw: Any) -> Run:
        run = self(*args, **kw)
        assert run.exit_code == 0, f"exit {run.exit_code}\nstdout: {run.stdout}\nstderr: {run.stderr}"
        return run


@pytest.fixture
def cli() -> Cli:
    return Cli()


def run_process(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 60
) -> Run:
    """The installed console entry point in a separate process (`python -m cxslack`)."""
    proc = subprocess.run(
        [sys.executable, "-m", "cxslack", *args],
        capture_output=True,
        text=True,
        input=input,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    scan(f"cxslack {' '.join(args)[:60]}", proc.stdout, proc.stderr)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def add_integration(cli: Cli, name: str, *extra: str) -> dict[str, Any]:
    run = cli.ok("integrations", "add", "--name", name, "--consent-us-data-transfer", *extra, "-o", "json")
    return run.json()["integration"]


@pytest.fixture
def slack(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811 (pytest fixture injection)
    """The sandbox, with cxslack's Slack and app settings pointed at it for this test."""
    from cxslack.sandbox import CLIENT_ID, CLIENT_SECRET

    monkeypatch.setenv("CXSLACK_SLACK_API_URL", sandbox.api_url)
    monkeypatch.setenv("CXSLACK_SLACK_AUTHORIZE_URL", sandbox.authorize_url)
    monkeypatch.setenv("CXSLACK_SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("CXSLACK_SLACK_CLIENT_SECRET", CLIENT_SECRET)
    return sandbox


def install(cli: Cli, sb: Any, name: str, *flags: str, scopes: list[str] | None = None) -> dict[str, Any]:
    """Add an integration and install the app without a browser: the sandbox's grant for
    `scopes` (default: everything the integration requests) goes through the real install path."""
    from cxslack.oauth.flow import _grant_from
    from cxslack.oauth.flow import install as install_grant
    from cxslack.registry import Registry

    created = add_integration(cli, name, *flags)
    registry = Registry()
    integration = registry.view().find(created["id"])
    answer = sb.issue_token(
        scopes=scopes if scopes is not None else integration.requested_bot_scopes,
        user_scopes=integration.requested_user_scopes,
    )
    install_grant(registry, integration.id, _grant_from(answer))
    return cli.ok("integrations", "show", created["id"], "-o", "json").json()["integration"]


def wait_for(probe: Callable[[], Any], timeout: float = 20) -> Any:
    """Poll `probe` until it returns something truthy (which is returned); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def sandbox_admin(sb: Any, action: str, **body: Any) -> Any:
    import httpx

    response = httpx.post(f"{sb.url}/_sandbox/{action}", json=body)
    response.raise_for_status()
    return response.json()


def sandbox_messages(sb: Any, channel: str) -> list[dict[str, Any]]:
    import httpx

    return list(httpx.get(f"{sb.url}/_sandbox/messages", params={"channel": channel}).json()["messages"])


@pytest.fixture
def cx(slack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sandbox as Slack *and* Coralogix (Cases API, ingestion), with cxslack pointed at both."""
    from cxslack.sandbox.case_actions import CORALOGIX_TEAM_ID
    from cxslack.sandbox.coralogix import CORALOGIX_API_KEY

    monkeypatch.setenv("CXSLACK_CORALOGIX_API_URL", slack.url)
    monkeypatch.setenv("CXSLACK_CORALOGIX_INGRESS_URL", slack.url)
    monkeypatch.setenv("CX_API_KEY", CORALOGIX_API_KEY)
    monkeypatch.setenv("CX_TEAM_ID", str(CORALOGIX_TEAM_ID))  # whose members Case assignees are
    return slack


def on_call(
    cli: Cli, sb: Any, *flags: str, scopes: list[str] | None = None, connector: tuple[str, ...] = ()
) -> None:
    """Integration "Payments" installed (with `flags` and `scopes`, as `install`), and an "On-call"
    connector (with `connector`'s extra flags) to #payments-alerts, falling back to #ops-fallback."""
    install(cli, sb, "Payments", *flags, scopes=scopes)
    cli.ok("connectors", "create", "On-call", "--integration", "payments", "--channel", "payments-alerts",
           "--fallback-channel", "ops-fallback", *connector)  # fmt: skip


def case_root(cli: Cli, sb: Any, *flags: str, scopes: list[str] | None = None) -> dict[str, Any]:
    """`on_call`, and CASE-1 posted there: returns the root notification (channel, ts, …)."""
    on_call(cli, sb, *flags, scopes=scopes)
    return dict(
        cli.ok("cases", "notify", "CASE-1", "--connector", "on-call", "-o", "json").json()["notifications"][0]
    )


def coralogix_client(sb: Any, api_key: str | None = None, **env: str) -> Any:
    """A CoralogixClient on the sandbox's Coralogix side (API and ingestion, with `api_key`, by
    default the sandbox's full key), `env` added to what it resolves from; retries without waiting."""
    from cxslack.coralogix.client import CoralogixClient
    from cxslack.coralogix.config import resolve_settings
    from cxslack.sandbox.coralogix import CORALOGIX_API_KEY, CORALOGIX_SEND_KEY

    environ = {"CXSLACK_CORALOGIX_API_URL": sb.url, "CXSLACK_CORALOGIX_INGRESS_URL": sb.url,
               "CX_API_KEY": api_key or CORALOGIX_API_KEY, "CX_SEND_KEY": CORALOGIX_SEND_KEY, **env}  # fmt: skip
    return CoralogixClient(resolve_settings(environ=environ), backoff=0.001)


def tracked_case(cli: Cli, sb: Any, *flags: str) -> dict[str, Any]:
    """`case_root` of an integration with two-way sync."""
    return case_root(cli, sb, "--two-way-sync", *flags)
