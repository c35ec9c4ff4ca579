"""The `sandbox` pytest fixture: a running Slack sandbox per test, over real loopback sockets.

Import it where tests need it (`from tests.sandbox_fixture import sandbox`). A test that needs a
token without the browser flow calls `sandbox.issue_token(scopes=[…], user_scopes=[…])`, the
admin shortcut also served as `POST /_sandbox/tokens`.

The sandbox's Slack app holds installs to its registered Redirect URLs, exactly as Slack does
(src/cxslack/sandbox/redirects.py). A test whose callback listens on an ephemeral port learns the
URL only once cxslack has bound it, so it registers it then — as the app's admin would have done
beforehand — with `register_redirect(authorize_url)` (tests/oauth_browser.py's `press` does it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from cxslack.sandbox import SlackSandbox
from cxslack.sandbox.wire import ADMIN_PREFIX

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


def register_redirect(authorize_url: str) -> str:
    """Register the redirect_uri an authorize URL carries as a Redirect URL of the sandbox's app
    (`POST /_sandbox/redirect-urls {"add": …}` on the sandbox the URL points at); returns it."""
    url = httpx.URL(authorize_url)
    redirect_uri = url.params["redirect_uri"]
    admin = str(url.copy_with(path=ADMIN_PREFIX + "redirect-urls", query=None))
    httpx.post(admin, json={"add": redirect_uri}, timeout=10).raise_for_status()
    return redirect_uri
