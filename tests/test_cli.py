"""Global CLI behaviour: version, help, exit codes, JSON errors, colour, completions."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cxslack.cli.completion import Shell, script_for

from .conftest import Cli, add_integration, run_process

ROOT = Path(__file__).resolve().parent.parent


def test_version(cli: Cli) -> None:
    assert cli.ok("--version").stdout == "cxslack 0.1.0\n"


def test_help_lists_the_command_groups(cli: Cli) -> None:
    out = cli.ok("--help").stdout
    for group in ("integrations", "config", "completion"):
        assert group in out


def test_unknown_command_is_a_usage_error_without_traceback(cli: Cli) -> None:
    run = cli("frobnicate")
    assert run.exit_code == 2
    assert run.stderr.startswith("Error: ")
    assert "Traceback" not in run.stderr


def test_usage_error_in_json_mode_is_one_document(cli: Cli) -> None:
    run = cli("integrations", "show", "-o", "json")
    assert run.exit_code == 2
    assert run.json()["error"]["code"] == "usage_error"


def test_no_color_env_and_flag_strip_ansi(cli: Cli) -> None:
    add_integration(cli, "Colour")
    for env, args in (({"NO_COLOR": "1", "FORCE_COLOR": "1"}, []), ({"FORCE_COLOR": "1"}, ["--no-color"])):
        run = cli(*args, "integrations", "show", "nope", env=env)
        assert "\x1b[" not in run.stderr
    forced = cli("integrations", "show", "nope", env={"FORCE_COLOR": "1"})
    assert "\x1b[" in forced.stderr


def test_interrupt_exits_130(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from cxslack import registry

    def interrupted(self: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(registry.Registry, "view", interrupted)
    run = cli("integrations", "list")
    assert run.exit_code == 130 and run.stdout == "" and "Interrupted." in run.stderr
    run = cli("integrations", "list", "-o", "json")  # a script still gets its one document
    assert run.exit_code == 130 and run.json()["error"]["code"] == "interrupted"


def test_unexpected_error_is_short_and_points_at_debug(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from cxslack import registry

    def broken(self: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(registry.Registry, "view", broken)
    run = cli("integrations", "list", "-o", "json")
    assert run.exit_code == 1
    assert run.json()["error"]["code"] == "internal_error"
    assert "CXSLACK_DEBUG" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("shell", list(Shell))
def test_completion_files_are_current(shell: Shell) -> None:
    """completions/ holds exactly what `cxslack completion SHELL` prints; regenerate when this fails:
    for s in bash zsh fish; do cxslack completion $s > completions/cxslack.$s; done"""
    committed = (ROOT / "completions" / f"cxslack.{shell.value}").read_text()
    assert committed == script_for(shell)


def test_completion_command_prints_the_script(cli: Cli) -> None:
    assert cli.ok("completion", "fish").stdout == script_for(Shell.FISH)
    assert cli("completion", "tcsh").exit_code == 2


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_completes_commands_options_and_choices() -> None:
    script = ROOT / "completions" / "cxslack.bash"

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        probe = (
            f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
            f"COMP_CWORD={len(words) - 1}; _cxslack; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        )
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout
        return out.split()

    assert complete("cxslack int") == ["integrations"]
    assert "remove" in complete("cxslack integrations ")
    assert "--consent-us-data-transfer" in complete("cxslack integrations add --con")
    assert complete("cxslack integrations list -o ") == ["table", "wide", "json"]


def test_console_script_entry_point_matches_module() -> None:
    run = run_process("integrations", "list", "-o", "json")
    assert run.exit_code == 0
    assert run.json() == {"integrations": []}
