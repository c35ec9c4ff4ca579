"""`cxslack sandbox serve` as a newcomer meets it: OAuth completes with --auto-approve, and the
admin API is documented where they look (`--help`, the README, `GET /_sandbox/`)."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from cxslack.sandbox import CLIENT_ID, SlackSandbox

from .conftest import Cli, add_integration
from .oauth_browser import loopback_certificate, start
from .sandbox_fixture import register_redirect

ROOT = Path(__file__).resolve().parent.parent


def test_auto_approve_completes_oauth_by_following_the_url(cli: Cli) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "cxslack", "sandbox", "serve", "--auto-approve"],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})  # fmt: skip
    try:
        assert proc.stderr is not None
        banner, exports = "", {}
        for line in proc.stderr:
            banner += line
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
            if line.startswith("Press Ctrl-C"):
                break
        assert "auto-approve" in banner
        add_integration(cli, "Payments")
        flow = start(["integrations", "authorize", "Payments", "--redirect-uri",
                      "https://localhost:0/slack/oauth/callback", "--no-browser"], exports)  # fmt: skip
        register_redirect(flow.url)  # an ephemeral port: registered once known, as a Slack app's admin would
        trust = ssl.create_default_context(cafile=str(loopback_certificate()))
        page = httpx.get(flow.url, follow_redirects=True, timeout=30, verify=trust)  # `curl -sL URL`
        code, _, err = flow.finish()
        assert code == 0, err
        assert "Slack is connected" in page.text
        assert (
            cli.ok("integrations", "show", "payments", "-o", "json").json()["integration"]["status"]
            == "active"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_admin_api_is_listed_and_documented(cli: Cli, sandbox: SlackSandbox) -> None:
    index = httpx.get(f"{sandbox.url}/_sandbox/").json()
    assert index["ok"] and len(index["routes"]) > 20
    assert httpx.get(f"{sandbox.url}/_sandbox/no-such-route").status_code == 404
    help_text = cli.ok("sandbox", "serve", "--help", env={"COLUMNS": "80"}).stdout
    readme = (ROOT / "README.md").read_text()
    for route in index["routes"]:
        name = "/" + route.split()[1].rstrip("/").rsplit("/", 1)[-1]
        assert name in help_text, route
        assert route.split()[1] in readme, route
    assert "--auto-approve" in help_text and "--auto-approve" in readme


def test_auto_approve_is_a_setting_that_survives_reset() -> None:
    with SlackSandbox(auto_approve=True, redirect_urls=["https://localhost:9/cb"]) as sb:
        httpx.post(f"{sb.url}/_sandbox/reset")
        query = {"client_id": CLIENT_ID, "scope": "chat:write", "state": "s",
                 "redirect_uri": "https://localhost:9/cb"}  # fmt: skip
        answer = httpx.get(sb.authorize_url, params=query)
        assert answer.status_code == 302 and "code=" in answer.headers["location"]
        httpx.post(f"{sb.url}/_sandbox/settings", json={"auto_approve": False})
        assert httpx.get(sb.authorize_url, params=query).status_code == 200  # the page, with Allow/Deny
