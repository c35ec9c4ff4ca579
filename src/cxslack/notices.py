"""Warnings from domain code, shown by the CLI: domain code never prints.

`warn()` hands a message to whoever listens (the CLI's renderer, which prints it on stderr);
each message is passed on once per process. Without a listener, messages wait for one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_lock = threading.Lock()
_seen: set[str] = set()
_waiting: list[str] = []
_listener: Callable[[str], None] | None = None


def warn(message: str) -> None:
    with _lock:
        if message in _seen:
            return
        _seen.add(message)
        listener = _listener
        if listener is None:
            _waiting.append(message)
            return
    listener(message)


def listen(listener: Callable[[str], None] | None) -> None:
    """Send warnings to `listener` from now on (and those that waited); None stops that."""
    global _listener
    with _lock:
        _listener = listener
        if listener is None:
            return
        waiting = list(_waiting)
        _waiting.clear()
    for message in waiting:
        listener(message)
