"""At 80 columns: help texts keep every flag whole, tables keep ids and header words whole.

Tables are only drawn on a terminal, so those tests run the real `cxslack` with stdout on a
pseudo-terminal of a chosen width; piped output stays tab-separated with every column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer

from cxslack.cli.app import app

from .conftest import Cli, add_integration
from .terminal import on_terminal

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def table_on_terminal(columns: int, *args: str) -> str:
    """stdout of `cxslack ARGS` on a terminal `columns` wide, without colour (stderr appended)."""
    run = on_terminal(*args, columns=columns, env={"NO_COLOR": "1"})
    assert run.exit_code == 0
    return ANSI.sub("", run.terminal) + run.other


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    ctx = typer.Context(group)
    yield path, group
    for name in getattr(group, "list_commands", lambda ctx: [])(ctx):
        yield from commands(group.get_command(ctx, name), (*path, name))


def test_help_at_80_columns_shows_every_flag_whole(cli: Cli) -> None:
    for path, command in commands(typer.main.get_command(app)):
        text = cli.ok(*path, "--help", env={"COLUMNS": "80"}).stdout
        assert not re.search(r"-[\w-]*…", text), path  # Rich cut "--consent-us-data…"
        assert all(len(line) <= 80 for line in text.splitlines()), path
        for param in (p for p in command.params if not getattr(p, "hidden", False)):
            for flag in [*param.opts, *param.secondary_opts]:
                if flag.startswith("--"):
                    assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), (path, flag)


def test_tables_at_80_columns_keep_ids_and_headers_whole(cli: Cli) -> None:
    ids = [add_integration(cli, name)["id"] for name in ("Payments", "Legacy Billing Team")]
    cli.ok("connectors", "create", "Payments on-call", "--integration", "payments",
           "--channel", "payments-alerts-and-escalations", "--fallback-channel", "ops-fallback")  # fmt: skip
    listing = table_on_terminal(80, "integrations", "list")
    lines = listing.splitlines()
    for ident in ids:
        assert any(ident in line for line in lines), listing  # one piece, on one line
    assert "INTEGRATION NAME" in listing or ("INTEGRATION" in listing and "NAME" in listing)
    assert not re.search(r"INTEGRATI\s*$|^\s*ON\b", listing, re.M)
    assert all(len(line) <= 80 for line in lines if "hidden" not in line), listing
    assert "-o wide shows every column" in listing
    wide = table_on_terminal(80, "integrations", "list", "-o", "wide")
    assert "CONNECTORS" in wide and all(any(i in line for line in wide.splitlines()) for i in ids)
    connectors = table_on_terminal(80, "connectors", "list")
    assert any("payments-alerts-and-escalations" in line for line in connectors.splitlines())
    assert any("payments-on-call" in line for line in connectors.splitlines())


def test_piped_tables_are_unchanged(cli: Cli) -> None:
    add_integration(cli, "Payments")
    out = cli.ok("integrations", "list").stdout.splitlines()
    assert out[0].split("\t") == ["INTEGRATION NAME", "STATUS", "INTEGRATION VERSION", "APPLICATION FUNCTIONALITY",
                                  "CONNECTORS", "LAST UPDATED", "ACCESS LOGS", "ID"]  # fmt: skip
    assert len(out[1].split("\t")) == 8
