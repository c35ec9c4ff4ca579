"""The embedded implementation of `State`: files in the state dir.

    cases/threads.json        (Case, connector) → root message, or a pending root     JsonDoc
    cases/settings.json       Case id or readable id → settings                       JsonDoc
    cases/previews.json       Case → where its previews live                          JsonDoc
    cases/charts.json         (Case, connector, alert trigger) → its evaluation chart  JsonDoc
    cases/locks/<digest>.lock one notify per (Case, connector)
    slack/channels.json       integration → channel name → ID Slack answered (or its refusal)  JsonDoc
    slack/in-doubt.json       purpose → a post whose outcome is unknown                JsonDoc
    sync/ledger.json          (channel, ts) → comment; sync cursors; last poll        JsonDoc
    sync/locks/<n>.lock       one sync per reply (64 stripes)
    actions/ledger.json       click key → what it did to a Case (7 days, 50,000 kept)  JsonDoc
    actions/locks/<n>.lock    one action per click key (64 stripes)
    migrations/journal.ndjson the migration journal                                  AppendLog
    migrations/remote.ndjson  the journal of migrations inside Coralogix (--remote)   AppendLog
    migrations/migrate.lock   one migrate run at a time
    access-logs/<integration>/<destination>.{json,journal,lock}   checkpoints
    events/                   the listen inbox (see inbox.py)

Every read-modify-write is a `JsonDoc.transaction` (lock, re-read, atomic write), so `listen`,
`sync` and `cases notify` running at once lose no update.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from cxslack.errors import CxError
from cxslack.state.claims import HeldClick, HeldReply
from cxslack.state.docs import JsonDoc, read_json
from cxslack.state.files import AppendLog, StateUnreadable, atomic_write, ensure_private_dir
from cxslack.state.interface import EventInbox
from cxslack.state.lock import locked
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
    click_digest,
    reply_key,
    split_thread_key,
    thread_key,
)

if TYPE_CHECKING:
    from cxslack.credentials import IntegrationSecrets
    from cxslack.store import Store

REPLY_LOCK_STRIPES = 64
# Clicks are remembered long after Slack could send one again (retries come within minutes, a
# response_url lives 30 minutes); the cap bounds the document however busy the buttons are.
KEEP_ACTIONS_SECONDS = 7 * 86400
KEEP_ACTIONS = 50_000
K = TypeVar("K", InDoubtPost, ChartShare)


def _now() -> str:
    from cxslack.model import utc_now

    return utc_now()


def _digest(text: str, length: int = 24) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _part(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """A document's object under `name` ({} when there is none or it is not an object)."""
    part = doc.get(name)
    return part if isinstance(part, dict) else {}


class FileCaseThreads:
    def __init__(self, directory: Path):
        self.dir = directory
        self.doc = JsonDoc(directory / "threads.json", indent=1)

    @contextmanager
    def turn(self, case_id: str, connector: str) -> Iterator[None]:
        with locked(self.dir / "locks" / f"{_digest(thread_key(case_id, connector))}.lock"):
            yield

    @staticmethod
    def _entry(key: str, body: Any) -> CaseThread | PendingRoot | None:
        if not isinstance(body, dict):
            return None
        case_id, connector = split_thread_key(key)
        return PendingRoot.from_json(case_id, connector, body) or CaseThread.from_json(
            case_id, connector, body
        )

    def get(self, case_id: str, connector: str) -> CaseThread | PendingRoot | None:
        key = thread_key(case_id, connector)
        return self._entry(key, self.doc.read().get(key))

    def mark_pending(self, case_id: str, connector: str, channels: list[str]) -> None:
        pending = PendingRoot(case_id, connector, tuple(channels), _now())
        with self.doc.transaction() as doc:
            doc[thread_key(case_id, connector)] = pending.to_json()

    def map(self, thread: CaseThread) -> None:
        with self.doc.transaction() as doc:
            doc[thread_key(thread.case_id, thread.connector)] = replace(thread, updated=_now()).to_json()

    def entries(self) -> list[CaseThread | PendingRoot]:
        """Every thread and pending root."""
        entries = (self._entry(key, body) for key, body in sorted(self.doc.read().items()))
        return [e for e in entries if e is not None]

    def all(self) -> list[CaseThread]:
        return [t for t in self.entries() if isinstance(t, CaseThread)]

    def of_case(self, case_id: str) -> list[CaseThread]:
        return [t for t in self.all() if t.case_id == case_id]

    def at(self, channel: str, ts: str) -> CaseThread | None:
        return next((t for t in self.all() if t.channel == channel and t.ts == ts), None)


