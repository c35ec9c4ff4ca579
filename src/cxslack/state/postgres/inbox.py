"""`listen`'s event inbox in PostgreSQL, shared by every replica.

Accepting is one `INSERT … ON CONFLICT (event_id) DO NOTHING`, committed before Slack gets its
200: a redelivery — to this replica or any other — finds the id and is a duplicate. A database
that cannot take the event raises StateUnavailable, and the transport answers 500 (Slack retries,
perhaps at another replica) instead of acking what was not stored.

Claiming is `SELECT … FOR UPDATE SKIP LOCKED` of the oldest waiting event that is the first
waiting one of its order key (`order_key`: its Slack thread), in a transaction on the worker's
own connection that stays open while the handler runs and commits with the outcome. So two
replicas never take the same event, events of one thread go one at a time and in order, and a
replica that dies mid-event (kill -9, a lost host) takes its row lock with it: the server ends
its session and the next claim by any replica finds the event again. Processing stays at least
once, as with files; the handlers' own ledgers make it once in effect.

Finished events keep their id (the dedupe record) for 7 days; dead letters keep their envelope.
Envelopes are sealed (sealing.py: they carry Slack's verification token, a click's response_url,
what people wrote): an envelope that does not open is dead-lettered like any unreadable event,
but one sealed with a key this replica lacks is left to a replica that has it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from cxslack.state.interface import Accepted, InboxItem, InvalidEnvelope, Outcome, StateUnavailable, order_key
from cxslack.state.postgres.db import QUICK_TIMEOUT, Database, lock_id, replica_name
from cxslack.state.postgres.sealing import ENVELOPE, Sealer, SecretUnreadable, StateKeyError

KEEP_DONE_SECONDS = 7 * 86400
PRUNE_EVERY = 600.0  # seconds between sweeps of finished events past the dedupe window
POLL = 1.0  # seconds between claim attempts without a notification (a dead replica's events come back)
_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_CHANNEL = "cxslack_events"
LISTENING_LOCK = lock_id("listening", "cxslack")

_CLAIM = """SELECT e.seq, e.event_id, e.envelope FROM cxslack_events e
WHERE e.state = 'waiting'
  AND NOT EXISTS (SELECT 1 FROM cxslack_events o
                  WHERE o.order_key = e.order_key AND o.state = 'waiting' AND o.seq < e.seq)
