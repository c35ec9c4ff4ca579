"""`doctor` with Slack out of reach is not healthy: it fails, and says Slack could not be reached."""

from __future__ import annotations

import functools
import socket
from typing import Any

import pytest

from .conftest import Cli, install


def test_unreachable_slack_fails_doctor(cli: Cli, slack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from cxslack.slack import client

    install(cli, slack, "Payments")
    monkeypatch.setattr(client, "RetryPolicy", functools.partial(client.RetryPolicy, connection_retries=0))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    run = cli("doctor", "-o", "json", env={"CXSLACK_SLACK_API_URL": f"http://127.0.0.1:{port}/api/"})
    assert run.exit_code == 1
    doc = run.json()
    assert doc["healthy"] is False
    token = next(c for c in doc["checks"] if c["id"] == "failing.token")
    assert token["status"] == "fail" and token["message"].startswith("Slack could not be reached")
    assert "CXSLACK_SLACK_API_URL" in token["remediation"]
    assert cli("doctor").exit_code == 0  # and healthy again once Slack answers
