"""The one reader for JSON that comes from outside cxslack: files, stdin, request bodies.

Bounded twice: in size (read no more than the limit, so `--payload /dev/zero` stops at once) and
in nesting depth (a deeply nested document is refused with a message, never a RecursionError).
Errors are usage errors that name the input, and the line and column of a syntax error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, BinaryIO

from cxslack.errors import UsageError

MAX_BYTES = 16 << 20  # payloads, Case JSON: a real one is a few KB
MAX_IMPORT_BYTES = 256 << 20  # connector files: ~400 bytes a connector, so ~600,000 of them
MAX_DEPTH = 64  # Coralogix payloads nest a handful of levels; 64 leaves room and stays far from the stack


def read_json_file(path: str, what: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON document from a file or '-' (stdin)."""
    label = f"{what} on stdin" if path == "-" else f"{what} {path}"
    try:
        if path == "-":
            raw = _read_at_most(sys.stdin.buffer, max_bytes)
        else:
            with Path(path).open("rb") as stream:
                raw = _read_at_most(stream, max_bytes)
    except OSError as exc:
        raise UsageError("unreadable_file", f"cannot read {label}: {exc.strerror or exc}") from None
    if raw is None:
        raise UsageError(
            "input_too_large",
            f"{label} is larger than {_size(max_bytes)}",
            "Is it the right file? A JSON input that large is not something cxslack reads.",
        )
    return parse_json(raw, label, max_depth=max_depth)


def parse_json(raw: bytes, where: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse bytes already read (a request body, say); `where` names them in errors."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError("invalid_json", f"{where} is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(
            "invalid_json", f"{where}, line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:  # the C parser's own guard, far deeper than max_depth
        raise _too_deep(where, max_depth) from None
    if _deeper_than(doc, max_depth):
        raise _too_deep(where, max_depth)
    return doc


def _read_at_most(stream: BinaryIO, limit: int) -> bytes | None:
    """The whole stream, or None when it holds more than `limit` bytes (read: limit + 1 at most)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(1 << 20, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return None


def _deeper_than(doc: Any, limit: int) -> bool:
    """Iteratively (no recursion to blow): does any value sit more than `limit` containers deep?"""
    stack = [(doc, 1)] if isinstance(doc, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _too_deep(where: str, limit: int) -> UsageError:
    return UsageError("json_too_deep", f"{where} nests objects and arrays more than {limit} levels deep",
                      "Is it the right file? cxslack reads Coralogix payloads, Cases and connectors, none that deep.")  # fmt: skip


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"
