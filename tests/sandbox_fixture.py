"""The `sandbox` pytest fixture: a running Slack sandbox per test, over real loopback sockets.

Import it where tests need it (`from tests.sandbox_fixture import sandbox`). A test that needs a
token without the browser flow calls `sandbox.issue_token(scopes=[…], user_scopes=[…])`, the
admin shortcut also served as `POST /_sandbox/tokens`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cxslack.sandbox import SlackSandbox

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _bypass_proxies_for_loopback() -> None:
    """slack_sdk (urllib) and httpx honour HTTP(S)_PROXY; loopback calls must never go through one."""
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h.strip() for h in os.environ.get(name, "").split(",") if h.strip()]
        os.environ[name] = ",".join(dict.fromkeys([*hosts, *LOOPBACK]))


_bypass_proxies_for_loopback()


@pytest.fixture
def sandbox() -> Iterator[SlackSandbox]:
    """A started sandbox on 127.0.0.1, ephemeral port, rate limits on; stopped after the test."""
    with SlackSandbox("127.0.0.1", 0, rate_limits=True) as server:
        yield server