class FileCaseSettings:
    def __init__(self, directory: Path):
        self.doc = JsonDoc(directory / "settings.json", indent=1)

    def get(self, *refs: str | None) -> CaseSettings:
        doc = self.doc.read()
        merged = CaseSettings()
        for ref in refs:
            if ref:
                merged = CaseSettings.from_json(doc.get(str(ref))).over(merged)
        return merged

    def update(self, ref: str, changes: CaseSettings) -> CaseSettings:
        with self.doc.transaction() as doc:
            current = changes.over(CaseSettings.from_json(doc.get(ref)))
            doc[ref] = current.to_json()
        return current

    def entries(self) -> list[tuple[str, CaseSettings]]:
        """Every ref that has a setting saved, with it."""
        saved = ((ref, CaseSettings.from_json(body)) for ref, body in sorted(self.doc.read().items()))
        return [(ref, settings) for ref, settings in saved if settings != CaseSettings()]


@contextmanager
def _striped(directory: Path, kind: str, key: str) -> Iterator[None]:
    """One of 64 lock files per kind held for `key`: a lock file per key would grow without end;
    64 stripes rarely collide, and a collision only makes two different keys take turns."""
    stripe = int(_digest(key, 8), 16) % REPLY_LOCK_STRIPES
    with locked(directory / "locks" / f"{kind}-{stripe:02d}.lock"):
        yield


class FileSyncLedger:
    def __init__(self, directory: Path):
        self.dir = directory
        self.doc = JsonDoc(directory / "ledger.json")

    @contextmanager
    def claim(self, channel: str, ts: str) -> Iterator[HeldReply]:
        with _striped(self.dir, "reply", reply_key(channel, ts)):
            yield HeldReply(
                self.get(channel, ts), partial(self.put, channel, ts), partial(self.drop, channel, ts)
            )

    def get(self, channel: str, ts: str) -> SyncedReply | None:
        return SyncedReply.from_json(_part(self.doc.read(), "messages").get(reply_key(channel, ts)))

    def replies(self) -> list[tuple[str, str, SyncedReply]]:
        """Every (channel, ts) recorded, with what it became."""
        found = []
        for key, body in sorted(_part(self.doc.read(), "messages").items()):
            channel, _, ts = key.partition("|")
            reply = SyncedReply.from_json(body)
            if reply is not None and channel and ts:
                found.append((channel, ts, reply))
        return found

    def put(self, channel: str, ts: str, reply: SyncedReply) -> None:
        with self.doc.transaction() as doc:
            doc.setdefault("messages", {})[reply_key(channel, ts)] = reply.to_json()

    def drop(self, channel: str, ts: str) -> None:
        with self.doc.transaction() as doc:
            _part(doc, "messages").pop(reply_key(channel, ts), None)

    def cursor(self, thread: str) -> str | None:
        value = _part(self.doc.read(), "checkpoints").get(thread)
        return str(value) if value else None

    def cursors(self) -> dict[str, str]:
        """Every thread's cursor (those that are a Slack ts)."""
        found = {}
        for thread, ts in sorted(_part(self.doc.read(), "checkpoints").items()):
            try:
                float(ts)
            except (TypeError, ValueError):
                continue
            found[thread] = str(ts)
        return found

    def advance(self, thread: str, ts: str) -> None:
        with self.doc.transaction() as doc:
            cursors = doc.setdefault("checkpoints", {})
            if float(ts) > float(cursors.get(thread, 0) or 0):
                cursors[thread] = ts

    def polled(self) -> None:
        with self.doc.transaction() as doc:
            doc["last_poll"] = time.time()

    def last_poll(self) -> float | None:
        value = self.doc.read().get("last_poll")
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value else None
        )


