"""`State` in PostgreSQL: what `listen` replicas (and `sync`, `cases notify`) share.

    cxslack_events          the event inbox: dedupe by event_id, claims, dead letters   inbox.py
    cxslack_case_threads    (Case, connector) → root message, or a pending root          books.py
    cxslack_case_settings   per-Case reply mode, sync mute and buttons
    cxslack_synced_replies  (channel, ts) → the comment it became
    cxslack_sync_cursors    `cxslack sync`'s read position per thread; cxslack_marks: last poll
    cxslack_previews        where each Case's URL previews live
    cxslack_case_actions    Case actions taken from Slack buttons, one per click
    cxslack_chart_shares    alert evaluation charts shared into Case threads, one per trigger
    cxslack_slack_tokens    rotating tokens, refreshed under a row lock
    cxslack_slack_pacing    per-key Slack pacing and Retry-After holds
    cxslack_slack_channels  channel IDs learned from Slack's answers, per integration
    cxslack_posts_in_doubt  posts whose outcome is unknown, by purpose (settled before a resend)
    cxslack_state_key       the id of the key tokens and envelopes are sealed with (sealing.py)
    cxslack_schema          the migrations applied (schema.py)

What one machine's commands keep for themselves — the migration journals and access-log
checkpoints — stays in the files of the local state dir. psycopg is imported only here, only
when a postgresql:// state URL is in use (`pip install 'cxslack[postgres]'`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from cxslack.state.local import FileCheckpoint, FileState
from cxslack.state.postgres.books import (
    CHARTS,
    IN_DOUBT,
    PgActionLedger,
    PgCaseSettings,
    PgCaseThreads,
    PgChannelBook,
    PgChartBook,
    PgPacing,
    PgPostsInDoubt,
    PgPreviewBook,
    PgSyncLedger,
    PgTokens,
)
from cxslack.state.postgres.db import Database
from cxslack.state.postgres.inbox import PgInbox
from cxslack.state.postgres.sealing import Sealer
from cxslack.state.records import ChartShare, InDoubtPost

if TYPE_CHECKING:
    from cxslack.state.interface import EventInbox, MigrationJournal
    from cxslack.store import Store


class PgState:
    def __init__(self, db: Database, store: Store):
        self.db = db
        self.files = FileState(store.paths.state_dir, store)
        self.threads = PgCaseThreads(db)
        self.settings = PgCaseSettings(db)
        self.channels = PgChannelBook(db)
        self.in_doubt = PgPostsInDoubt(db, IN_DOUBT, InDoubtPost.from_json)
        self.ledger = PgSyncLedger(db)
        self.previews = PgPreviewBook(db)
        self.actions = PgActionLedger(db)
        self.charts = PgChartBook(db, CHARTS, ChartShare.from_json)
        self.sealer = Sealer(db, store)
        self.tokens = PgTokens(db, store, self.sealer)
        self.pacing = PgPacing(db)

    @property
    def migrations(self) -> MigrationJournal:
        return self.files.migrations

    @property
    def remote_migrations(self) -> MigrationJournal:
        return self.files.remote_migrations

    def checkpoint(self, integration_id: str, destination: str) -> FileCheckpoint:
        return self.files.checkpoint(integration_id, destination)

    def open_inbox(self) -> EventInbox:
        return PgInbox(self.db, self.sealer)

    def last_event_handled_at(self) -> float | None:
        with self.db.connection() as connection:
            (at,) = connection.execute(
                "SELECT extract(epoch FROM max(finished_at))::float8 FROM cxslack_events"
            ).fetchone()
        return float(at) if at is not None else None

    def listening(self) -> bool:
        """A replica's worker holds the listening lock (shared) while it runs: if it cannot be taken
        exclusively, some `cxslack listen` on this database is running."""
        from cxslack.state.postgres.inbox import LISTENING_LOCK

        with self.db.connection() as connection:
            (free,) = connection.execute("SELECT pg_try_advisory_lock(%s)", [LISTENING_LOCK]).fetchone()
            if free:
                connection.execute("SELECT pg_advisory_unlock(%s)", [LISTENING_LOCK])
        return not free


_DATABASES: dict[str, Database] = {}
_LOCK = threading.Lock()


def database(url: str) -> Database:
    """The process's one pool for `url`, checked to be at this cxslack's schema version when opened."""
    from cxslack.state.postgres.schema import require_current

    with _LOCK:
        db = _DATABASES.get(url)
        if db is None:
            db = Database(url)
            try:
                require_current(db)
            except BaseException:
                db.close()
                raise
            _DATABASES[url] = db
        return db


def postgres_state(url: str, store: Store) -> PgState:
    return PgState(database(url), store)


def close(url: str | None = None) -> None:
    """Close the pool for `url` (every pool when None); the next use opens a new one."""
    with _LOCK:
        for key in [url] if url is not None else list(_DATABASES):
            db = _DATABASES.pop(key, None) if key is not None else None
            if db is not None:
                db.close()
