"""`cxslack state copy`: a home's file state into a PostgreSQL database, in one transaction.

What moves: Case threads (pending roots too), per-Case settings, the sync ledger with its cursors
and last poll, the preview book, the Case actions taken from buttons, the channel IDs learned from
Slack, the posts whose outcome is unknown, the alert evaluation charts shared into Case threads, and the
event inbox — events still waiting (to be processed by
the replicas), the ids of events finished within the dedupe window (so Slack's redeliveries of
them stay duplicates) and the dead letters. What the database has already wins: copying twice,
or into a database replicas already use, adds only what is missing (a cursor only moves forward).
The file inbox is held while copying, so a `listen` on files cannot change it underneath; the files
are left as they were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxslack.state.docs import read_json
from cxslack.state.interface import order_key
from cxslack.state.postgres.db import Database
from cxslack.state.records import (
    CaseSettings,
    CaseThread,
    ChartShare,
    InDoubtPost,
    LearnedChannel,
    PendingRoot,
    PreviewPlace,
    SyncedReply,
    TakenAction,
    split_thread_key,
)

if TYPE_CHECKING:
    from cxslack.state.inbox import Inbox

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


def copy_file_state(state_dir: Path, db: Database) -> CopyReport:
    from cxslack.state.inbox import Inbox

    report = CopyReport(state_dir, db.label)
    inbox = Inbox(state_dir / "events") if (state_dir / "events").is_dir() else None
    try:
        with db.pinned() as connection, connection.transaction():
            run = _Copy(connection, report)
            run.threads(_doc(state_dir / "cases" / "threads.json"))
            run.settings(_doc(state_dir / "cases" / "settings.json"))
            run.ledger(_doc(state_dir / "sync" / "ledger.json"))
            run.previews(_doc(state_dir / "cases" / "previews.json"))
            run.actions(_doc(state_dir / "actions" / "ledger.json"))
            run.channels(_doc(state_dir / "slack" / "channels.json"))
            run.in_doubt(_doc(state_dir / "slack" / "in-doubt.json"))
            run.charts(_doc(state_dir / "cases" / "charts.json"))
            if inbox is not None:
                run.inbox(inbox)
    finally:
        if inbox is not None:
            inbox.close()
    return report


def _doc(path: Path) -> dict[str, Any]:
    doc = read_json(path)
    return doc if isinstance(doc, dict) else {}


class _Copy:
    def __init__(self, connection: Any, report: CopyReport):
        self.connection = connection
        self.report = report

    def _insert(self, part: str, sql: str, params: list[Any]) -> None:
        inserted = self.connection.execute(sql + " ON CONFLICT DO NOTHING RETURNING 1", params).fetchone()
        self.report.count(part, inserted is not None)

    def threads(self, doc: dict[str, Any]) -> None:
        sql = """INSERT INTO cxslack_case_threads (case_id, connector, channel, ts, integration, case_name,
            pending_channels, updated) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"""
        for key, body in sorted(doc.items()):
            if not isinstance(body, dict):
                continue
            case_id, connector = split_thread_key(key)
            pending = PendingRoot.from_json(case_id, connector, body)
            if pending is not None:
                self._insert("pending_roots", sql, [case_id, connector, None, None, None, None,
                                                    list(pending.channels), pending.updated])  # fmt: skip
                continue
            thread = CaseThread.from_json(case_id, connector, body)
            if thread is not None:
                self._insert("threads", sql, [case_id, connector, thread.channel, thread.ts, thread.integration,
                                              thread.case_name, None, thread.updated])  # fmt: skip

    def settings(self, doc: dict[str, Any]) -> None:
        for ref, body in sorted(doc.items()):
            settings = CaseSettings.from_json(body)
            if settings != CaseSettings():
                self._insert("settings", "INSERT INTO cxslack_case_settings (ref, reply_mode, mute_sync, case_actions) "
                             "VALUES (%s, %s, %s, %s)",
                             [ref, settings.reply_mode, settings.mute_sync, settings.case_actions])  # fmt: skip

    def ledger(self, doc: dict[str, Any]) -> None:
        messages = doc.get("messages")
        for key, body in sorted(messages.items() if isinstance(messages, dict) else []):
            channel, _, ts = key.partition("|")
            reply = SyncedReply.from_json(body)
            if reply is not None and channel and ts:
                self._insert("replies", "INSERT INTO cxslack_synced_replies (channel, ts, reply) VALUES (%s, %s, %s)",
                             [channel, ts, json.dumps(reply.to_json())])  # fmt: skip
        cursors = doc.get("checkpoints")
        for thread, ts in sorted(cursors.items() if isinstance(cursors, dict) else []):
            try:
                float(ts)
            except (TypeError, ValueError):
                continue
            moved = self.connection.execute(
                """INSERT INTO cxslack_sync_cursors AS c (thread, ts) VALUES (%s, %s)
                ON CONFLICT (thread) DO UPDATE SET ts = EXCLUDED.ts WHERE c.ts::numeric < EXCLUDED.ts::numeric
                RETURNING 1""",
                [thread, str(ts)],
            ).fetchone()
            self.report.count("cursors", moved is not None)
        last_poll = doc.get("last_poll")
        if isinstance(last_poll, int | float) and not isinstance(last_poll, bool) and last_poll:
            self.connection.execute(
                """INSERT INTO cxslack_marks AS m (name, at) VALUES ('last_poll', %s)
                ON CONFLICT (name) DO UPDATE SET at = greatest(m.at, EXCLUDED.at)""",
                [float(last_poll)],
            )

    def previews(self, doc: dict[str, Any]) -> None:
        for case_key, places in sorted(doc.items()):
            for body in places if isinstance(places, list) else []:
                place = PreviewPlace.from_json(body)
                if place is not None:
                    self._insert("previews", "INSERT INTO cxslack_previews (case_key, channel, ts, url, place) VALUES (%s, %s, %s, %s, %s)",
                                 [case_key, *place.key, json.dumps(place.to_json())])  # fmt: skip

    def actions(self, doc: dict[str, Any]) -> None:
        clicks = doc.get("clicks")
        for click, body in clicks.items() if isinstance(clicks, dict) else []:
            action = TakenAction.from_json(body)
            if action is not None:
                self._insert("actions", """INSERT INTO cxslack_case_actions (click, action, at)
                    VALUES (%s, %s, to_timestamp(%s))""", [click, json.dumps(action.to_json()), action.at or 0])  # fmt: skip

    def channels(self, doc: dict[str, Any]) -> None:
        for integration, table in sorted(doc.items()):
            for name, body in sorted(table.items()) if isinstance(table, dict) else []:
                learned = LearnedChannel.from_json(name, body)
                if learned is not None:
                    self._insert("channels", """INSERT INTO cxslack_slack_channels (integration, name, id, error, at)
                        VALUES (%s, %s, %s, %s, %s)""", [integration, name, learned.id, learned.error, learned.at])  # fmt: skip

    def in_doubt(self, doc: dict[str, Any]) -> None:
        for purpose, body in sorted(doc.items()):
            post = InDoubtPost.from_json(purpose, body)
            if post is not None:
                self._insert("in_doubt", "INSERT INTO cxslack_posts_in_doubt (purpose, post) VALUES (%s, %s)",
                             [purpose, json.dumps(post.to_json())])  # fmt: skip

    def charts(self, doc: dict[str, Any]) -> None:
        for key, body in sorted(doc.items()):
            share = ChartShare.from_json(key, body)
            if share is not None:
                self._insert("charts", "INSERT INTO cxslack_chart_shares (key, share) VALUES (%s, %s)",
                             [key, json.dumps(share.to_json())])  # fmt: skip

    def inbox(self, inbox: Inbox) -> None:
        """Finished ids first (oldest first), then what waits in arrival order, then dead letters."""
        done_sql = """INSERT INTO cxslack_events (event_id, order_key, state, finished_at, finished_by)
            VALUES (%s, '', 'handled', to_timestamp(%s), 'state copy')"""
        for event_id, at in list(inbox.finished()):
            self._insert("events_done", done_sql, [event_id, at])
        for pending in inbox.waiting():
            try:
                raw = pending.path.read_bytes()
                envelope = json.loads(raw)
            except (OSError, ValueError):
                continue  # unreadable: the file listener would dead-letter it; it stays in the files
            self._insert("events_waiting", """INSERT INTO cxslack_events (event_id, order_key, envelope, received_by)
                VALUES (%s, %s, %s, 'state copy')""", [pending.event_id, order_key(envelope), raw])  # fmt: skip
        for path in sorted((inbox.root / "dead").glob("*.json")):
            try:
                doc = json.loads(path.read_bytes())
                event_id = str(doc["event_id"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            envelope = doc.get("envelope")
            self._insert("dead_letters", """INSERT INTO cxslack_events (event_id, order_key, state, envelope,
                finished_at, finished_by, error) VALUES (%s, %s, 'dead-letter', %s, to_timestamp(%s), 'state copy', %s)""",
                [event_id, order_key(envelope) if isinstance(envelope, dict) else "",
                 json.dumps(envelope).encode() if envelope is not None else None,
                 float(doc.get("failed_at") or 0), str(doc.get("error") or "")])  # fmt: skip
