"""The config store: atomic writes, locking, 0600 secrets, unreadable files left untouched."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cxslack.errors import ConfigError
from cxslack.state.files import atomic_write
from cxslack.store import Store

from .conftest import Cli, add_integration


def test_config_path_honours_cxslack_home(cli: Cli, cxslack_home: Path) -> None:
    doc = cli.ok("config", "path", "-o", "json").json()
    assert doc == {
        "config_dir": str(cxslack_home),
        "config_file": str(cxslack_home / "config.toml"),
        "credentials_file": str(cxslack_home / "credentials.toml"),
        "state_dir": str(cxslack_home / "state"),
    }
    assert str(cxslack_home / "config.toml") in cli.ok("config", "path").stdout


def test_config_path_uses_platformdirs_without_override(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CXSLACK_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    doc = cli.ok("config", "path", "-o", "json").json()
    assert doc["config_file"] == str(tmp_path / "xdg-config" / "cxslack" / "config.toml")
    assert doc["state_dir"] == str(tmp_path / "xdg-state" / "cxslack")


def test_store_files_and_directory_are_private(cli: Cli, cxslack_home: Path) -> None:
    add_integration(cli, "Payments")
    assert stat.S_IMODE(cxslack_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((cxslack_home / "config.toml").stat().st_mode) == 0o600


def test_credentials_are_0600_from_the_first_write(
    cxslack_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temp file that becomes credentials.toml is already 0600 when it is renamed into place."""
    seen: list[int] = []
    real_replace = os.replace

    def spying_replace(src: str, dst: str) -> None:
        seen.append(stat.S_IMODE(os.stat(src).st_mode))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spying_replace)
    store = Store()
    with store.transaction() as docs:
        docs.credentials["app"] = {"client_secret": "s3cr3t-value"}
    assert seen == [0o600]
    assert stat.S_IMODE(store.paths.credentials_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cxslack_home.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o755, 0o1777])
def test_an_existing_home_keeps_its_mode_and_a_shared_one_is_warned_about(
    cli: Cli, cxslack_home: Path, mode: int
) -> None:
    """cxslack tightens only directories it creates: CXSLACK_HOME=/tmp must not turn /tmp 0700."""
    cxslack_home.mkdir()
    os.chmod(cxslack_home, mode)
    run = cli.ok("integrations", "add", "--name", "Shared", "--consent-us-data-transfer")
    assert stat.S_IMODE(cxslack_home.stat().st_mode) == mode
    assert stat.S_IMODE((cxslack_home / "state").stat().st_mode) == 0o700  # created here: private
    shared = "writable by every user" in run.stderr
    assert shared == bool(mode & 0o002), run.stderr
    if shared:
        assert str(cxslack_home) in run.stderr and "Warning:" in run.stderr
    checks = cli("doctor", "--offline", "--symptom", "local", "-o", "json").json()["checks"]
    home_check = next(c for c in checks if c["id"] == "local.config_dir_mode")
    assert home_check["status"] == "warn"  # 0755: others can read it; 1777: others can write to it
    assert ("writable by every user" in home_check["message"]) == shared
    assert stat.S_IMODE(cxslack_home.stat().st_mode) == mode  # doctor only looks


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    target.write_bytes(b"schema_version = 1\n")

    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"schema_version = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


def test_transaction_that_raises_writes_nothing(cxslack_home: Path) -> None:
    store = Store()
    with pytest.raises(RuntimeError), store.transaction() as docs:
        docs.config["integrations"] = {}
        raise RuntimeError("crash in the middle")
    assert not store.paths.config_file.exists()


