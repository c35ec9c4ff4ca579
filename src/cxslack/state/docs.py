"""Small JSON documents: read without a lock (writes replace them atomically), changed only in a
transaction that holds the document's lock, re-reads it and writes it back atomically."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cxslack.state.files import StateUnreadable, atomic_write, storage_error
from cxslack.state.lock import locked


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`; None when there is no file. Anything else is an error that
    names the path (and line): a damaged file is reported, never mistaken for an empty one."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise storage_error(exc, path, "read") from None
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        where = f", line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise _unreadable(path, f"{where}: not valid JSON") from None
    if not isinstance(doc, dict):
        raise _unreadable(path, ": expected a JSON object")
    return doc


def _unreadable(path: Path, detail: str) -> StateUnreadable:
    return StateUnreadable(
        "state_unreadable",
        f"{path}{detail}",
        "cxslack left it as it is: restore it, or move it aside to start that state afresh.",
    )


class JsonDoc:
    """A small JSON object document with a lock file beside it (`.<name>.lock`)."""

    def __init__(self, path: Path, *, indent: int | None = None):
        self.path = path
        self.lock_path = path.with_name(f".{path.name}.lock")
        self.indent = indent

    def read(self) -> dict[str, Any]:
        """The current content ({} when there is none); no lock needed, writes are atomic."""
        return read_json(self.path) or {}

    def encode(self, doc: dict[str, Any]) -> bytes:
        return json.dumps(
            doc, indent=self.indent, sort_keys=True, separators=_separators(self.indent)
        ).encode()

    @contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """Lock, read fresh, yield the document to change in place, write it back if it changed.
        An exception inside leaves the file as it was."""
        with locked(self.lock_path):
            doc = self.read()
            before = self.encode(doc)
            yield doc
            after = self.encode(doc)
            if after != before:
                atomic_write(self.path, after, sweep=True)


def _separators(indent: int | None) -> tuple[str, str]:
    return (",", ": ") if indent is not None else (",", ":")