def _prune(clicks: dict[str, object], now: float) -> None:
    oldest = now - KEEP_ACTIONS_SECONDS
    for key in list(clicks):
        record = clicks[key]
        at = record.get("at") if isinstance(record, dict) else None
        if len(clicks) <= KEEP_ACTIONS and isinstance(at, int | float) and at >= oldest:
            break
        del clicks[key]


class FileActionLedger:
    def __init__(self, directory: Path):
        self.dir = directory
        self.doc = JsonDoc(directory / "ledger.json")

    @contextmanager
    def claim(self, key: str) -> Iterator[HeldClick]:
        click = click_digest(key)
        with _striped(self.dir, "click", key):
            yield HeldClick(self.get(click), partial(self.put, click), partial(self.drop, click))

    def get(self, click: str) -> TakenAction | None:
        return TakenAction.from_json(_part(self.doc.read(), "clicks").get(click))

    def entries(self) -> list[tuple[str, TakenAction]]:
        """Every click (by the digest of its key), oldest first."""
        actions = (
            (click, TakenAction.from_json(body)) for click, body in _part(self.doc.read(), "clicks").items()
        )
        return [(click, action) for click, action in actions if action is not None]

    def put(self, click: str, action: TakenAction) -> None:
        with self.doc.transaction() as doc:
            clicks = doc["clicks"] = _part(doc, "clicks")
            clicks.pop(click, None)  # re-inserted last: the dict stays oldest first
            clicks[click] = action.to_json()
            _prune(clicks, action.at or 0)

    def drop(self, click: str) -> None:
        with self.doc.transaction() as doc:
            _part(doc, "clicks").pop(click, None)


class FileChannelBook:
    def __init__(self, directory: Path):
        self.doc = JsonDoc(directory / "channels.json", indent=1)
        self._cache: dict[str, Any] | None = None  # read once: IDs do not change under a process

    def get(self, integration: str, name: str) -> LearnedChannel | None:
        if self._cache is None:
            self._cache = self.doc.read()
        return LearnedChannel.from_json(name, _part(self._cache, integration).get(name))

    def entries(self) -> list[tuple[str, LearnedChannel]]:
        """Every channel learned, with its integration."""
        found = []
        for integration, table in sorted(self.doc.read().items()):
            for name, body in sorted(table.items()) if isinstance(table, dict) else []:
                learned = LearnedChannel.from_json(name, body)
                if learned is not None:
                    found.append((integration, learned))
        return found

    def _set(self, integration: str, name: str, entry: LearnedChannel | None) -> None:
        with self.doc.transaction() as doc:
            table = doc[integration] = _part(doc, integration)
            if entry is None:
                table.pop(name, None)
            else:
                table[name] = entry.to_json()
            self._cache = dict(doc)

    def learn(self, integration: str, name: str, channel_id: str) -> None:
        self._set(integration, name, LearnedChannel(name, id=channel_id, at=_now()))

    def refused(self, integration: str, name: str, error: str) -> None:
        self._set(integration, name, LearnedChannel(name, error=error, at=_now()))

    def forget(self, integration: str, name: str) -> None:
        self._set(integration, name, None)


