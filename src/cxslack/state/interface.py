"""What the domain needs from cxslack's state, as narrow operations; files are one implementation.

Domain code (Case notifications, two-way sync, previews, Case actions, `listen`, migration, access logs) asks
for a `State` (`cxslack.state.open_state`) and uses only these protocols, so a second
implementation (PostgreSQL, shared by `listen` replicas) can follow without touching it. Each
operation is atomic on its own; where the domain needs more than one to hold together (one
notify per Case and connector at a time, one comment per Slack reply, one action per click),
there is an explicit exclusive section (`CaseThreads.turn`, `SyncLedger.claim`,
`ActionLedger.claim`) that a database maps to an advisory lock or a row lock.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from cxslack.state.records import (
    CaseSettings,
    CaseThread,
    CheckpointSnapshot,
    DeliveredBatch,
    LearnedChannel,
    MigrationEvent,
    PendingRoot,
    PreviewPlace,
    SyncedReply,
    TakenAction,
)

OnWait = Callable[[], None]  # called once when another process holds what we wait for


class CaseThreads(Protocol):
    """(Case, connector) → the Case's root message in Slack."""

    def turn(self, case_id: str, connector: str) -> AbstractContextManager[None]:
        """One notify at a time per (Case, connector), across processes."""

    def get(self, case_id: str, connector: str) -> CaseThread | PendingRoot | None: ...

    def mark_pending(self, case_id: str, connector: str, channels: list[str]) -> None:
        """A root is about to be posted to one of `channels` (recorded before posting)."""

    def map(self, thread: CaseThread) -> None:
        """The root is posted: remember where (replaces a pending mark)."""

    def of_case(self, case_id: str) -> list[CaseThread]: ...

    def at(self, channel: str, ts: str) -> CaseThread | None:
        """The Case thread whose root is (channel, ts), if cxslack posted one there."""

    def all(self) -> list[CaseThread]: ...


class ChannelBook(Protocol):
    """Per integration: channel name → the ID chat.postMessage answered with (Slack takes names
    nowhere else), or the error with which it refused a post by that name."""

    def get(self, integration: str, name: str) -> LearnedChannel | None: ...

    def learn(self, integration: str, name: str, channel_id: str) -> None: ...

    def refused(self, integration: str, name: str, error: str) -> None: ...

    def forget(self, integration: str, name: str) -> None: ...


class CaseSettingsBook(Protocol):
    """Per-Case settings (reply mode, muted sync), saved under a Case's id or readable id."""

    def get(self, *refs: str | None) -> CaseSettings:
        """Merged over `refs` in order: a setting saved under a later ref wins."""

    def update(self, ref: str, changes: CaseSettings) -> CaseSettings:
        """Set what `changes` sets, under `ref`; returns the settings saved under `ref`."""


class ReplyClaim(Protocol):
    """Exclusive hold on one Slack message (channel, ts) while its comment is made."""

    @property
    def synced(self) -> SyncedReply | None:
        """What the message already became, read once the claim was held."""

    def record(self, reply: SyncedReply) -> None:
        """Save what it became (replacing the earlier record)."""


class SyncLedger(Protocol):
    """Slack replies → Case comments, each (channel, ts) once; and `cxslack sync`'s cursors."""

    def claim(self, channel: str, ts: str) -> AbstractContextManager[ReplyClaim]:
        """Hold (channel, ts) against every other process syncing it; check `synced` inside."""

    def get(self, channel: str, ts: str) -> SyncedReply | None: ...

    def cursor(self, thread: str) -> str | None:
        """The ts up to which `cxslack sync` has read a thread ("<channel>|<root ts>")."""

    def advance(self, thread: str, ts: str) -> None:
        """Move a thread's cursor forward (never back)."""

    def polled(self) -> None:
        """`cxslack sync` finished a pass (doctor asks when that last happened)."""

    def last_poll(self) -> float | None: ...


class ActionClaim(Protocol):
    """Exclusive hold on one click's key while the Case action is taken."""

    @property
    def taken(self) -> TakenAction | None:
        """What an earlier delivery of this click already did, read once the claim was held."""

    def record(self, action: TakenAction) -> None:
        """Save what this click did (replacing the earlier record)."""

    def forget(self) -> None:
        """Nothing was done (Coralogix refused, the person is not mapped): a later click may try."""


