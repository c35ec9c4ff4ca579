"""Where the Slack client's gate keeps its pacing: how soon a key may send again, and Retry-After holds.

A key is whatever the gate limits on (today: API host, token, method and channel; Slack's own
keying — a Tier method per workspace, chat.postMessage per channel and per workspace — can
change the keys without touching a store). `LocalPacing` keeps it in this process; the state
layer's PostgreSQL store (`cxslack.state.postgres`) keeps it in the database, so N `listen`
replicas together stay within what Slack allows one app.

Pacing is a reservation (GCRA): `take` books the key's next free slot and says how long to wait
for it, so callers that all take at once are spread out instead of retrying into a 429.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Pacing(Protocol):
    def take(self, key: str, rate: float, burst: int) -> float:
        """Book the next send for `key` (at most `rate` a second, `burst` at once, and never inside a
        hold); returns the seconds to wait before sending (0: now)."""

    def hold(self, key: str, seconds: float) -> None:
        """Slack answered 429 with Retry-After for `key`: nothing is sent for it for `seconds`."""

    def held(self, key: str) -> float:
        """Seconds left of a hold on `key` (0 when none)."""


class LocalPacing:
    """Pacing for one process: per key, the time its next slot starts and the end of its hold."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}  # key → theoretical arrival time of the next send
        self._until: dict[str, float] = {}  # key → end of a Retry-After hold
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, burst: int) -> float:
        interval = 1.0 / rate
        with self._lock:
            now = time.monotonic()
            start = max(self._next.get(key, 0.0), self._until.get(key, 0.0), now - (burst - 1) * interval)
            self._next[key] = start + interval
        return max(0.0, start - now)

    def hold(self, key: str, seconds: float) -> None:
        with self._lock:
            until = time.monotonic() + seconds
            if until > self._until.get(key, 0.0):
                self._until[key] = until

    def held(self, key: str) -> float:
        with self._lock:
            return max(0.0, self._until.get(key, 0.0) - time.monotonic())


LOCAL = LocalPacing()  # the process-wide store of every state that keeps files
