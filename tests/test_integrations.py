"""`cxslack integrations …` as a user and a CI script see it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cxslack.cli import render

from .conftest import Cli, add_integration, run_process

INTEGRATION_KEYS = {
    "id", "name", "version", "status", "status_reason", "functionality", "two_way_sync", "link_previews",
    "connectors", "workspace", "requested_scopes", "granted_scopes", "created_at", "updated_at",
}  # fmt: skip
ALWAYS = ["chat:write", "chat:write.customize", "chat:write.public", "users:read", "users:read.email"]


def test_add_creates_a_pending_v0_1_0_integration(cli: Cli) -> None:
    run = cli.ok("integrations", "add", "--name", "Payments", "--consent-us-data-transfer", "-o", "json")
    integration = run.json()["integration"]
    assert integration.keys() >= INTEGRATION_KEYS
    assert integration["version"] == "0.1.0"
    assert integration["status"] == "pending"
    assert integration["functionality"] == ["notifications"]
    assert integration["two_way_sync"] is False
    assert integration["link_previews"] is True
    assert integration["workspace"] is None
    assert integration["requested_scopes"] == [*ALWAYS, "links:read", "links:write"]
    assert integration["created_at"].endswith("Z")
    assert "cxslack integrations authorize Payments" in run.stderr


def test_requested_scopes_follow_the_features(cli: Cli) -> None:
    full = add_integration(cli, "Full", "--two-way-sync", "--access-logs")
    assert full["requested_scopes"] == [
        *ALWAYS,
        "channels:join",
        "channels:history",
        "groups:history",
        "links:read",
        "links:write",
        "admin",  # openid is Sign in with Slack's scope, not the v2 install's (scopes.py)
    ]
    logs_only = add_integration(cli, "Logs", "--no-notifications", "--access-logs")
    assert logs_only["functionality"] == ["access_logs"]
    assert logs_only["link_previews"] is False
    assert logs_only["requested_scopes"] == ["admin"]  # the "always" scopes come with notifications


def test_channel_lookup_is_opt_in_and_adds_cxslacks_own_scopes(cli: Cli) -> None:
    plain = add_integration(cli, "Plain", "--two-way-sync")
    assert plain["channel_lookup"] is False
    assert not {"channels:read", "groups:read"} & set(plain["requested_scopes"])
    lookup = add_integration(cli, "Lookup", "--channel-lookup")
    assert lookup["channel_lookup"] is True and lookup["requested_scopes"][-2:] == [
        "channels:read",
        "groups:read",
    ]
    edited = cli.ok("integrations", "edit", "plain", "--channel-lookup", "-o", "json").json()["integration"]
    assert {"channels:read", "groups:read"} <= set(edited["requested_scopes"])
    off = cli.ok("integrations", "edit", "plain", "--no-channel-lookup", "-o", "json").json()["integration"]
    assert off["channel_lookup"] is False
    run = cli("integrations", "add", "--name", "Logs", "--no-notifications", "--access-logs", "--channel-lookup",
              "--consent-us-data-transfer")  # fmt: skip
    assert run.exit_code == 2 and "needs Send notifications" in run.stderr


def test_earlier_version_can_be_registered_without_cases_features(cli: Cli) -> None:
    old = add_integration(cli, "Legacy", "--integration-version", "0.0.9")
    assert old["version"] == "0.0.9"
    assert old["link_previews"] is False
    assert old["requested_scopes"] == ALWAYS


def test_list_shows_the_product_columns(cli: Cli) -> None:
    add_integration(cli, "beta")
    add_integration(cli, "Alpha", "--integration-version", "0.0.9", "--access-logs")
    run = cli.ok("integrations", "list")
    header, *rows = run.stdout.strip().splitlines()
    assert header.split("\t") == [
        "INTEGRATION NAME", "STATUS", "INTEGRATION VERSION", "APPLICATION FUNCTIONALITY", "CONNECTORS",
        "LAST UPDATED", "ACCESS LOGS", "ID",
    ]  # fmt: skip
    first = rows[0].split("\t")
    assert first[:5] == ["Alpha", "Pending", "0.0.9", "Send notifications, Collect access logs", "0"]
    assert first[5].endswith("Z")  # RFC 3339 when piped
    assert first[6] == "never"  # access logs enabled, never collected
    assert rows[1].split("\t")[6] == "-"  # not enabled
    assert rows[1].startswith("beta\t")


def test_list_json_and_empty_list(cli: Cli) -> None:
    assert cli.ok("integrations", "list", "-o", "json").json() == {"integrations": []}
    empty = cli.ok("integrations", "list")
    assert empty.stdout == ""
    assert "integrations add" in empty.stderr
    add_integration(cli, "One")
    assert [i["name"] for i in cli.ok("integrations", "list", "-o", "json").json()["integrations"]] == ["One"]


def test_output_env_var_selects_json(cli: Cli) -> None:
    add_integration(cli, "One")
    run = cli.ok("integrations", "list", env={"CXSLACK_OUTPUT": "json"})
    assert run.json()["integrations"][0]["name"] == "One"


def test_show_by_name_any_case_and_by_id(cli: Cli) -> None:
    created = add_integration(cli, "Payments")
    by_name = cli.ok("integrations", "show", "pAyMeNtS", "-o", "json").json()["integration"]
    by_id = cli.ok("integrations", "show", created["id"], "-o", "json").json()["integration"]
    assert by_name == by_id == created
    text = cli.ok("integrations", "show", "payments").stdout
    assert "Pending" in text and "links:read" in text


def test_edit_changes_features_and_name(cli: Cli) -> None:
    add_integration(cli, "Payments")
    edited = cli.ok(
        "integrations",
        "edit",
        "payments",
        "--name",
        "Payments EU",
        "--two-way-sync",
        "--access-logs",
        "-o",
        "json",
    ).json()["integration"]
    assert edited["name"] == "Payments EU"
    assert edited["two_way_sync"] is True
    assert edited["functionality"] == ["notifications", "access_logs"]
    assert "channels:history" in edited["requested_scopes"]
    assert edited["updated_at"] >= edited["created_at"]


def test_turning_notifications_off_turns_their_settings_off(cli: Cli) -> None:
    add_integration(cli, "Both", "--two-way-sync", "--access-logs")
    edited = cli.ok("integrations", "edit", "both", "--no-notifications", "-o", "json").json()["integration"]
    assert edited["functionality"] == ["access_logs"]
    assert edited["two_way_sync"] is False and edited["link_previews"] is False


def test_upgrading_the_version_makes_it_pending(cli: Cli) -> None:
    add_integration(cli, "Legacy", "--integration-version", "0.0.9")
    run = cli.ok(
        "integrations", "edit", "legacy", "--integration-version", "0.1.0", "--two-way-sync", "-o", "json"
    )
    edited = run.json()["integration"]
    assert edited["version"] == "0.1.0" and edited["two_way_sync"] is True
    assert edited["status"] == "pending"
    assert "authorize" in run.stderr


def test_remove_needs_yes_when_not_interactive(cli: Cli) -> None:
    add_integration(cli, "Payments")
    refused = cli("integrations", "remove", "payments")
    assert refused.exit_code == 2
    assert "--yes" in refused.stderr
    removed = cli.ok("integrations", "remove", "payments", "--yes", "-o", "json").json()
    assert removed["removed"]["connectors"] == []
    assert cli.ok("integrations", "list", "-o", "json").json() == {"integrations": []}


def test_remove_cascades_to_connectors_and_credentials(cli: Cli, cxslack_home: Path) -> None:
    from cxslack.store import Store

    keep = add_integration(cli, "Keep")
    gone = add_integration(cli, "Gone")
    with Store().transaction() as docs:
        docs.config["connectors"] = {
            "c1": {"name": "Payments on-call", "integration": gone["id"]},
            "c2": {"name": "DB", "integration": keep["id"]},
        }
        docs.credentials["integrations"] = {gone["id"]: {"bot_token": "xoxb-" + "1-2-abcdefabcdef"}}
    assert cli.ok("integrations", "show", "gone", "-o", "json").json()["integration"]["connectors"] == 1
    run = cli.ok("integrations", "remove", "gone", "--yes")
    assert "Payments on-call" in run.stderr
    assert "stop delivering" in run.stderr
    config = Store().read_config()
    assert list(config["connectors"]) == ["c2"]
    assert gone["id"] not in Store().read_credentials().get("integrations", {})


def test_prompts_on_a_terminal(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "is_interactive", lambda: True)
    monkeypatch.setattr("cxslack.cli.common.is_interactive", lambda: True)
    monkeypatch.setattr("cxslack.cli.integrations.is_interactive", lambda: True)
    run = cli.ok("integrations", "add", "--no-authorize", "-o", "json", input="Prompted\ny\n")
    # CliRunner echoes what was typed at the prompts onto stdout; the JSON document follows it.
    assert json.loads(run.stdout[run.stdout.index("{") :])["integration"]["name"] == "Prompted"
    declined = cli("integrations", "add", "--name", "NoConsent", "--no-authorize", input="n\n")
    assert declined.exit_code == 2
    assert "consent" in declined.stderr.lower()
    assert cli("integrations", "remove", "prompted", input="n\n").exit_code == 1
    cli.ok("integrations", "remove", "prompted", input="y\n")


LONG = "x" * 101
INVALID_INPUTS = [
    (["integrations", "add", "--name", "", "--consent-us-data-transfer"], 2, "invalid_name"),
    (["integrations", "add", "--name", "   ", "--consent-us-data-transfer"], 2, "invalid_name"),
    (["integrations", "add", "--name", LONG, "--consent-us-data-transfer"], 2, "invalid_name"),
    (["integrations", "add", "--name", "bell\x07", "--consent-us-data-transfer"], 2, "invalid_name"),
    (["integrations", "add", "--name", "line\nbreak", "--consent-us-data-transfer"], 2, "invalid_name"),
    (["integrations", "add", "--name", "tab\tname", "--consent-us-data-transfer"], 2, "invalid_name"),
    (["integrations", "add", "--name", "esc\x1b[31m", "--consent-us-data-transfer"], 2, "invalid_name"),
    (["integrations", "add", "--name", "zero\u200bwidth", "--consent-us-data-transfer"], 2, "invalid_name"),
    (["integrations", "add", "--name", "bidi\u202e", "--consent-us-data-transfer"], 2, "invalid_name"),
    (["integrations", "add", "--name", "bad\udcffbytes", "--consent-us-data-transfer"], 2, "invalid_name"),
    (
        [
            "integrations",
            "add",
            "--name",
            "12345678-1234-1234-1234-123456789abc",
            "--consent-us-data-transfer",
        ],
        2,
        "invalid_name",
    ),
    (["integrations", "add", "--name", "EXISTING", "--consent-us-data-transfer"], 2, "duplicate_name"),
    (["integrations", "add", "--name", "existing", "--consent-us-data-transfer"], 2, "duplicate_name"),
    (["integrations", "add", "--name", " Existing ", "--consent-us-data-transfer"], 2, "duplicate_name"),
    (["integrations", "add", "--name", "New"], 2, "consent_required"),
    (["integrations", "add", "--consent-us-data-transfer"], 2, "missing_value"),
    (
        ["integrations", "add", "--name", "New", "--no-notifications", "--consent-us-data-transfer"],
        2,
        "no_functionality",
    ),
    (
        [
            "integrations",
            "add",
            "--name",
            "New",
            "--integration-version",
            "abc",
            "--consent-us-data-transfer",
        ],
        2,
        "invalid_version",
    ),
    (
        [
            "integrations",
            "add",
            "--name",
            "New",
            "--integration-version",
            "1.0",
            "--consent-us-data-transfer",
        ],
        2,
        "invalid_version",
    ),
    (
        [
            "integrations",
            "add",
            "--name",
            "New",
            "--integration-version",
            "9.9.9",
            "--consent-us-data-transfer",
        ],
        2,
        "invalid_version",
    ),
    (
        [
            "integrations",
            "add",
            "--name",
            "New",
            "--integration-version",
            "0.1.0-beta",
            "--consent-us-data-transfer",
        ],
        2,
        "invalid_version",
    ),
    (
        ["integrations", "add", "--name", "New", "--integration-version", "", "--consent-us-data-transfer"],
        2,
        "invalid_version",
    ),
    (
        [
            "integrations",
            "add",
            "--name",
            "New",
            "--integration-version",
            "0.0.9",
            "--two-way-sync",
            "--consent-us-data-transfer",
        ],
        2,
        "feature_needs_v0_1_0",
    ),
    (
        [
            "integrations",
            "add",
            "--name",
            "New",
            "--integration-version",
            "0.0.9",
            "--link-previews",
            "--consent-us-data-transfer",
        ],
        2,
        "feature_needs_v0_1_0",
    ),
    (
        [
            "integrations",
            "add",
            "--name",
            "New",
            "--no-notifications",
            "--access-logs",
            "--two-way-sync",
            "--consent-us-data-transfer",
        ],
        2,
        "feature_needs_notifications",
    ),
    (
        [
            "integrations",
            "add",
            "--name",
            "New",
            "--no-notifications",
            "--access-logs",
            "--link-previews",
            "--consent-us-data-transfer",
        ],
        2,
        "feature_needs_notifications",
    ),
    (
        ["integrations", "add", "--name", "New", "--bogus-flag", "--consent-us-data-transfer"],
        2,
        "usage_error",
    ),
    (["integrations", "add", "--name", "New", "-o", "yaml", "--consent-us-data-transfer"], 2, "usage_error"),
    (["integrations", "show", "unknown"], 3, "integration_not_found"),
    (["integrations", "show", "00000000-0000-0000-0000-000000000000"], 3, "integration_not_found"),
    (["integrations", "edit", "unknown", "--two-way-sync"], 3, "integration_not_found"),
    (["integrations", "remove", "unknown", "--yes"], 3, "integration_not_found"),
    (["integrations", "edit", "existing"], 2, "nothing_to_change"),
    (["integrations", "edit", "existing", "--name", ""], 2, "invalid_name"),
    (["integrations", "edit", "existing", "--name", "OTHER"], 2, "duplicate_name"),
    (["integrations", "edit", "legacy", "--two-way-sync"], 2, "feature_needs_v0_1_0"),
    (["integrations", "edit", "existing", "--integration-version", "0.0.1"], 2, "version_downgrade"),
    (["integrations", "edit", "existing", "--no-notifications"], 2, "no_functionality"),
    (["integrations", "remove", "existing"], 2, "confirmation_required"),
    (["integrations", "show"], 2, "usage_error"),
    (["integrations", "frobnicate"], 2, "usage_error"),
]


@pytest.mark.parametrize(
    ("args", "code", "error"), INVALID_INPUTS, ids=[f"{i:02d}" for i in range(len(INVALID_INPUTS))]
)
def test_invalid_input_is_refused_and_changes_nothing(
    cli: Cli, cxslack_home: Path, args: list[str], code: int, error: str
) -> None:
    add_integration(cli, "Existing")
    add_integration(cli, "Other")
    add_integration(cli, "Legacy", "--integration-version", "0.0.9")
    before = (cxslack_home / "config.toml").read_bytes()
    run = cli(*args, "-o", "json") if "-o" not in args else cli(*args)
    assert run.exit_code == code, run.stderr
    assert "Traceback" not in run.stderr
    if "-o" not in args or args[args.index("-o") + 1] == "json":
        assert run.json()["error"]["code"] == error
    first_line = run.stderr.strip().splitlines()[0]
    assert first_line.startswith("Error: ") and len(first_line) < 300
    assert (cxslack_home / "config.toml").read_bytes() == before


def test_non_utf8_argument_bytes_from_a_real_process() -> None:
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cxslack",
            "integrations",
            "add",
            "--name",
            b"caf\xe9",
            "--consent-us-data-transfer",
        ],
        capture_output=True,
        env=os.environ.copy(),
    )
    assert proc.returncode == 2
    assert b"Traceback" not in proc.stderr


def test_python_dash_m_and_version() -> None:
    run = run_process("--version")
    assert run.exit_code == 0
    assert run.stdout.strip() == "cxslack 0.1.0"
