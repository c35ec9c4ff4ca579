"""What a claim holds (`SyncLedger.claim`, `ActionLedger.claim`), for either implementation.

A claim reads its record once the hold began, and saves what it becomes (stamped with the time)
or forgets it through the functions its ledger hands over — a JSON document's transaction with
files, one statement with PostgreSQL. The ledger's own lock (a lock file stripe, an advisory
lock) is what makes the hold exclusive; these classes only keep what was read and written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Generic, TypeVar

from cxslack.state.records import SyncedReply, TakenAction

R = TypeVar("R", SyncedReply, TakenAction)


class HeldRecord(Generic[R]):
    def __init__(self, current: R | None, put: Callable[[R], None], drop: Callable[[], None]):
        self._record: R | None = current
        self._put: Callable[[R], None] = put
        self._drop = drop

    def record(self, record: R) -> None:
        """Save what it became (replacing the earlier record)."""
        record = replace(record, at=time.time())
        self._put(record)
        self._record = record

    def forget(self) -> None:
        """Nothing came of it: as if it had never been tried."""
        self._drop()
        self._record = None


class HeldReply(HeldRecord[SyncedReply]):
    """A Slack reply (channel, ts) held while its comment is made."""

    @property
    def synced(self) -> SyncedReply | None:
        return self._record


class HeldClick(HeldRecord[TakenAction]):
    """One click's key held while the Case action is taken."""

    @property
    def taken(self) -> TakenAction | None:
        return self._record