class _FileRecords(Generic[K]):
    """Records by key in one JSON document (key → the record's JSON)."""

    def __init__(self, path: Path, read: Callable[[str, Any], K | None]):
        self.doc = JsonDoc(path, indent=1)
        self._read: Callable[[str, Any], K | None] = read

    def get(self, key: str) -> K | None:
        return self._read(key, self.doc.read().get(key))

    def record(self, record: K) -> None:
        with self.doc.transaction() as doc:
            doc[record.key] = record.to_json()

    def drop(self, key: str) -> None:
        if key in self.doc.read():
            with self.doc.transaction() as doc:
                doc.pop(key, None)

    def all(self) -> list[K]:
        records = (self._read(k, v) for k, v in sorted(self.doc.read().items()))
        return [r for r in records if r is not None]


class FilePostsInDoubt(_FileRecords[InDoubtPost]):
    settle = _FileRecords.drop


class FileChartBook(_FileRecords[ChartShare]):
    forget = _FileRecords.drop


class FilePreviewBook:
    def __init__(self, directory: Path):
        self.doc = JsonDoc(directory / "previews.json", indent=1)

    def _places(self, doc: dict[str, object], case_key: str) -> list[PreviewPlace]:
        raw = doc.get(case_key)
        places = (PreviewPlace.from_json(p) for p in raw) if isinstance(raw, list) else ()
        return [p for p in places if p is not None]

    def of_case(self, case_key: str) -> list[PreviewPlace]:
        return self._places(self.doc.read(), case_key)

    def entries(self) -> list[tuple[str, PreviewPlace]]:
        """Every preview, with its Case."""
        doc = self.doc.read()
        return [(case_key, place) for case_key in sorted(doc) for place in self._places(doc, case_key)]

    def remember(self, case_key: str, place: PreviewPlace) -> None:
        with self.doc.transaction() as doc:
            others = [p for p in self._places(doc, case_key) if p.key != place.key]
            doc[case_key] = [p.to_json() for p in (*others, place)]

    def shown(self, case_key: str, place: PreviewPlace) -> None:
        with self.doc.transaction() as doc:
            places = self._places(doc, case_key)
            if any(p.key == place.key for p in places):  # not forgotten meanwhile
                doc[case_key] = [(place if p.key == place.key else p).to_json() for p in places]


class FileMigrationJournal:
    def __init__(self, directory: Path, name: str = "journal"):
        self.dir = directory
        self.log = AppendLog(directory / f"{name}.ndjson")

    @contextmanager
    def exclusive(self, on_wait: Callable[[], None]) -> Iterator[None]:
        with locked(self.dir / "migrate.lock", on_wait):
            yield

    def append(self, event: MigrationEvent) -> None:
        self.log.append_json(replace(event, at=time.time()).to_json())

    def events(self) -> list[MigrationEvent]:
        events = (MigrationEvent.from_json(doc) for doc in self.log.json_records())
        return [e for e in events if e is not None]

    def replace(self, events: list[MigrationEvent]) -> None:
        import json

        self.log.replace(
            json.dumps(e.to_json(), separators=(",", ":"), ensure_ascii=False).encode() for e in events
        )


class FileCheckpoint:
    """`<destination>.json` (the snapshot), `.journal` (batches since), `.lock`."""

    def __init__(self, directory: Path, destination: str):
        self.dir = directory
        self.destination = destination
        self.log = AppendLog(directory / f"{destination}.journal")

    @property
    def path(self) -> Path:
        return self.dir / f"{self.destination}.json"

    @contextmanager
    def exclusive(self, on_wait: Callable[[], None]) -> Iterator[None]:
        with locked(self.dir / f"{self.destination}.lock", on_wait):
            yield

    def load(self) -> tuple[CheckpointSnapshot, list[DeliveredBatch]]:
        try:
            doc = read_json(self.path)
        except StateUnreadable as exc:
            raise self._unreadable(exc.message.removeprefix(str(self.path)).lstrip(", :")) from None
        snapshot = CheckpointSnapshot() if doc is None else CheckpointSnapshot.from_json(doc)
        if snapshot is None:
            raise self._unreadable("unexpected content")
        batches = (DeliveredBatch.from_json(r) for r in self.log.json_records())
        return snapshot, [b for b in batches if b is not None]

    def append(self, batch: DeliveredBatch) -> None:
        self.log.append_json(batch.to_json())

    def has_batches(self) -> bool:
        return self.log.exists()

    def compact(self, snapshot: CheckpointSnapshot) -> None:
        import json

        ensure_private_dir(self.dir)
        snapshot = replace(snapshot, updated_at=_now())
        atomic_write(self.path, json.dumps(snapshot.to_json(), separators=(",", ":")).encode(), sweep=True)
        self.log.remove()  # after the snapshot holds it all: replaying it again would change nothing

    def _unreadable(self, why: str) -> CxError:
        return CxError(
            "checkpoint_unreadable",
            f"the access-log checkpoint {self.path} cannot be read ({why})",
            "Restore it, or move it aside to start over (entries already delivered would be delivered again).",
        )


