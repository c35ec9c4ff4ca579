"""The one place that prints results and messages.

Data goes to stdout as a table (Rich on a terminal; tab-separated and untruncated when piped),
as exactly one JSON document, or as YAML (the app manifest). Human messages, progress and
warnings go to stderr. Every string passes through the redactor on its way out. A command's
outcome (its exit code) comes back from `Output.result`, and app.py exits with it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TextIO

from cxslack.redact import redact


class OutputFormat(StrEnum):
    TABLE = "table"
    WIDE = "wide"  # a table with every column, however narrow the terminal
    JSON = "json"


@dataclass(frozen=True)
class Column:
    """One table column. `key` cells are identifiers (ids, channel names): never broken, never
    hidden. `drop` > 0 marks a column a narrow terminal may hide, highest first (`-o wide` shows
    it); other cells wrap at word boundaries. `style` colours a cell by its value."""

    header: str
    key: bool = False
    drop: int = 0
    style: Callable[[str], str] | None = None


_settings = {"no_color": False}


def set_no_color(no_color: bool) -> None:
    _settings["no_color"] = no_color


def in_ci() -> bool:
    """A CI job declared itself (`CI` set to anything but empty, 0, false or no)."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def is_interactive() -> bool:
    """A person at a terminal: stdin is a TTY and no CI is declared."""
    return sys.stdin.isatty() and not in_ci()


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

    def table(self, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        """Rich on a terminal, fitted to its width; tab-separated and untruncated when piped."""
        out = sys.stdout
        if not out.isatty():
            print("\t".join(c.header.upper() for c in columns), file=out)
            for row in rows:
                print(redact("\t".join(str(c).replace("\t", " ") for c in row)), file=out)
            return
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console(no_color=not use_color(out), highlight=False)
        cells = [[redact(str(cell)) for cell in row] for row in rows]
        widths = fit_columns(columns, cells, console.width, wide=self.format is OutputFormat.WIDE)
        table = Table(box=None, header_style="bold", pad_edge=False)
        for i, width in widths.items():
            table.add_column(columns[i].header.upper(), width=width, no_wrap=columns[i].key, overflow="fold")
        for row in cells:
            table.add_row(*(Text(row[i], style=_cell_style(columns[i], row[i])) for i in widths))
        # a terminal too narrow even for the key columns soft-wraps the line; ids stay whole
        console.width = max(console.width, sum(widths.values()) + _GAP * (len(widths) - 1))
        console.print(table)
        hidden = [column.header for i, column in enumerate(columns) if i not in widths]
        if hidden:
            say(f"({', '.join(hidden)} hidden to fit the terminal; -o wide shows every column)")

    def fields(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Aligned `Label  value` lines for one object."""
        width = max((len(k) for k, _ in pairs), default=0)
        for key, value in pairs:
            label = paint(f"{key + ':':<{width + 1}}", "bold", sys.stdout)
            print(redact(f"{label} {value}"))

    def lines(self, text: str) -> None:
        print(redact(text))

    def result(
        self, doc: dict[str, Any], human: Callable[[], None] | None = None, *, exit_code: int = 0
    ) -> int:
        """Print a command's result (like `emit`) and hand back its outcome's exit code: a
        command returns it, and app.py's one mapping exits with it."""
        self.emit(doc, human)
        return exit_code

    def progress(self, label: str) -> ProgressBar:
        """A progress bar on stderr for a person at a terminal; silent in JSON mode or when piped."""
        return ProgressBar(label, enabled=not self.json)

    # -- stderr ------------------------------------------------------------------------------
    def info(self, message: str) -> None:
        say(message)

    def success(self, message: str) -> None:
        say(f"{paint('✔', 'green', sys.stderr)} {message}")

    def warn(self, message: str) -> None:
        say(f"{paint('!', 'yellow', sys.stderr)} {message}")


def _cell_style(column: Column, value: str) -> str:
    return column.style(value) if column.style else ""


_WORD_MAX = 24  # a longer word in a wrapping column is folded rather than widen the table
_GAP = 2  # spaces between two columns (Rich's default padding of one on each side)


def fit_columns(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, *, wide: bool = False
                ) -> dict[int, int]:  # fmt: skip
    """{index: width} of the columns to show, in order. A header never breaks inside a word and a
    key cell never breaks at all; droppable columns go, highest `drop` first, until those minimums
    fit `width` (unless `wide`). Room left over widens the columns left to right, up to their
    longest cell, so text wraps only when it has to."""
    minimum, natural = [], []
    for i, column in enumerate(columns):
        cells = [row[i] for row in rows]
        header = max((len(w) for w in column.header.split()), default=1)
        words = cells if column.key else [w for c in cells for w in c.split()]
        longest = max((len(w) for w in words), default=0)
        minimum.append(max(header, longest if column.key else min(longest, _WORD_MAX)))
        natural.append(max([len(column.header), *(len(c) for c in cells)]))
    shown = list(range(len(columns)))

    def needed() -> int:
        return sum(minimum[i] for i in shown) + _GAP * (len(shown) - 1)

    for i in sorted(
        (i for i, c in enumerate(columns) if c.drop and not wide), key=lambda i: -columns[i].drop
    ):
        if needed() <= width:
            break
        shown.remove(i)
    spare = max(0, width - needed())
    widths = {}
    for i in shown:
        grow = min(spare, natural[i] - minimum[i])
        widths[i], spare = minimum[i] + grow, spare - grow
    return widths


def say(message: str) -> None:
    print(redact(message), file=sys.stderr)


def warn(message: str) -> None:
    say(f"{paint('Warning:', 'yellow', sys.stderr)} {message}")


def write_text(text: str) -> None:
    """Text as it is (a completion script, say), on stdout."""
    sys.stdout.write(redact(text))


def write_yaml(doc: dict[str, Any]) -> None:
    print(redact(to_yaml(doc)))


# Whether this process has printed its JSON document (an interruption after it adds none).
json_written = False


def write_json(doc: Any) -> None:
    """Indented on a terminal; one compact line when piped (json's C encoder: large lists stay fast)."""
    global json_written
    json_written = True
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


class ProgressBar:
    """The one progress display: a transient Rich bar on stderr (label, bar, done/total, what is
    happening, elapsed time), or nothing at all when stderr is not a terminal or the output is
    JSON. Safe to update from worker threads; messages printed meanwhile appear above it."""

    def __init__(self, label: str, *, enabled: bool = True):
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int | None = None) -> None:
        if not self.enabled or self._bar is not None:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
            TimeElapsedColumn(), console=Console(stderr=True, no_color=not use_color(sys.stderr)), transient=True,
        )  # fmt: skip
        self._bar.start()
        self._task = self._bar.add_task("", total=total)

    def update(self, description: str | None = None, *, advance: int = 0, completed: int | None = None,
               total: int | None = None) -> None:  # fmt: skip
        if not self.enabled:
            return
        self.start(total)
        changes: dict[str, Any] = {"advance": advance}
        if description is not None:
            changes["description"] = redact(description)
        if completed is not None:
            changes["completed"] = completed
        if total is not None:
            changes["total"] = total
        self._bar.update(self._task, **changes)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = self._task = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def to_yaml(value: Any, indent: int = 0) -> str:
    """YAML for plain shapes (dicts, lists, strings, bools) such as the app manifest; strings are
    JSON-quoted, which YAML reads as they are."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                body = to_yaml(item, indent + 1).lstrip()
                lines.append(f"{pad}- {body}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value, ensure_ascii=False)
