"""`cxslack app configure|manifest`, and the suite's own secret scanner."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from cxslack.credentials import app_credentials
from cxslack.store import Store

from . import conftest
from .conftest import Cli, add_integration


def test_configure_stores_the_secret_only_in_credentials(cli: Cli, cxslack_home: Path) -> None:
    run = cli.ok(
        "app",
        "configure",
        "--client-id",
        "123.456",
        "--client-secret-stdin",
        "-o",
        "json",
        input="sekrit-value-123\n",
    )
    assert run.json() == {"app": {"client_id": "123.456", "client_secret": "stored"}}
    config = (cxslack_home / "config.toml").read_text()
    assert "sekrit" not in config and "123.456" in config
    creds = cxslack_home / "credentials.toml"
    assert "sekrit-value-123" in creds.read_text()
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert app_credentials(Store()).client_secret == "sekrit-value-123"


def test_environment_wins_over_the_stored_app(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.ok(
        "app", "configure", "--client-id", "stored-id", "--client-secret-stdin", input="sekrit-value-123\n"
    )
    monkeypatch.setenv("CXSLACK_SLACK_CLIENT_ID", "env-id")
    monkeypatch.setenv("CXSLACK_SLACK_CLIENT_SECRET", "env-secret-value")
    creds = app_credentials(Store())
    assert (creds.client_id, creds.client_secret) == ("env-id", "env-secret-value")


def test_configure_without_a_terminal_needs_the_flags(cli: Cli) -> None:
    run = cli("app", "configure")
    assert run.exit_code == 2 and "--client-id" in run.stderr
    warned = cli.ok("app", "configure", "--client-id", "x.y")
    assert "--client-secret-stdin" in warned.stderr
    assert cli("app", "configure", "--client-secret-stdin", input="\n").exit_code == 2
    assert cli("app", "configure", "--redirect-uri", "https://example.com/cb").exit_code == 2


def test_manifest_has_the_scopes_and_events_for_the_features(cli: Cli) -> None:
    doc = json.loads(
        cli.ok(
            "app", "manifest", "--two-way-sync", "--link-previews", "--access-logs", "--format", "json"
        ).stdout
    )
    scopes = doc["oauth_config"]["scopes"]
    assert "channels:history" in scopes["bot"] and "links:write" in scopes["bot"]
    assert scopes["user"] == ["admin"]  # openid belongs to Sign in with Slack, not the v2 install
    assert not {"channels:read", "groups:read"} & set(scopes["bot"])  # cxslack's own: opt-in
    assert doc["oauth_config"]["redirect_urls"] == ["https://localhost:8976/slack/oauth/callback"]
    assert set(doc["settings"]["event_subscriptions"]["bot_events"]) == {
        "message.channels",
        "message.groups",
        "link_shared",
    }
    assert "coralogix.com" in doc["features"]["unfurl_domains"]
    assert doc["settings"]["socket_mode_enabled"] is True
    lookup = json.loads(cli.ok("app", "manifest", "--channel-lookup", "--format", "json").stdout)
    assert lookup["oauth_config"]["scopes"]["bot"][-2:] == ["channels:read", "groups:read"]
    minimal = json.loads(
        cli.ok("app", "manifest", "--format", "json", "--events-url", "https://x.example/slack/events").stdout
    )
    assert "user" not in minimal["oauth_config"]["scopes"]
    assert "event_subscriptions" not in minimal["settings"]


def test_manifest_from_an_integration_and_as_yaml(cli: Cli) -> None:
    add_integration(cli, "Legacy", "--integration-version", "0.0.9")
    text = cli.ok("app", "manifest", "--integration", "legacy").stdout
    assert "oauth_config:" in text and '- "chat:write"' in text
    assert "links:read" not in text


def manifest(cli: Cli, *args: str) -> dict[str, object]:
    return dict(json.loads(cli.ok("app", "manifest", "--format", "json", *args).stdout)["settings"])


def test_manifest_turns_on_interactivity_for_case_buttons(cli: Cli) -> None:
    settings = manifest(cli)  # no request URL: Socket Mode carries the clicks
    assert settings["interactivity"] == {"is_enabled": True} and settings["socket_mode_enabled"] is True
    settings = manifest(cli, "--two-way-sync", "--events-url", "https://cx.example/slack/events")
    assert settings["interactivity"] == {
        "is_enabled": True,
        "request_url": "https://cx.example/slack/interactivity",
    }
    assert settings["socket_mode_enabled"] is False
    settings = manifest(cli, "--interactivity-url", "https://proxy.example/clicks")
    assert settings["interactivity"] == {"is_enabled": True, "request_url": "https://proxy.example/clicks"}
    assert settings["socket_mode_enabled"] is False
    assert "interactivity" not in manifest(cli, "--no-case-actions")
    assert manifest(cli, "--no-case-actions")["socket_mode_enabled"] is False  # nothing to receive
    run = cli("app", "manifest", "--events-url", "https://cx.example/hooks")
    assert run.exit_code == 2 and "--interactivity-url" in run.stderr


def test_earlier_version_integrations_get_no_interactivity(cli: Cli) -> None:
    add_integration(cli, "Legacy", "--integration-version", "0.0.9")
    add_integration(cli, "Current")
    assert "interactivity" not in manifest(cli, "--integration", "legacy")
    assert manifest(cli, "--integration", "current")["interactivity"] == {"is_enabled": True}


def test_the_leak_scanner_catches_tokens_and_test_secrets() -> None:
    before = len(conftest.LEAKS)
    conftest.scan("probe", "masked xoxb-**** is fine", "xoxe.xoxb-**** too")
    assert len(conftest.LEAKS) == before
    conftest.scan("probe", "oops xoxb-" + "123-456-abcdef", "and s3cr3t-value")
    assert len(conftest.LEAKS) == before + 2
    del conftest.LEAKS[before:]
