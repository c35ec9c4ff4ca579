"""The one place that prints results and messages.

Data goes to stdout as a table (Rich on a terminal; tab-separated and untruncated when piped)
or as exactly one JSON document. Human messages, progress and warnings go to stderr. Every
string passes through the redactor on its way out.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TextIO

from cxslack.redact import redact


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


_settings = {"no_color": False}


def set_no_color(no_color: bool) -> None:
    _settings["no_color"] = no_color


def is_interactive() -> bool:
    """A person at a terminal: stdin is a TTY and no CI is declared."""
    ci = os.environ.get("CI", "").strip().lower()
    return sys.stdin.isatty() and ci in {"", "0", "false", "no"}


def use_color(stream: TextIO) -> bool:
    if _settings["no_color"] or "NO_COLOR" in os.environ:
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and os.environ.get("TERM") != "dumb"


_ANSI = {"green": "32", "yellow": "33", "red": "31", "bold": "1", "dim": "2", "cyan": "36"}


def paint(text: str, style: str, stream: TextIO) -> str:
    if not use_color(stream):
        return text
    codes = ";".join(_ANSI[s] for s in style.split())
    return f"\x1b[{codes}m{text}\x1b[0m"


STATUS_STYLE = {"active": "green", "pending": "yellow", "failing": "red"}


class Output:
    """Renders one command's result in the chosen format."""

    def __init__(self, fmt: OutputFormat | str = OutputFormat.TABLE):
        self.format = OutputFormat(fmt)

    @property
    def json(self) -> bool:
        return self.format is OutputFormat.JSON

    # -- stdout ------------------------------------------------------------------------------
    def emit(self, doc: dict[str, Any], human: Callable[[], None] | None = None) -> None:
        """JSON mode: print `doc`; table mode: call `human` (or print doc as key/values)."""
        if self.json or human is None:
            write_json(doc)
        else:
            human()

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        styles: dict[int, Callable[[str], str]] | None = None,
    ) -> None:
        out = sys.stdout
        if not out.isatty():
            print("\t".join(h.upper() for h in headers), file=out)
            for row in rows:
                print(redact("\t".join(str(c).replace("\t", " ") for c in row)), file=out)
            return
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, header_style="bold", pad_edge=False)
        for h in headers:
            table.add_column(h.upper(), overflow="fold")
        for row in rows:
            cells = []
            for i, cell in enumerate(row):
                styler = (styles or {}).get(i)
                style = styler(cell) if styler else ""
                cells.append(Text(redact(str(cell)), style=style))
            table.add_row(*cells)
        Console(no_color=not use_color(out), highlight=False).print(table)

    def fields(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Aligned `Label  value` lines for one object."""
        width = max((len(k) for k, _ in pairs), default=0)
        for key, value in pairs:
            label = paint(f"{key + ':':<{width + 1}}", "bold", sys.stdout)
            print(redact(f"{label} {value}"))

    def lines(self, text: str) -> None:
        print(redact(text))

    # -- stderr ------------------------------------------------------------------------------
    def info(self, message: str) -> None:
        say(message)

    def success(self, message: str) -> None:
        say(f"{paint('✔', 'green', sys.stderr)} {message}")

    def warn(self, message: str) -> None:
        say(f"{paint('!', 'yellow', sys.stderr)} {message}")


def say(message: str) -> None:
    print(redact(message), file=sys.stderr)


def warn(message: str) -> None:
    say(f"{paint('Warning:', 'yellow', sys.stderr)} {message}")


def write_json(doc: Any) -> None:
    """Indented on a terminal; one compact line when piped (json's C encoder: large lists stay fast)."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(redact(json.dumps(doc, indent=indent, ensure_ascii=False)) + "\n")


def style_status(status: str) -> str:
    return STATUS_STYLE.get(status, "")


def when(timestamp: str) -> str:
    """Relative time for people at a terminal, RFC 3339 when piped."""
    if not sys.stdout.isatty() or not timestamp:
        return timestamp
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    seconds = int((datetime.now(UTC) - then).total_seconds())
    if seconds < 0:
        return timestamp
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"
