"""`integrations authorize` never hangs a CI job, and says what it does without a terminal."""

from __future__ import annotations

import os
import time

import pytest

from cxslack.sandbox import SlackSandbox

from .conftest import Cli, add_integration, run_process
from .oauth_browser import sandbox_env


def test_ci_without_no_browser_or_paste_exits_2_at_once(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    started = time.monotonic()
    run = run_process("integrations", "authorize", "Payments", env={**sandbox_env(sandbox), "CI": "true"})
    assert run.exit_code == 2
    assert time.monotonic() - started < 20  # not the 300 s callback timeout
    assert "--no-browser" in run.stderr and "--paste" in run.stderr
    assert "http://" not in run.stderr  # nothing was started: no authorize URL, no listener


def test_add_with_authorize_in_ci_is_refused_before_anything_is_created(
    cli: Cli, sandbox: SlackSandbox
) -> None:
    run = run_process("integrations", "add", "--name", "Payments", "--consent-us-data-transfer", "--authorize",
                      env={**sandbox_env(sandbox), "CI": "true"}, timeout=30)  # fmt: skip
    assert run.exit_code == 2 and "--no-browser" in run.stderr
    assert cli.ok("integrations", "list", "-o", "json").json() == {"integrations": []}


def test_without_a_terminal_it_behaves_as_no_browser_and_says_so(
    cli: Cli, sandbox: SlackSandbox, tmp_path: os.PathLike[str]
) -> None:
    add_integration(cli, "Payments")
    opened = f"{tmp_path}/browser-opened"
    env = {**sandbox_env(sandbox), "CI": "", "BROWSER": f"touch {opened} %s"}
    run = run_process("integrations", "authorize", "Payments", "--redirect-uri",
                      "https://127.0.0.1:0/slack/oauth/callback", "--timeout", "0.5", env=env)  # fmt: skip
    assert run.exit_code == 4  # the callback timeout, after saying how it runs
    assert "No terminal: not opening a browser (as with --no-browser)" in run.stderr
    assert not os.path.exists(opened)


@pytest.mark.parametrize("value", ["inf", "nan", "-5", "0"])
def test_timeout_must_be_a_finite_positive_number(cli: Cli, value: str) -> None:
    add_integration(cli, "Payments")
    run = cli("integrations", "authorize", "Payments", "--no-browser", "--timeout", value)
    assert run.exit_code == 2
    assert "--timeout must be a number of seconds above 0" in run.stderr
