"""The durable inbox of `cxslack listen`: an event is on disk before Slack is told it arrived.

Layout of the directory (`<state dir>/events/`)::

    inbox/<seq>-<event_id>.json   accepted, not processed yet: the envelope as received, oldest first
    dead/<seq>-<event_id>.json    failed for good: {"event_id", "failed_at", "error", "envelope"}
    done.log                      "<event_id> <unix time> <outcome>" per finished event: the dedupe record
    .lock                         one listener per directory

Accepting checks the event id against the events waiting and the ones finished (the last 50,000,
at most 7 days old), then writes the file (temp file, fsync, rename, fsync the directory) under one
lock, so Slack's retries (`X-Slack-Retry-Num`) and redeliveries are acknowledged but stored once.
Events leave the inbox in arrival order. Processing is at least once: an event is marked done
after its handler returns, so a crash in between runs it again on the next start (Slack asks
for idempotent handlers anyway).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxslack.errors import CxError
from cxslack.state.files import AppendLog, atomic_write, ensure_private_dir
from cxslack.state.interface import Accepted, InboxItem, InvalidEnvelope, Outcome
from cxslack.state.lock import FileLock, LockBusy
from cxslack.state.records import FinishedEvent

__all__ = ["Accepted", "Inbox", "InvalidEnvelope", "Outcome", "Pending"]

KEEP_DONE = 50_000
KEEP_DONE_SECONDS = 7 * 86400
# Slack's ids look like Ev0123ABCD; anything else must not reach a file name.
_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_NAME = re.compile(r"(\d+)-([A-Za-z0-9_-]+)\.json")


@dataclass(frozen=True)
class Pending:
    seq: int
    event_id: str
    path: Path

    def envelope(self) -> dict[str, Any]:
        doc = json.loads(self.path.read_bytes())
        if not isinstance(doc, dict):
            raise ValueError("the stored envelope is not a JSON object")
        return doc


class Inbox:
    def __init__(self, root: Path, *, keep: int = KEEP_DONE, keep_seconds: float = KEEP_DONE_SECONDS):
        self.root = root
        self._waiting_dir, self._dead_dir = root / "inbox", root / "dead"
        for directory in (root, self._waiting_dir, self._dead_dir):
            ensure_private_dir(directory)
        self._lock = _hold(root)
        self._keep, self._keep_seconds = keep, keep_seconds
        self._cond = threading.Condition()  # accepting, the queue, the dedupe record
        self._finishing = threading.Lock()  # the worker's writes to done.log and dead/
        self._closed = False
        self._done_log = AppendLog(root / "done.log")
        self._done = self._load_done()
        self._done_lines = len(self._done)
        self._queue: deque[Pending] = deque()
        self._pending: dict[str, Pending] = {}
        self._next_seq = 1
        self._load_waiting()
        for directory in (root, self._dead_dir):  # this listener holds the lock: any temp is a dead writer's
            for leftover in directory.glob(".*.tmp"):
                leftover.unlink(missing_ok=True)
        self.duplicates = self.processed = self.dead_lettered = 0
        self.last_done_at: float | None = None

    # -- loading --------------------------------------------------------------------------------
    def _load_done(self) -> OrderedDict[str, float]:
        done: OrderedDict[str, float] = OrderedDict()
        oldest = time.time() - self._keep_seconds
        for line in self._done_log.lines():  # a torn last line after a crash is not among them
            finished = FinishedEvent.from_line(line)
            if finished is not None and finished.at >= oldest:
                done[finished.event_id] = finished.at
                done.move_to_end(finished.event_id)
        while len(done) > self._keep:
            done.popitem(last=False)
        return done

    def _load_waiting(self) -> None:
        """Events accepted by an earlier run and never finished, in their original order."""
        for path in sorted(self._waiting_dir.iterdir()):
            match = _NAME.fullmatch(path.name)
            if match is None:  # a temp file from a write that never completed: never acknowledged
                path.unlink(missing_ok=True)
                continue
            seq, event_id = int(match.group(1)), match.group(2)
            self._next_seq = max(self._next_seq, seq + 1)
            if event_id in self._done or event_id in self._pending:  # finished just before a crash
                path.unlink(missing_ok=True)
                continue
            item = Pending(seq, event_id, path)
            self._queue.append(item)
            self._pending[event_id] = item

    # -- accepting (transport threads) ----------------------------------------------------------
    def accept(self, envelope: dict[str, Any], raw: bytes | None = None) -> Accepted:
        """Store an event_callback envelope durably, unless its event id was seen; `raw` is the
        body as received (stored verbatim). Raises InvalidEnvelope, or OSError when the disk fails."""
        event_id = envelope.get("event_id")
        if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
            raise InvalidEnvelope("an event_callback needs an event_id like Ev0123ABCD")
        with self._cond:
            if self._closed:
                raise OSError("the inbox is closed")
            if event_id in self._done or event_id in self._pending:
                self.duplicates += 1
                return Accepted.DUPLICATE
            seq = self._next_seq
            path = self._waiting_dir / f"{seq:012d}-{event_id}.json"
            atomic_write(path, raw if raw is not None else json.dumps(envelope).encode())
            self._next_seq += 1
            item = Pending(seq, event_id, path)
            self._queue.append(item)
            self._pending[event_id] = item
            self._cond.notify_all()
        return Accepted.STORED

    # -- processing (the worker) ----------------------------------------------------------------
    def head(self, timeout: float, interrupted: Callable[[], bool]) -> Pending | None:
        """The oldest waiting event (it stays waiting until `finish`); None after `timeout`, on close,
        or when `interrupted()` turns true (checked whenever `wake()` is called)."""
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._closed or interrupted(), timeout)
            return self._queue[0] if self._queue and not self._closed else None

    def finish(self, handed_out: InboxItem, outcome: Outcome, error: str = "") -> None:
        """Record the event as done (dead-lettered with `error`) and take it out of the inbox.

        Only the worker calls this. Its fsyncs happen outside the accept lock, so they never hold
        up an ack; the event still counts as waiting until the end, so a redelivery meanwhile is
        still recognised."""
        with self._finishing:
            if self._closed:  # a handler that outlived stop(): the event runs again on the next start
                return
            with self._cond:
                item = self._pending[handed_out.event_id]
            now = time.time()
            if outcome is Outcome.DEAD_LETTER:
                self._dead_letter(item, error, now)
            self._done_log.append(FinishedEvent(item.event_id, now, str(outcome)).to_line())
            item.path.unlink(missing_ok=True)  # after the done record: a crash here cannot run it twice
            with self._cond:
                self._done[item.event_id] = now
                oldest = now - self._keep_seconds
                while len(self._done) > self._keep or next(iter(self._done.values())) < oldest:
                    self._done.popitem(last=False)
                self._queue.remove(item)
                del self._pending[item.event_id]
                if outcome is Outcome.DEAD_LETTER:
                    self.dead_lettered += 1
                else:
                    self.processed += 1
                self.last_done_at = now
                self._cond.notify_all()
            self._done_lines += 1
            if self._done_lines > 2 * self._keep:  # the log only grows: rewrite it with what is kept
                self._done_log.replace(
                    FinishedEvent(eid, at, "done").to_line() for eid, at in self._done.items()
                )
                self._done_lines = len(self._done)

    def finished(self) -> list[tuple[str, float]]:
        """(event id, when it finished) of the events in the dedupe record, oldest first."""
        with self._cond:
            return list(self._done.items())

    def waiting(self) -> list[Pending]:
        """The events not processed yet, in arrival order."""
        with self._cond:
            return list(self._queue)

    def release(self, item: InboxItem) -> None:
        """The event stays first in the queue: the next `head` hands it out again."""

    def storage(self) -> dict[str, Any]:
        return {"backend": "files", "ok": not self._closed}

    def _dead_letter(self, item: Pending, error: str, now: float) -> None:
        try:
            envelope: Any = json.loads(item.path.read_bytes())
        except (OSError, ValueError):
            envelope = None
        doc = {"event_id": item.event_id, "failed_at": now, "error": error, "envelope": envelope}
        atomic_write(self._dead_dir / item.path.name, json.dumps(doc, indent=2).encode())

    # -- state ------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        with self._cond:
            return len(self._queue)

    def drain(self, timeout: float) -> bool:
        """Wait until no event is waiting (tests and benchmarks); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue, timeout)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Stop accepting; what is waiting stays on disk for the next start."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        with self._finishing:
            self._lock.release()


def _hold(root: Path) -> FileLock:
    lock = FileLock(root / ".lock")
    try:
        lock.acquire(blocking=False)
    except LockBusy:
        raise CxError(
            "listener_running",
            f"another cxslack listen is already using {root}",
            "Stop it first (one listener per state directory), or give this one its own CXSLACK_HOME.",
        ) from None
    return lock