CORRUPTIONS = {
    "truncated": (b'schema_version = 1\n\n[integrations.abc]\nname = "Pay', "line 4"),
    "bad toml": (b"schema_version = 1\n[integrations\n", "line 2"),
    "wrong type": (
        b'schema_version = 1\n\n[integrations.abc]\nname = 42\nversion = "0.1.0"\nfunctionality = ["notifications"]\n',
        "line 4",
    ),
    "unknown enum": (
        b'schema_version = 1\n\n[integrations.abc]\nname = "x"\nfunctionality = ["pigeons"]\n',
        "line 5",
    ),
    "future schema": (b"schema_version = 99\n", "schema_version 99"),
    "schema not int": (b'schema_version = "one"\n', "schema_version must be an integer"),
    "not utf-8": (b"schema_version = 1\n# caf\xe9\n", "line 2"),
    "integrations not a table": (b"schema_version = 1\nintegrations = 3\n", "integrations must be a table"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
@pytest.mark.parametrize(
    "command",
    [
        ["integrations", "list"],
        ["integrations", "show", "x"],
        ["integrations", "add", "--name", "New", "--consent-us-data-transfer"],
        ["integrations", "remove", "x", "--yes"],
    ],
)
def test_unreadable_config_is_reported_and_left_untouched(
    cli: Cli, cxslack_home: Path, case: str, command: list[str]
) -> None:
    raw, where = CORRUPTIONS[case]
    cxslack_home.mkdir(mode=0o700)
    config = cxslack_home / "config.toml"
    config.write_bytes(raw)
    run = cli(*command)
    assert run.exit_code == 1, run.stderr
    assert str(config) in run.stderr
    assert where in run.stderr
    assert "Traceback" not in run.stderr
    assert config.read_bytes() == raw


def test_unreadable_config_in_json_mode_prints_one_error_document(cli: Cli, cxslack_home: Path) -> None:
    cxslack_home.mkdir(mode=0o700)
    (cxslack_home / "config.toml").write_bytes(b"schema_version = 2\n")
    run = cli("integrations", "list", "-o", "json")
    assert run.exit_code == 1
    assert run.json()["error"]["code"] == "config_newer_schema"


def test_store_error_names_path_for_newer_schema(cxslack_home: Path) -> None:
    cxslack_home.mkdir(mode=0o700)
    (cxslack_home / "config.toml").write_text("schema_version = 7\n")
    with pytest.raises(ConfigError) as info:
        Store().read_config()
    assert "newer" in info.value.message


WORKER = """
import subprocess, sys
for i in range(25):
    p = subprocess.run([sys.executable, "-m", "cxslack", "integrations", "add", "--name", f"w{sys.argv[1]}-{i}",
                        "--consent-us-data-transfer", "-o", "json"], capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stderr, file=sys.stderr)
        sys.exit(1)
"""


def test_parallel_processes_lose_no_update(cli: Cli) -> None:
    """8 processes each adding 25 integrations through the CLI leave exactly 200."""
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(n)], stderr=subprocess.PIPE) for n in range(8)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()
    listed = cli.ok("integrations", "list", "-o", "json").json()["integrations"]
    assert len(listed) == 200
    assert len({i["name"] for i in listed}) == 200


def test_parse_cache_serves_unchanged_files_and_never_hides_edits(cli: Cli, cxslack_home: Path) -> None:
    add_integration(cli, "Cached")
    cache = cxslack_home / "state" / "cache" / "config.json"
    assert cache.exists()
    assert stat.S_IMODE((cxslack_home / "state").stat().st_mode) == 0o700
    # A hand edit of config.toml is seen at once, even though the cache still holds the old parse.
    config = cxslack_home / "config.toml"
    config.write_text(config.read_text().replace('name = "Cached"', 'name = "Edited by hand"'))
    assert cli.ok("integrations", "list", "-o", "json").json()["integrations"][0]["name"] == "Edited by hand"
    # A corrupt cache is ignored, never trusted.
    cache.write_text("{not json")
    assert cli.ok("integrations", "list", "-o", "json").json()["integrations"][0]["name"] == "Edited by hand"


def test_json_listing_imports_nothing_slack_http_or_rich(cli: Cli) -> None:
    add_integration(cli, "Lean")
    probe = (
        "import sys\n"
        "sys.argv = ['cxslack', 'integrations', 'list', '-o', 'json']\n"
        "from cxslack.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'slack_sdk', 'httpx', 'rich', 'jinja2', 'cryptography', 'pydantic'})\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ.copy()
    )
    assert "HEAVY []" in proc.stderr, proc.stderr