class ActionLedger(Protocol):
    """Case actions taken from Slack buttons, each click key (button, message, person) once."""

    def claim(self, key: str) -> AbstractContextManager[ActionClaim]:
        """Hold `key` against every other delivery of the same click; check `taken` inside."""


class PreviewBook(Protocol):
    """Where each Case's URL previews live, and what they last showed."""

    def remember(self, case_key: str, place: PreviewPlace) -> None:
        """Add (or replace: same channel, ts and URL) a preview of the Case."""

    def of_case(self, case_key: str) -> list[PreviewPlace]: ...

    def shown(self, case_key: str, place: PreviewPlace) -> None:
        """A preview was refreshed: record the status and priority it shows now."""


class MigrationJournal(Protocol):
    def exclusive(self, on_wait: OnWait) -> AbstractContextManager[None]:
        """One `connectors migrate` at a time; `on_wait()` when another is running."""

    def append(self, event: MigrationEvent) -> None:
        """Durably, before the caller moves on."""

    def events(self) -> list[MigrationEvent]:
        """Every event, oldest first (an append cut short by a crash is not among them)."""


class CheckpointFiles(Protocol):
    """One access-log destination's checkpoint: a snapshot and the batches delivered since."""

    @property
    def path(self) -> Path:
        """Where the snapshot lives (for messages and `-o json`)."""

    def exclusive(self, on_wait: OnWait) -> AbstractContextManager[None]:
        """One run per integration and destination; inherited by a forked child (see access_logs)."""

    def load(self) -> tuple[CheckpointSnapshot, list[DeliveredBatch]]: ...

    def append(self, batch: DeliveredBatch) -> None:
        """Durably, once the destination accepted the batch."""

    def compact(self, snapshot: CheckpointSnapshot) -> None:
        """The snapshot now holds every batch: replace both with it."""

    def has_batches(self) -> bool: ...


class Accepted(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"


class Outcome(StrEnum):
    HANDLED = "handled"
    DEAD_LETTER = "dead-letter"


class InvalidEnvelope(ValueError):
    """Not an event_callback envelope the inbox can keep (no or malformed event_id)."""


class InboxItem(Protocol):
    @property
    def event_id(self) -> str: ...

    def envelope(self) -> dict[str, Any]:
        """The envelope as received; raises OSError or ValueError when it cannot be read."""


class EventInbox(Protocol):
    """`listen`'s durable intake: an event is stored before Slack is told it arrived, handed out
    oldest first, and finished once; a redelivered event id is recognised and not stored again."""

    duplicates: int
    processed: int
    dead_lettered: int
    last_done_at: float | None

    def accept(self, envelope: dict[str, Any], raw: bytes | None = None) -> Accepted:
        """Store an event_callback envelope durably unless its id was seen. Raises
        InvalidEnvelope, or OSError when it cannot be stored (Slack then retries)."""

    def head(self, timeout: float, interrupted: Callable[[], bool]) -> InboxItem | None:
        """The oldest waiting event (it stays until `finish`); None after `timeout`, on close, or
        when `interrupted()` turns true (checked whenever `wake()` is called)."""

    def finish(self, item: InboxItem, outcome: Outcome, error: str = "") -> None: ...

    @property
    def depth(self) -> int: ...

    def drain(self, timeout: float) -> bool: ...

    def wake(self) -> None: ...

    def close(self) -> None: ...


class State(Protocol):
    @property
    def threads(self) -> CaseThreads: ...

    @property
    def settings(self) -> CaseSettingsBook: ...

    @property
    def channels(self) -> ChannelBook: ...

    @property
    def ledger(self) -> SyncLedger: ...

    @property
    def previews(self) -> PreviewBook: ...

    @property
    def actions(self) -> ActionLedger: ...

    @property
    def migrations(self) -> MigrationJournal: ...

    @property
    def remote_migrations(self) -> MigrationJournal:
        """The journal of `connectors migrate --remote` (shares the one-run-at-a-time lock)."""

    def checkpoint(self, integration_id: str, destination: str) -> CheckpointFiles: ...

    def open_inbox(self) -> EventInbox:
        """The event inbox, held by this process until closed (one listener per state)."""

    def last_event_handled_at(self) -> float | None:
        """When `listen` last finished an event (without opening the inbox)."""
