"""What the domain needs from cxslack's state, as narrow operations; files are one implementation.

Domain code (Case notifications, two-way sync, previews, Case actions, `listen`, migration, access logs) asks
for a `State` (`cxslack.state.open_state`) and uses only these protocols, so a second
implementation (PostgreSQL, shared by `listen` replicas) can follow without touching it. Each
operation is atomic on its own; where the domain needs more than one to hold together (one
notify per Case and connector at a time, one comment per Slack reply, one action per click),
there is an explicit exclusive section (`CaseThreads.turn`, `SyncLedger.claim`,
`ActionLedger.claim`) that a database maps to an advisory lock or a row lock.

A state that cannot be reached (a database gone) raises `StateUnavailable`, an OSError: what
`listen` answers 500 for (Slack retries, another replica takes it) instead of acking.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cxslack.errors import CxError
from cxslack.state.records import (
    CaseSettings,
    CaseThread,
    ChartShare,
    CheckpointSnapshot,
    DeliveredBatch,
    InDoubtPost,
    LearnedChannel,
    MigrationEvent,
    PendingRoot,
    PreviewPlace,
    SyncedReply,
    TakenAction,
)

if TYPE_CHECKING:
    from cxslack.credentials import IntegrationSecrets
    from cxslack.slack.pacing import Pacing

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


class PostsInDoubt(Protocol):
    """Messages whose outcome is unknown, by purpose: a later run settles one before it sends
    anything else for the same purpose."""

    def get(self, purpose: str) -> InDoubtPost | None: ...

    def record(self, post: InDoubtPost) -> None:
        """Remember it (replacing what was recorded for the same purpose)."""

    def settle(self, purpose: str) -> None:
        """Found, ruled out, or resent: forget it."""

    def all(self) -> list[InDoubtPost]: ...


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

    def forget(self) -> None:
        """Nothing came of it (Coralogix refused the comment): as if it had never been tried."""


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


class ChartBook(Protocol):
    """Alert evaluation charts in Case threads: at most one per (Case, connector, alert trigger).
    Written under the Case's notify turn (`CaseThreads.turn`), so no hold of its own."""

    def get(self, key: str) -> ChartShare | None: ...

    def record(self, share: ChartShare) -> None:
        """Save it (replacing what was saved under its key)."""

    def forget(self, key: str) -> None:
        """Slack refused the share outright: nothing is in the thread, a later notify may try again."""


class MigrationJournal(Protocol):
    def exclusive(self, on_wait: OnWait) -> AbstractContextManager[None]:
        """One `connectors migrate` at a time; `on_wait()` when another is running."""

    def append(self, event: MigrationEvent) -> None:
        """Durably, before the caller moves on."""

    def events(self) -> list[MigrationEvent]:
        """Every event, oldest first (an append cut short by a crash is not among them)."""

    def replace(self, events: list[MigrationEvent]) -> None:
        """Compaction, inside `exclusive`: the journal becomes exactly `events`, atomically."""


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


class TokenBook(Protocol):
    """Each integration's Slack tokens as every process should use them now. A rotating token is
    refreshed by one process at a time, and the others then use what it got (Slack's refresh
    tokens are single-use: a second refresh with the same one would fail)."""

    def current(self, integration_id: str) -> IntegrationSecrets: ...

    def refresh(
        self, integration_id: str, renew: Callable[[IntegrationSecrets], IntegrationSecrets]
    ) -> IntegrationSecrets:
        """Under a hold no other process gets past: `renew(latest)` (which calls Slack only when the
        latest tokens are still due) is saved and returned."""

    def installed(self, integration_id: str, secrets: IntegrationSecrets) -> None:
        """A fresh install replaced the tokens in credentials.toml: they win over any refreshed ones."""


class StateUnavailable(CxError, OSError):
    """The state cannot be reached or written right now (a database down or unreachable): an
    OSError to the listener (answer 500, Slack retries), a CxError with a hint to a command."""


class Accepted(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"


class Outcome(StrEnum):
    HANDLED = "handled"
    DEAD_LETTER = "dead-letter"


class InvalidEnvelope(ValueError):
    """Not an event_callback envelope the inbox can keep (no or malformed event_id)."""


def order_key(envelope: dict[str, Any]) -> str:
    """What an event must be kept in order with: its Slack thread (a reply, its edit and its deletion;
    the previews of one message), else its channel. Events with the same key are handed out one at
    a time, oldest first; different keys may be handled at once (by different `listen` replicas)."""
    payload = envelope.get("payload")
    if isinstance(payload, dict):  # a click on a Case message: in order with that message's thread
        container, message = _dict(payload.get("container")), _dict(payload.get("message"))
        where = container.get("channel_id") or _dict(payload.get("channel")).get("id")
        ts = message.get("thread_ts") or container.get("message_ts") or message.get("ts")
        if where and ts:
            return f"{where}|{ts}"
    event = _dict(envelope.get("event"))
    channel = str(event.get("channel") or event.get("channel_id") or "")
    for source in (event, event.get("message"), event.get("previous_message")):
        if isinstance(source, dict) and source.get("thread_ts"):
            return f"{channel}|{source['thread_ts']}"
    for source, name in (
        (event.get("message"), "ts"),
        (event, "deleted_ts"),
        (event, "message_ts"),
        (event, "ts"),
    ):
        if isinstance(source, dict) and source.get(name):
            return f"{channel}|{source[name]}"
    return channel or str(envelope.get("event_id") or "")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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

    def release(self, item: InboxItem) -> None:
        """Not now (the handler asked to retry later): the event waits again, still first in its order."""

    def storage(self) -> dict[str, Any]:
        """Where events are kept and whether it answers (`/healthz`): {"backend", "ok", …}; never raises."""

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
    def in_doubt(self) -> PostsInDoubt: ...

    @property
    def ledger(self) -> SyncLedger: ...

    @property
    def previews(self) -> PreviewBook: ...

    @property
    def actions(self) -> ActionLedger: ...

    @property
    def charts(self) -> ChartBook: ...

    @property
    def migrations(self) -> MigrationJournal: ...

    @property
    def remote_migrations(self) -> MigrationJournal:
        """The journal of `connectors migrate --remote` (shares the one-run-at-a-time lock)."""

    @property
    def tokens(self) -> TokenBook: ...

    @property
    def pacing(self) -> Pacing:
        """Where the Slack client keeps its per-key pacing and Retry-After holds."""

    def checkpoint(self, integration_id: str, destination: str) -> CheckpointFiles: ...

    def open_inbox(self) -> EventInbox:
        """The event inbox, held by this process until closed (one listener per state)."""

    def last_event_handled_at(self) -> float | None:
        """When `listen` last finished an event (without opening the inbox)."""

    def listening(self) -> bool:
        """A `cxslack listen` is running on this state right now (in files: it holds the inbox's
        lock; in a shared database: some replica's worker holds the listening lock)."""
