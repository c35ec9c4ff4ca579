"""`cxslack state copy`: a home's file state into a PostgreSQL database, in one transaction.

What moves: Case threads (pending roots too), per-Case settings, the sync ledger with its cursors
and last poll, the preview book, the Case actions taken from buttons, the channel IDs learned from
Slack, the posts whose outcome is unknown, the alert evaluation charts shared into Case threads, and the
event inbox — events still waiting (to be processed by
the replicas), the ids of events finished within the dedupe window (so Slack's redeliveries of
them stay duplicates) and the dead letters. What the database has already wins: copying twice,
or into a database replicas already use, adds only what is missing (a cursor only moves forward).
The file inbox is held while copying, so a `listen` on files cannot change it underneath; the files
are left as they were. Envelopes are sealed on the way in, as `listen` seals them (sealing.py), so
when events move this machine needs the replicas' key (their Slack client secret, or
CXSLACK_STATE_KEY).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxslack.state.interface import order_key
from cxslack.state.postgres import books
from cxslack.state.postgres.db import Database
from cxslack.state.postgres.sealing import ENVELOPE, Sealer
from cxslack.state.records import PendingRoot

if TYPE_CHECKING:
    from cxslack.state.inbox import Inbox
    from cxslack.state.local import FileState

PARTS = ("threads", "pending_roots", "settings", "replies", "cursors", "previews", "actions", "channels",
         "in_doubt", "charts", "events_waiting", "events_done", "dead_letters")  # fmt: skip


@dataclass
class CopyCount:
    found: int = 0
    copied: int = 0


@dataclass
class CopyReport:
    source: Path
    database: str
    parts: dict[str, CopyCount] = field(default_factory=lambda: {p: CopyCount() for p in PARTS})

    def count(self, part: str, inserted: bool) -> None:
        self.parts[part].found += 1
        self.parts[part].copied += int(inserted)

    def to_json(self) -> dict[str, Any]:
        return {"from": str(self.source), "to": self.database,
                "parts": {k: {"found": v.found, "copied": v.copied} for k, v in self.parts.items()}}  # fmt: skip


def copy_file_state(state_dir: Path, db: Database, sealer: Sealer) -> CopyReport:
    from cxslack.state.inbox import Inbox
    from cxslack.state.local import FileState

    report = CopyReport(state_dir, db.label)
    files = FileState(state_dir)
    inbox = Inbox(state_dir / "events") if (state_dir / "events").is_dir() else None
    try:
        with db.pinned() as connection, connection.transaction():
            run = _Copy(connection, report, sealer)
            run.books(files)
            if inbox is not None:
                run.inbox(inbox)
    finally:
        if inbox is not None:
            inbox.close()
    return report


class _Copy:
    def __init__(self, connection: Any, report: CopyReport, sealer: Sealer):
        self.connection = connection
        self.report = report
        self.sealer = sealer

    def _add(self, part: str, table: books.Table, row: list[Any]) -> None:
        """Written as the books write it, unless the database has the row already (it wins)."""
        self.report.count(part, self.connection.execute(table.add(), row).fetchone() is not None)

    def _insert(self, part: str, sql: str, params: list[Any]) -> None:
        inserted = self.connection.execute(sql + " ON CONFLICT DO NOTHING RETURNING 1", params).fetchone()
        self.report.count(part, inserted is not None)

    def books(self, files: FileState) -> None:
        """Everything the file books hold, read by them."""
        for thread in files.threads.entries():
            part = "pending_roots" if isinstance(thread, PendingRoot) else "threads"
            self._add(part, books.THREADS, books.thread_row(thread))
        for ref, settings in files.settings.entries():
            self._add("settings", books.SETTINGS, books.settings_row(ref, settings))
        for channel, ts, reply in files.ledger.replies():
            self._add("replies", books.REPLIES, books.reply_row(channel, ts, reply))
        for thread_id, ts in files.ledger.cursors().items():
            self.report.count("cursors", books.advance_cursor(self.connection, thread_id, ts))
        last_poll = files.ledger.last_poll()
        if last_poll:
            books.set_mark(self.connection, "last_poll", last_poll)
        for case_key, place in files.previews.entries():
            self._add("previews", books.PREVIEWS, books.preview_row(case_key, place))
        for click, action in files.actions.entries():
            self._add("actions", books.ACTIONS, books.action_row(click, action))
        for integration, learned in files.channels.entries():
            self._add("channels", books.CHANNELS, books.channel_row(integration, learned))
        for post in files.in_doubt.all():
            self._add("in_doubt", books.IN_DOUBT, books.keyed_row(post))
        for share in files.charts.all():
            self._add("charts", books.CHARTS, books.keyed_row(share))

    def _sealed(self, event_id: str, raw: bytes) -> bytes:
        return self.sealer.seal(raw, ENVELOPE, event_id)

    def inbox(self, inbox: Inbox) -> None:
        """Finished ids first (oldest first), then what waits in arrival order, then dead letters
        (with their envelopes: a dead letter's id is not copied as a finished one before it)."""
        dead = _dead_letters(inbox)
        done_sql = """INSERT INTO cxslack_events (event_id, order_key, state, finished_at, finished_by)
            VALUES (%s, '', 'handled', to_timestamp(%s), 'state copy')"""
        for event_id, at in list(inbox.finished()):
            if event_id not in dead:
                self._insert("events_done", done_sql, [event_id, at])
        for pending in inbox.waiting():
            try:
                raw = pending.path.read_bytes()
                envelope = json.loads(raw)
            except (OSError, ValueError):
                continue  # unreadable: the file listener would dead-letter it; it stays in the files
            self._insert("events_waiting", """INSERT INTO cxslack_events (event_id, order_key, envelope, received_by)
                VALUES (%s, %s, %s, 'state copy')""", [pending.event_id, order_key(envelope), self._sealed(pending.event_id, raw)])  # fmt: skip
        for event_id, doc in dead.items():
            envelope = doc.get("envelope")
            self._insert("dead_letters", """INSERT INTO cxslack_events (event_id, order_key, state, envelope,
                finished_at, finished_by, error) VALUES (%s, %s, 'dead-letter', %s, to_timestamp(%s), 'state copy', %s)""",
                [event_id, order_key(envelope) if isinstance(envelope, dict) else "",
                 self._sealed(event_id, json.dumps(envelope).encode()) if envelope is not None else None,
                 float(doc.get("failed_at") or 0), str(doc.get("error") or "")])  # fmt: skip


def _dead_letters(inbox: Inbox) -> dict[str, dict[str, Any]]:
    """The file inbox's dead letters by event id, oldest first (unreadable files are left out)."""
    found = {}
    for path in sorted((inbox.root / "dead").glob("*.json")):
        try:
            doc = json.loads(path.read_bytes())
            found[str(doc["event_id"])] = doc
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found