class FileTokens:
    """Tokens live in credentials.toml; a refresh happens under the store's lock."""

    def __init__(self, store: Store):
        self.store = store

    def current(self, integration_id: str) -> IntegrationSecrets:
        from cxslack.credentials import read_secrets

        return read_secrets(self.store, integration_id)

    def refresh(
        self, integration_id: str, renew: Callable[[IntegrationSecrets], IntegrationSecrets]
    ) -> IntegrationSecrets:
        from cxslack.credentials import read_secrets, write_secrets

        with self.store.transaction() as docs:
            secrets = renew(read_secrets(docs, integration_id))  # another process may have refreshed already
            write_secrets(docs, integration_id, secrets)
        return secrets

    def installed(self, integration_id: str, secrets: IntegrationSecrets) -> None:
        """credentials.toml is where they are: nothing more to do."""


class FileState:
    """`State` on files under one state directory (created, 0700, as it is first written), with
    the tokens in the store's credentials.toml."""

    def __init__(self, state_dir: Path, store: Store | None = None):
        from cxslack.slack.pacing import LOCAL

        self.dir = state_dir
        self._store = store
        self.pacing = LOCAL  # one process's pacing: files are not shared by listen replicas
        self.threads = FileCaseThreads(state_dir / "cases")
        self.settings = FileCaseSettings(state_dir / "cases")
        self.channels = FileChannelBook(state_dir / "slack")
        self.in_doubt = FilePostsInDoubt(state_dir / "slack" / "in-doubt.json", InDoubtPost.from_json)
        self.previews = FilePreviewBook(state_dir / "cases")
        self.charts = FileChartBook(state_dir / "cases" / "charts.json", ChartShare.from_json)
        self.ledger = FileSyncLedger(state_dir / "sync")
        self.actions = FileActionLedger(state_dir / "actions")
        self.migrations = FileMigrationJournal(state_dir / "migrations")
        self.remote_migrations = FileMigrationJournal(state_dir / "migrations", "remote")

    @property
    def tokens(self) -> FileTokens:
        from cxslack.store import Store

        return FileTokens(self._store or Store())

    def checkpoint(self, integration_id: str, destination: str) -> FileCheckpoint:
        return FileCheckpoint(self.dir / "access-logs" / integration_id, destination)

    def open_inbox(self) -> EventInbox:
        from cxslack.state.inbox import Inbox

        return Inbox(self.dir / "events")

    def last_event_handled_at(self) -> float | None:
        try:
            return (self.dir / "events" / "done.log").stat().st_mtime
        except OSError:
            return None

    def listening(self) -> bool:
        from cxslack.state.lock import FileLock, LockBusy

        path = self.dir / "events" / ".lock"  # the inbox's (inbox.py): held while a listener runs
        if not path.exists():
            return False
        probe = FileLock(path)
        try:
            probe.acquire(blocking=False)
        except LockBusy:
            return True
        except CxError:
            return False
        probe.release()
        return False
