"""Installing the Slack app end to end: real CLI process, real loopback callback, the sandbox as Slack."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from cxslack.model import Status
from cxslack.oauth.flow import fresh_tokens
from cxslack.registry import Registry
from cxslack.sandbox import CLIENT_SECRET, SlackSandbox
from cxslack.store import Store

from .conftest import Cli, add_integration
from .oauth_browser import follow_callback, press, sandbox_env, start

REDIRECT = "https://localhost:0/slack/oauth/callback"  # an ordinary (confidential) app: https only
PKCE_REDIRECT = "http://127.0.0.1:0/slack/oauth/callback"
TOKEN = re.compile(r"xox[a-z](?:\.xox[a-z])?-(?!\*\*\*\*)[A-Za-z0-9-]+")


def no_secrets(*texts: str) -> None:
    for text in texts:
        assert not TOKEN.search(text), text
        assert CLIENT_SECRET not in text


def show(cli: Cli, name: str) -> dict:
    return cli.ok("integrations", "show", name, "-o", "json").json()["integration"]


def authorize(
    sandbox: SlackSandbox, *extra: str, decision: str = "allow", name: str = "Payments"
) -> tuple[int, str, str, httpx.Response]:
    flow = start(
        [
            "integrations",
            "authorize",
            name,
            "--redirect-uri",
            REDIRECT,
            "--no-browser",
            *extra,
            "-o",
            "json",
        ],
        sandbox_env(sandbox),
    )
    page = follow_callback(press(flow.url, decision))
    code, out, err = flow.finish()
    return code, out, err, page


def test_allow_installs_the_app_and_makes_the_integration_active(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments", "--two-way-sync", "--access-logs")
    code, out, err, page = authorize(sandbox)
    assert code == 0, err
    assert "You can close this tab" in page.text
    integration = show(cli, "payments")
    assert integration["status"] == "active"
    assert integration["workspace"] == {"team_id": "T0SANDBOX", "team_name": "Sandbox Workspace"}
    assert set(integration["requested_scopes"]) <= set(integration["granted_scopes"])
    assert integration["bot_user_id"]
    secrets = Store().read_credentials()["integrations"][integration["id"]]
    assert secrets["bot"]["access_token"].startswith("xoxb-")
    assert secrets["user"]["access_token"].startswith("xoxp-")  # admin is a user scope
    assert "Active" in err
    no_secrets(out, err, page.text)


def test_authorize_url_carries_bot_and_user_scopes_and_state(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments", "--access-logs")
    flow = start(
        ["integrations", "authorize", "Payments", "--redirect-uri", REDIRECT, "--no-browser"],
        sandbox_env(sandbox),
    )
    query = httpx.URL(flow.url).params
    assert query["scope"].split(",")[:2] == ["chat:write", "chat:write.customize"]
    # openid is Sign in with Slack's (OpenID Connect) scope: the v2 install asks for admin alone
    assert query["user_scope"] == "admin"
    assert len(query["state"]) >= 22  # ≥ 128 bits
    follow_callback(press(flow.url))
    assert flow.finish()[0] == 0


def test_https_listener_with_the_generated_certificate(
    cli: Cli, sandbox: SlackSandbox, cxslack_home: Path
) -> None:
    add_integration(cli, "Payments")
    flow = start(
        [
            "integrations",
            "authorize",
            "Payments",
            "--redirect-uri",
            "https://localhost:0/slack/oauth/callback",
            "--no-browser",
        ],
        sandbox_env(sandbox),
    )
    cert = cxslack_home / "state" / "tls" / "localhost.pem"
    page = follow_callback(press(flow.url), cert=cert)
    code, _, err = flow.finish()
    assert code == 0, err
    assert "You can close this tab" in page.text
    assert show(cli, "payments")["status"] == "active"


def test_deny_exits_4_and_stays_pending(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    code, out, err, page = authorize(sandbox, decision="deny")
    assert code == 4
    assert "declined" in err
    assert '"authorization_declined"' in out
    assert show(cli, "payments")["status"] == "pending"
    assert "declined" in page.text.lower()


def test_forged_state_is_refused_and_stores_no_token(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    flow = start(
        ["integrations", "authorize", "Payments", "--redirect-uri", REDIRECT, "--no-browser"],
        sandbox_env(sandbox),
    )
    location = press(flow.url)
    forged = re.sub(r"state=[^&]+", "state=forged-by-an-attacker", location)
    page = follow_callback(forged)
    assert page.status_code == 400
    code, _, err = flow.finish()
    assert code == 4
    assert "state" in err.lower()
    assert show(cli, "payments")["status"] == "pending"
    assert "integrations" not in Store().read_credentials()


def test_replaying_the_callback_is_refused(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    flow = start(
        ["integrations", "authorize", "Payments", "--redirect-uri", REDIRECT, "--no-browser"],
        sandbox_env(sandbox),
    )
    location = press(flow.url)
    assert follow_callback(location).status_code == 200
    assert flow.finish()[0] == 0
    with pytest.raises(httpx.ConnectError):
        follow_callback(location)  # the one-shot listener is gone


def test_timeout_exits_4_with_a_hint(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    flow = start(
        [
            "integrations",
            "authorize",
            "Payments",
            "--redirect-uri",
            REDIRECT,
            "--no-browser",
            "--timeout",
            "0.5",
        ],
        sandbox_env(sandbox),
    )
    code, _, err = flow.finish()
    assert code == 4
    assert "--timeout" in err or "--paste" in err
    assert show(cli, "payments")["status"] == "pending"


@pytest.mark.parametrize(
    "uri",
    [
        "https://example.com/cb",
        "http://localhost.evil.com:8976/cb",
        "http://10.0.0.1:8976/cb",
        "https://0.0.0.0:8976/cb",
        "ftp://127.0.0.1:1/x",
    ],
)
def test_non_loopback_redirect_is_a_usage_error(cli: Cli, sandbox: SlackSandbox, uri: str) -> None:
    add_integration(cli, "Payments")
    run = cli(
        "integrations",
        "authorize",
        "Payments",
        "--redirect-uri",
        uri,
        "--no-browser",
        "-o",
        "json",
        env=sandbox_env(sandbox),
    )
    assert run.exit_code == 2
    assert run.json()["error"]["code"] == "invalid_redirect_uri"


def test_plain_http_redirect_without_pkce_is_refused_before_anything(cli: Cli, sandbox: SlackSandbox) -> None:
    # Slack registers a plain http Redirect URL only for PKCE apps: the browser could never come back.
    add_integration(cli, "Payments")
    uri = "http://127.0.0.1:8976/cb"
    run = cli(
        "integrations", "authorize", "Payments", "--redirect-uri", uri, "--no-browser", "-o", "json",
        env=sandbox_env(sandbox),
    )  # fmt: skip
    assert run.exit_code == 2
    error = run.json()["error"]
    assert error["code"] == "invalid_redirect_uri" and "PKCE" in error["message"]
    assert "--pkce" in error["hint"] and "oauth/v2/authorize" not in run.stderr
    configured = cli(
        "app", "configure", "--client-id", "1.2", "--redirect-uri", uri, env=sandbox_env(sandbox)
    )
    assert configured.exit_code == 2 and "PKCE" in configured.stderr


def test_paste_mode_for_a_browser_on_another_machine(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    flow = start(
        [
            "integrations",
            "authorize",
            "Payments",
            "--paste",  # the default redirect URI, which the sandbox app has registered, as Slack apps set up for cxslack do
        ],
        sandbox_env(sandbox),
        stdin=subprocess.PIPE,
    )
    location = press(flow.url)  # the browser lands on a loopback URL that does not load; copy it
    assert flow.proc.stdin is not None
    flow.proc.stdin.write(location + "\n")
    flow.proc.stdin.flush()
    code, _, err = flow.finish()
    assert code == 0, err
    assert show(cli, "payments")["status"] == "active"


def test_declined_scopes_warn_what_stops_working(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    httpx.post(
        f"{sandbox.url}/_sandbox/settings", json={"decline_scopes": ["links:read", "links:write"]}
    ).raise_for_status()
    code, _, err, _ = authorize(sandbox)
    assert code == 0
    assert "links:read, links:write were declined" in err
    assert "Case URLs will not preview" in err
    assert "links:write" not in show(cli, "payments")["granted_scopes"]


def test_pkce_public_client_needs_no_secret(cli: Cli, sandbox: SlackSandbox) -> None:
    """PKCE installs an access-logs-only integration: user scopes only, which a localhost
    redirect may request."""
    add_integration(cli, "Logs", "--no-notifications", "--access-logs")
    httpx.post(f"{sandbox.url}/_sandbox/settings", json={"pkce_enabled": True}).raise_for_status()
    env = {**sandbox_env(sandbox), "CXSLACK_SLACK_CLIENT_SECRET": ""}
    flow = start(  # a PKCE app may register a plain-http loopback redirect
        ["integrations", "authorize", "Logs", "--redirect-uri", PKCE_REDIRECT, "--no-browser", "--pkce"], env
    )
    query = httpx.URL(flow.url).params
    assert (
        query["code_challenge_method"] == "S256" and "scope" not in query and query["user_scope"] == "admin"
    )
    follow_callback(press(flow.url))
    code, _, err = flow.finish()
    assert code == 0, err
    integration = show(cli, "logs")
    assert (integration["status"], integration["granted_scopes"], integration["bot_user_id"]) == (
        "active",
        ["admin"],
        None,
    )
    secrets = Store().read_credentials()["integrations"][integration["id"]]
    assert "bot" not in secrets and secrets["user"]["access_token"].startswith("xoxp-")
    report = cli("doctor", "Logs", "--symptom", "failing", "-o", "json", env=sandbox_env(sandbox)).json()
    assert [c["status"] for c in report["checks"] if c["id"] == "failing.token"] == ["ok"]


def test_pkce_with_bot_scopes_is_a_usage_error_before_any_browser(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    run = cli("integrations", "authorize", "Payments", "--pkce", "--no-browser", env=sandbox_env(sandbox))
    assert run.exit_code == 2
    added = cli("integrations", "add", "--name", "Other", "--consent-us-data-transfer", "--authorize", "--pkce",
                "--no-browser", env=sandbox_env(sandbox))  # fmt: skip
    assert added.exit_code == 2 and "bot scopes" in added.stderr
    assert "Other" not in cli.ok("integrations", "list").stdout  # nothing was created
    assert "PKCE" in run.stderr and "bot scopes" in run.stderr and "chat:write" in run.stderr
    assert "https://" not in run.stderr  # no authorize URL was offered
    cli.ok("app", "configure", "--client-id", "123.456", "--pkce")
    configured = cli("integrations", "authorize", "Payments", "--no-browser", env=sandbox_env(sandbox))
    assert configured.exit_code == 2 and "cxslack app configure --pkce" in configured.stderr
    assert show(cli, "payments")["status"] == "pending"


def test_pkce_against_an_app_without_pkce_is_refused(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Logs", "--no-notifications", "--access-logs")
    code, _, err, _ = authorize(sandbox, "--pkce", name="Logs")
    assert code == 4
    assert "PKCE" in err


def test_wrong_client_secret_exits_4_with_a_hint(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    env = {**sandbox_env(sandbox), "CXSLACK_SLACK_CLIENT_SECRET": "not-the-secret"}
    flow = start(["integrations", "authorize", "Payments", "--redirect-uri", REDIRECT, "--no-browser"], env)
    follow_callback(press(flow.url))
    code, _, err = flow.finish()
    assert code == 4
    assert "cxslack app configure" in err
    assert "not-the-secret" not in err


def test_port_in_use_exits_1_naming_port_and_flag(cli: Cli, sandbox: SlackSandbox) -> None:
    import socket

    add_integration(cli, "Payments")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = cli(
            "integrations", "authorize", "Payments", "--redirect-uri", f"https://127.0.0.1:{port}/cb", "--no-browser",
            env=sandbox_env(sandbox),
        )  # fmt: skip
    assert run.exit_code == 1
    assert str(port) in run.stderr and "--redirect-uri" in run.stderr


def test_missing_app_credentials_say_what_to_run(cli: Cli) -> None:
    add_integration(cli, "Payments")
    run = cli("integrations", "authorize", "Payments", "--no-browser")
    assert run.exit_code == 2
    assert "cxslack app configure" in run.stderr


def test_add_with_authorize_installs_in_one_go(cli: Cli, sandbox: SlackSandbox) -> None:
    flow = start(
        [
            "integrations",
            "add",
            "--name",
            "OneGo",
            "--consent-us-data-transfer",
            "--authorize",
            "--redirect-uri",
            REDIRECT,
            "--no-browser",
            "-o",
            "json",
        ],
        sandbox_env(sandbox),
    )
    follow_callback(press(flow.url))
    code, out, err = flow.finish()
    assert code == 0, err
    assert '"status": "active"' in out
    no_secrets(out, err)


def test_reauthorizing_replaces_tokens_only_after_success(cli: Cli, sandbox: SlackSandbox) -> None:
    add_integration(cli, "Payments")
    assert authorize(sandbox)[0] == 0
    before = Store().read_credentials()
    assert authorize(sandbox, decision="deny")[0] == 4
    assert Store().read_credentials() == before
    assert show(cli, "payments")["status"] == "active"
    assert authorize(sandbox)[0] == 0
    assert Store().read_credentials() != before


def test_token_rotation_refreshes_before_expiry_and_persists(
    cli: Cli, sandbox: SlackSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_integration(cli, "Payments")
    httpx.post(
        f"{sandbox.url}/_sandbox/settings", json={"token_rotation": True, "expires_in": 300}
    ).raise_for_status()
    assert authorize(sandbox)[0] == 0
    for key, value in sandbox_env(sandbox).items():
        monkeypatch.setenv(key, value)
    registry = Registry()
    integration = registry.view().find("payments")
    old = Store().read_credentials()["integrations"][integration.id]["bot"]
    assert old["access_token"].startswith("xoxe.xoxb-") and old["refresh_token"]
    assert old["expires_at"] - time.time() < 600  # within the 10-minute margin: refresh due
    fresh = fresh_tokens(registry, integration)
    assert fresh.bot is not None and fresh.bot.access_token != old["access_token"]
    stored = Store().read_credentials()["integrations"][integration.id]["bot"]
    assert stored["access_token"] == fresh.bot.access_token
    assert stored["refresh_token"] != old["refresh_token"]
    assert registry.view().find("payments").status is Status.ACTIVE