ORDER BY e.seq
LIMIT 1
FOR UPDATE SKIP LOCKED"""


@dataclass(frozen=True)
class Claimed:
    seq: int
    event_id: str
    raw: bytes | None  # opened
    problem: str | None = None  # why it could not be opened

    def envelope(self) -> dict[str, Any]:
        if self.problem is not None:
            raise ValueError(self.problem)
        if self.raw is None:
            raise ValueError("the stored envelope is missing")
        doc = json.loads(self.raw)
        if not isinstance(doc, dict):
            raise ValueError("the stored envelope is not a JSON object")
        return doc


class PgInbox:
    def __init__(self, db: Database, sealer: Sealer):
        self.db = db
        self.sealer = sealer
        sealer.check()  # a replica without the database's key stops here, before it acks anything
        self.replica = replica_name()
        self.duplicates = self.processed = self.dead_lettered = 0
        self.last_done_at: float | None = None
        self._closed = False
        self._worker: Any = None  # the worker's own connection: LISTEN, and the open claim
        self._claimed: Claimed | None = None
        self._woken = threading.Event()
        self._pruned = 0.0

    # -- accepting (transport threads) ----------------------------------------------------------
    def accept(self, envelope: dict[str, Any], raw: bytes | None = None) -> Accepted:
        event_id = envelope.get("event_id")
        if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
            raise InvalidEnvelope("an event_callback needs an event_id like Ev0123ABCD")
        if self._closed:
            raise OSError("the inbox is closed")
        body = self.sealer.seal(raw if raw is not None else json.dumps(envelope).encode(), ENVELOPE, event_id)
        with self.db.connection(QUICK_TIMEOUT) as connection:  # an answer well inside Slack's 3 s
            row = connection.execute(
                """WITH stored AS (
                    INSERT INTO cxslack_events (event_id, order_key, envelope, received_by)
                    VALUES (%s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING seq)
                SELECT seq, pg_notify(%s, '') FROM stored""",
                [event_id, order_key(envelope), body, self.replica, _CHANNEL],
            ).fetchone()
        if row is None:
            self.duplicates += 1
            return Accepted.DUPLICATE
        return Accepted.STORED

    # -- processing (the worker thread) ---------------------------------------------------------
    def head(self, timeout: float, interrupted: Callable[[], bool]) -> Claimed | None:
        """Claim the next event this replica may take; None after `timeout`, on close or interruption."""
        if self._claimed is not None:  # still held (the worker put nothing back): the same event
            return self._claimed
        deadline = time.monotonic() + timeout
        while not self._closed and not interrupted():
            claimed = self._claim()
            if claimed is not None:
                return claimed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._wait(min(remaining, POLL))
        return None

    def _connection(self) -> Any:
        if self._worker is None or self._worker.closed:
            self._worker = self.db.connect()
            with self.db.errors():
                self._worker.execute(f"LISTEN {_CHANNEL}")
                # held while this replica listens: `PgState.listening` sees any replica's
                self._worker.execute("SELECT pg_advisory_lock_shared(%s)", [LISTENING_LOCK])
        return self._worker

    def _claim(self) -> Claimed | None:
        connection = self._connection()
        try:
            with self.db.errors():
                self._prune(connection)
                connection.execute("BEGIN")
                row = connection.execute(_CLAIM).fetchone()
                if row is None:
                    connection.execute("ROLLBACK")
                    return None
        except StateUnavailable:
            self._drop_connection()
            raise
        self._claimed = self._open(connection, int(row[0]), str(row[1]), row[2])
        return self._claimed

    def _open(self, connection: Any, seq: int, event_id: str, blob: Any) -> Claimed:
        try:
            return Claimed(
                seq, event_id, self.sealer.open(blob, ENVELOPE, event_id) if blob is not None else None
            )
        except SecretUnreadable as exc:
            return Claimed(seq, event_id, None, exc.message)
        except (StateKeyError, StateUnavailable) as exc:
            # The claim goes back with the session: sealed with a key this replica lacks, the event
            # is not its to judge, and a replica that has the key takes it.
            self._drop_connection()
            if isinstance(exc, StateKeyError):
                raise StateUnavailable(exc.code, exc.message, exc.hint) from None
            raise

    def _wait(self, seconds: float) -> None:
        """Until another replica stores or finishes an event (NOTIFY), `wake()`, or `seconds`."""
        connection = self._connection()
        end = time.monotonic() + seconds
        while not self._woken.is_set() and not self._closed:
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                with self.db.errors():
                    if any(True for _ in connection.notifies(timeout=min(left, 0.2), stop_after=1)):
                        break
            except StateUnavailable:
                self._drop_connection()
                raise
        self._woken.clear()

    def finish(self, item: InboxItem, outcome: Outcome, error: str = "") -> None:
        claimed = self._held(item)
        if claimed is None:
            return  # a handler that outlived close(): the claim went with the connection; it runs again
        connection = self._worker
        try:
            with self.db.errors():
                connection.execute(
                    """UPDATE cxslack_events SET state = %s, finished_at = now(), finished_by = %s, error = %s,
                        envelope = CASE WHEN %s THEN NULL ELSE envelope END
                    WHERE seq = %s""",
                    [str(outcome), self.replica, error or None, outcome is Outcome.HANDLED, claimed.seq],
                )
                connection.execute("SELECT pg_notify(%s, '')", [_CHANNEL])  # the next of its thread may go
                connection.execute("COMMIT")
        except StateUnavailable:
            self._drop_connection()
            raise
        finally:
            self._claimed = None
        if outcome is Outcome.DEAD_LETTER:
            self.dead_lettered += 1
        else:
            self.processed += 1
        self.last_done_at = time.time()

    def release(self, item: InboxItem) -> None:
        if self._held(item) is None:
            return
        self._claimed = None
        try:
            with self.db.errors():
                self._worker.execute("ROLLBACK")
        except StateUnavailable:
            self._drop_connection()  # the server released the claim with the session anyway

    def _held(self, item: InboxItem) -> Claimed | None:
        claimed = self._claimed
        if (
            claimed is None
            or claimed.event_id != item.event_id
            or self._worker is None
            or self._worker.closed
        ):
            return None
        return claimed

    def _drop_connection(self) -> None:
        self._claimed = None
        worker, self._worker = self._worker, None
        if worker is not None:
            with suppress(Exception):  # closing a broken connection: nothing more to lose
                worker.close()

    def _prune(self, connection: Any) -> None:
        """Now and then: forget handled events and clicks past the dedupe window, and idle pacing keys."""
        now = time.monotonic()
        if now - self._pruned < PRUNE_EVERY:
            return
        self._pruned = now
        connection.execute(
            "DELETE FROM cxslack_events WHERE state = 'handled' AND finished_at < now() - make_interval(secs => %s)",
            [KEEP_DONE_SECONDS],
        )
        connection.execute(
            "DELETE FROM cxslack_case_actions WHERE at < now() - make_interval(secs => %s)",
            [KEEP_DONE_SECONDS],
        )
        connection.execute(
            """DELETE FROM cxslack_slack_pacing
            WHERE greatest(next_at, held_until) < extract(epoch FROM clock_timestamp()) - 86400"""
        )

    # -- state ------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Events waiting in the database, at every replica (the ones being handled included); asked
        by /healthz and on the way out, so it gives up as quickly as accepting does."""
        with self.db.connection(QUICK_TIMEOUT) as connection:
            return int(
                connection.execute("SELECT count(*) FROM cxslack_events WHERE state = 'waiting'").fetchone()[
                    0
                ]
            )

    def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.depth:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def wake(self) -> None:
        self._woken.set()

    def storage(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            with self.db.connection(QUICK_TIMEOUT) as connection:
                connection.execute("SELECT 1")
        except (StateUnavailable, OSError) as exc:
            return {
                "backend": "postgresql",
                "ok": False,
                "database": self.db.label,
                "error": getattr(exc, "message", str(exc)),
            }
        return {"backend": "postgresql", "ok": True, "database": self.db.label,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2)}  # fmt: skip

    def close(self) -> None:
        """Stop accepting; an event still claimed goes back, and the listening lock is let go, before
        the connection closes (closing alone has the server release them a moment later)."""
        self._closed = True
        self._woken.set()
        worker = self._worker
        if worker is not None and not worker.closed:
            with suppress(Exception):  # a broken connection: the server ends its claim and lock anyway
                if worker.info.transaction_status.name != "IDLE":
                    worker.execute("ROLLBACK")
                worker.execute("SELECT pg_advisory_unlock_shared(%s)", [LISTENING_LOCK])
        self._drop_connection()
