"""The shared parts of `State` in PostgreSQL: Case threads and settings, the sync ledger, previews,
clicks, charts, posts in doubt, learned channels, tokens and Slack pacing. Each operation is one
statement (or one short transaction); the exclusive sections (`turn`, `claim`) are session-level
advisory locks held on a pinned connection. Each table's columns are spelled once (`Table`), with
the function that makes a record its row: `state copy` (copy.py) writes with the same ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from cxslack.state.claims import HeldClick, HeldReply
from cxslack.state.postgres.db import Database
from cxslack.state.postgres.sealing import ACCESS_TOKEN, REFRESH_TOKEN, SealedColumn, Sealer, SecretUnreadable
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
    click_digest,
    reply_key,
    thread_key,
)

if TYPE_CHECKING:
    from cxslack.credentials import IntegrationSecrets, TokenSet
    from cxslack.store import Store


K = TypeVar("K", InDoubtPost, ChartShare)


def _now() -> str:
    from cxslack.model import utc_now

    return utc_now()


@dataclass(frozen=True)
class Table:
    """A table's key and value columns: the statements the books and `state copy` both write with,
    so a column list is spelled once."""

    name: str
    key: tuple[str, ...]
    values: tuple[str, ...]
    touch: str = ""  # what a replace sets besides the values ("at = now()")

    @property
    def columns(self) -> str:
        return ", ".join(self.key + self.values)

    def _insert(self) -> str:
        marks = ", ".join(["%s"] * (len(self.key) + len(self.values)))
        return (
            f"INSERT INTO {self.name} ({self.columns}) VALUES ({marks}) ON CONFLICT ({', '.join(self.key)})"
        )

    def replace(self) -> str:
        """Insert the row, or replace the values of the row with its key."""
        sets = [f"{c} = EXCLUDED.{c}" for c in self.values] + ([self.touch] if self.touch else [])
        return f"{self._insert()} DO UPDATE SET {', '.join(sets)}"

    def add(self) -> str:
        """Insert the row unless one with its key is there: a row `RETURNING 1` when inserted."""
        return f"{self._insert()} DO NOTHING RETURNING 1"

    def merge(self) -> str:
        """Insert the row, or set the values it gives (not NULL) on the row with its key, keeping the
        others; returning the values the row has now."""
        sets = [f"{c} = coalesce(EXCLUDED.{c}, {self.name}.{c})" for c in self.values]
        return f"{self._insert()} DO UPDATE SET {', '.join(sets)} RETURNING {', '.join(self.values)}"


THREADS = Table("cxslack_case_threads", ("case_id", "connector"),
                ("channel", "ts", "integration", "case_name", "pending_channels", "updated"))  # fmt: skip
SETTINGS = Table("cxslack_case_settings", ("ref",), ("reply_mode", "mute_sync", "case_actions"))
REPLIES = Table("cxslack_synced_replies", ("channel", "ts"), ("reply",))
PREVIEWS = Table("cxslack_previews", ("case_key", "channel", "ts", "url"), ("place",),
                 touch="placed_at = clock_timestamp()")  # fmt: skip
ACTIONS = Table("cxslack_case_actions", ("click",), ("action", "at"))
CHANNELS = Table("cxslack_slack_channels", ("integration", "name"), ("id", "error", "at"))
IN_DOUBT = Table("cxslack_posts_in_doubt", ("purpose",), ("post",))
CHARTS = Table("cxslack_chart_shares", ("key",), ("share",), touch="at = now()")
TOKENS = Table("cxslack_slack_tokens", ("integration_id", "kind"),
               ("access_token", "refresh_token", "expires_at", "scopes"), touch="updated_at = now()")  # fmt: skip


def thread_row(thread: CaseThread | PendingRoot) -> list[Any]:
    if isinstance(thread, PendingRoot):
        return [
            thread.case_id,
            thread.connector,
            None,
            None,
            None,
            None,
            list(thread.channels),
            thread.updated,
        ]
    return [thread.case_id, thread.connector, thread.channel, thread.ts, thread.integration,
            thread.case_name, None, thread.updated]  # fmt: skip


def settings_row(ref: str, settings: CaseSettings) -> list[Any]:
    return [ref, settings.reply_mode, settings.mute_sync, settings.case_actions]


def reply_row(channel: str, ts: str, reply: SyncedReply) -> list[Any]:
    return [channel, ts, json.dumps(reply.to_json())]


def preview_row(case_key: str, place: PreviewPlace) -> list[Any]:
    return [case_key, *place.key, json.dumps(place.to_json())]


def action_row(click: str, action: TakenAction) -> list[Any]:
    from datetime import UTC, datetime

    return [click, json.dumps(action.to_json()), datetime.fromtimestamp(action.at or 0, UTC)]


def channel_row(integration: str, learned: LearnedChannel) -> list[Any]:
    return [integration, learned.name, learned.id, learned.error, learned.at]


def keyed_row(record: InDoubtPost | ChartShare) -> list[Any]:
    return [record.key, json.dumps(record.to_json())]


def advance_cursor(connection: Any, thread: str, ts: str) -> bool:
    """Move a `cxslack sync` cursor forward (never back); True when it moved."""
    moved = connection.execute(
        """INSERT INTO cxslack_sync_cursors AS c (thread, ts) VALUES (%s, %s)
        ON CONFLICT (thread) DO UPDATE SET ts = EXCLUDED.ts WHERE c.ts::numeric < EXCLUDED.ts::numeric
        RETURNING 1""",
        [thread, ts],
    ).fetchone()
    return moved is not None


def set_mark(connection: Any, name: str, at: float) -> None:
    """A moment to remember (the last `cxslack sync` pass), never moved back."""
    connection.execute(
        """INSERT INTO cxslack_marks AS m (name, at) VALUES (%s, %s)
        ON CONFLICT (name) DO UPDATE SET at = greatest(m.at, EXCLUDED.at)""",
        [name, at],
    )


class _Book:
    def __init__(self, db: Database):
        self.db = db

    def _write(self, sql: str, params: list[Any]) -> None:
        with self.db.connection() as connection:
            connection.execute(sql, params)

    def _one(self, sql: str, params: list[Any]) -> Any:
        with self.db.connection() as connection:
            return connection.execute(sql, params).fetchone()

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[Any]:
        with self.db.connection() as connection:
            return connection.execute(sql, params or []).fetchall()


class PgCaseThreads(_Book):
    @contextmanager
    def turn(self, case_id: str, connector: str) -> Iterator[None]:
        with self.db.advisory_lock("case-thread", thread_key(case_id, connector)):
            yield

    @staticmethod
    def _thread(row: Any) -> CaseThread | PendingRoot | None:
        case_id, connector, channel, ts, integration, case_name, pending, updated = row
        if pending is not None:
            return PendingRoot(case_id, connector, tuple(pending), updated)
        if not (channel and ts and integration):
            return None
        return CaseThread(case_id, connector, channel, ts, integration, case_name, updated)

    def _select(self, where: str, params: list[Any]) -> list[Any]:
        return self._rows(
            f"SELECT {THREADS.columns} FROM {THREADS.name} WHERE {where} ORDER BY case_id, connector", params
        )

    def get(self, case_id: str, connector: str) -> CaseThread | PendingRoot | None:
        rows = self._select("case_id = %s AND connector = %s", [case_id, connector])
        return self._thread(rows[0]) if rows else None

    def mark_pending(self, case_id: str, connector: str, channels: list[str]) -> None:
        self._write(THREADS.replace(), thread_row(PendingRoot(case_id, connector, tuple(channels), _now())))

    def map(self, thread: CaseThread) -> None:
        self._write(THREADS.replace(), thread_row(replace(thread, updated=_now())))

    def _mapped(self, where: str = "TRUE", params: list[Any] | None = None) -> list[CaseThread]:
        rows = self._select(f"pending_channels IS NULL AND ({where})", params or [])
        return [t for t in map(self._thread, rows) if isinstance(t, CaseThread)]

    def all(self) -> list[CaseThread]:
        return self._mapped()

    def of_case(self, case_id: str) -> list[CaseThread]:
        return self._mapped("case_id = %s", [case_id])

    def at(self, channel: str, ts: str) -> CaseThread | None:
        found = self._mapped("channel = %s AND ts = %s", [channel, ts])
        return found[0] if found else None


class PgChannelBook(_Book):
    """Learned channel IDs, shared: what one replica's post taught, every replica uses. An ID once
    read is kept for the process (IDs do not change under it), as with files."""

    def __init__(self, db: Database):
        super().__init__(db)
        self._known: dict[tuple[str, str], LearnedChannel] = {}

    def get(self, integration: str, name: str) -> LearnedChannel | None:
        known = self._known.get((integration, name))
        if known is not None:
            return known
        row = self._one(f"SELECT id, error, at FROM {CHANNELS.name} WHERE integration = %s AND name = %s",
                        [integration, name])  # fmt: skip
        found = LearnedChannel.from_json(name, {"id": row[0], "error": row[1], "at": row[2]}) if row else None
        if found is not None and found.id:
            self._known[(integration, name)] = found
        return found

    def _set(self, integration: str, entry: LearnedChannel) -> None:
        self._write(CHANNELS.replace(), channel_row(integration, entry))
        self._known.pop((integration, entry.name), None)

    def learn(self, integration: str, name: str, channel_id: str) -> None:
        self._set(integration, LearnedChannel(name, id=channel_id, at=_now()))

    def refused(self, integration: str, name: str, error: str) -> None:
        self._set(integration, LearnedChannel(name, error=error, at=_now()))

    def forget(self, integration: str, name: str) -> None:
        self._write(f"DELETE FROM {CHANNELS.name} WHERE integration = %s AND name = %s", [integration, name])
        self._known.pop((integration, name), None)


class _PgRecords(_Book, Generic[K]):
    """Records by key in a table of (key, the record's JSON)."""

    def __init__(self, db: Database, table: Table, read: Callable[[str, Any], K | None]):
        super().__init__(db)
        self._table = table
        self._key, self._doc = table.key[0], table.values[0]
        self._read: Callable[[str, Any], K | None] = read

    def get(self, key: str) -> K | None:
        row = self._one(f"SELECT {self._doc} FROM {self._table.name} WHERE {self._key} = %s", [key])
        return self._read(key, row[0]) if row else None

    def record(self, record: K) -> None:
        self._write(self._table.replace(), keyed_row(record))

    def drop(self, key: str) -> None:
        self._write(f"DELETE FROM {self._table.name} WHERE {self._key} = %s", [key])

    def all(self) -> list[K]:
        rows = self._rows(f"SELECT {self._key}, {self._doc} FROM {self._table.name} ORDER BY {self._key}")
        records = (self._read(key, doc) for key, doc in rows)
        return [r for r in records if r is not None]


class PgPostsInDoubt(_PgRecords[InDoubtPost]):
    """Posts whose outcome is unknown, shared: a replica's rerun settles what another left in doubt."""

    settle = _PgRecords.drop


class PgChartBook(_PgRecords[ChartShare]):
    forget = _PgRecords.drop


class PgCaseSettings(_Book):
    def get(self, *refs: str | None) -> CaseSettings:
        wanted = [str(r) for r in refs if r]
        if not wanted:
            return CaseSettings()
        rows = self._rows(f"SELECT {SETTINGS.columns} FROM {SETTINGS.name} WHERE ref = ANY(%s)", [wanted])
        saved = {ref: CaseSettings(mode, mute, buttons) for ref, mode, mute, buttons in rows}
        merged = CaseSettings()
        for ref in wanted:
            merged = saved.get(ref, CaseSettings()).over(merged)
        return merged

    def update(self, ref: str, changes: CaseSettings) -> CaseSettings:
        return CaseSettings(*self._one(SETTINGS.merge(), settings_row(ref, changes)))


class PgSyncLedger(_Book):
    @contextmanager
    def claim(self, channel: str, ts: str) -> Iterator[HeldReply]:
        with self.db.advisory_lock("reply", reply_key(channel, ts)):
            yield HeldReply(
                self.get(channel, ts), partial(self.put, channel, ts), partial(self.drop, channel, ts)
            )

    def get(self, channel: str, ts: str) -> SyncedReply | None:
        row = self._one(f"SELECT reply FROM {REPLIES.name} WHERE channel = %s AND ts = %s", [channel, ts])
        return SyncedReply.from_json(row[0]) if row else None

    def put(self, channel: str, ts: str, reply: SyncedReply) -> None:
        self._write(REPLIES.replace(), reply_row(channel, ts, reply))

    def drop(self, channel: str, ts: str) -> None:
        self._write(f"DELETE FROM {REPLIES.name} WHERE channel = %s AND ts = %s", [channel, ts])

    def cursor(self, thread: str) -> str | None:
        row = self._one("SELECT ts FROM cxslack_sync_cursors WHERE thread = %s", [thread])
        return str(row[0]) if row else None

    def advance(self, thread: str, ts: str) -> None:
        float(ts)  # a ts that is not a number fails here, as with files, not in the database
        with self.db.connection() as connection:
            advance_cursor(connection, thread, ts)

    def polled(self) -> None:
        with self.db.connection() as connection:
            set_mark(connection, "last_poll", time.time())

    def last_poll(self) -> float | None:
        row = self._one("SELECT at FROM cxslack_marks WHERE name = %s", ["last_poll"])
        return float(row[0]) if row else None


class PgActionLedger(_Book):
    """Clicks are kept by the digest of their key, as in the files (so `state copy` carries them)."""

    @contextmanager
    def claim(self, key: str) -> Iterator[HeldClick]:
        click = click_digest(key)
        with self.db.advisory_lock("click", key):
            yield HeldClick(self.get(click), partial(self.put, click), partial(self.drop, click))

    def get(self, click: str) -> TakenAction | None:
        row = self._one(f"SELECT action FROM {ACTIONS.name} WHERE click = %s", [click])
        return TakenAction.from_json(row[0]) if row else None

    def put(self, click: str, action: TakenAction) -> None:
        self._write(ACTIONS.replace(), action_row(click, action))

    def drop(self, click: str) -> None:
        self._write(f"DELETE FROM {ACTIONS.name} WHERE click = %s", [click])


class PgPreviewBook(_Book):
    def of_case(self, case_key: str) -> list[PreviewPlace]:
        rows = self._rows(
            f"SELECT place FROM {PREVIEWS.name} WHERE case_key = %s ORDER BY placed_at", [case_key]
        )
        places = [PreviewPlace.from_json(place) for (place,) in rows]
        return [p for p in places if p is not None]

    def remember(self, case_key: str, place: PreviewPlace) -> None:
        self._write(PREVIEWS.replace(), preview_row(case_key, place))

    def shown(self, case_key: str, place: PreviewPlace) -> None:
        self._write(  # not forgotten meanwhile: no row, nothing to update
            f"UPDATE {PREVIEWS.name} SET place = %s WHERE case_key = %s AND channel = %s AND ts = %s AND url = %s",
            [json.dumps(place.to_json()), case_key, *place.key],
        )


class PgTokens:
    """Rotating tokens live in the database once any process refreshed (or installed) them, sealed
    (sealing.py); each process's credentials.toml is the starting point, and whichever token
    expires later wins. A refresh holds the rows FOR UPDATE, so the replicas that find a token due
    wait for the one that refreshes it, then use what it got. Tokens that do not rotate never
    touch the database."""

    def __init__(self, db: Database, store: Store, sealer: Sealer):
        self.db = db
        self.store = store
        self.sealer = sealer

    def current(self, integration_id: str) -> IntegrationSecrets:
        from cxslack.credentials import read_secrets

        secrets = read_secrets(self.store, integration_id)
        if not _rotating(secrets):
            return secrets
        with self.db.connection() as connection:
            return _newest(secrets, self._select(connection, integration_id))

    def refresh(
        self, integration_id: str, renew: Callable[[IntegrationSecrets], IntegrationSecrets]
    ) -> IntegrationSecrets:
        from cxslack.credentials import read_secrets

        local = read_secrets(self.store, integration_id)
        self.sealer.check()
        with self.db.pinned() as connection, connection.transaction():
            for kind, tokens in _kinds(local):  # rows to lock, even before anyone refreshed
                connection.execute(TOKENS.add(), self._row(integration_id, kind, tokens))
            latest = _newest(local, self._select(connection, integration_id, lock=True))
            renewed = renew(latest)
            for kind, tokens in _kinds(renewed):
                connection.execute(TOKENS.replace(), self._row(integration_id, kind, tokens))
        self._keep_locally(integration_id, renewed)
        return renewed

    def installed(self, integration_id: str, secrets: IntegrationSecrets) -> None:
        rows = [self._row(integration_id, kind, tokens) for kind, tokens in _kinds(secrets)]
        with self.db.connection() as connection:
            connection.execute(f"DELETE FROM {TOKENS.name} WHERE integration_id = %s", [integration_id])
            for row in rows:
                connection.execute(TOKENS.replace(), row)

    def _row(self, integration_id: str, kind: str, tokens: TokenSet) -> list[Any]:
        refresh = tokens.refresh_token
        return [integration_id, kind, self.sealer.seal(tokens.access_token, ACCESS_TOKEN, integration_id, kind),
                self.sealer.seal(refresh, REFRESH_TOKEN, integration_id, kind) if refresh else None,
                tokens.expires_at, tokens.scopes]  # fmt: skip

    def _select(self, connection: Any, integration_id: str, *, lock: bool = False) -> list[_TokenRow]:
        rows = connection.execute(
            f"SELECT kind, access_token, refresh_token, expires_at, scopes FROM {TOKENS.name} "
            "WHERE integration_id = %s ORDER BY kind" + (" FOR UPDATE" if lock else ""),
            [integration_id],
        ).fetchall()
        return [(kind, self._open(access, ACCESS_TOKEN, integration_id, kind),
                 self._open(refresh, REFRESH_TOKEN, integration_id, kind) if refresh is not None else None,
                 expires_at, scopes) for kind, access, refresh, expires_at, scopes in rows]  # fmt: skip

    def _open(self, blob: Any, column: SealedColumn, integration_id: str, kind: str) -> str:
        try:
            return self.sealer.open(blob, column, integration_id, kind).decode()
        except SecretUnreadable as exc:
            raise SecretUnreadable(
                exc.code,
                exc.message,
                f"It is not used. Install the integration again to replace its tokens everywhere: cxslack "
                f"integrations authorize {integration_id}",
            ) from None

    def _keep_locally(self, integration_id: str, secrets: IntegrationSecrets) -> None:
        """credentials.toml follows, so this machine's other commands start from the newest."""
        from cxslack.credentials import read_secrets, write_secrets

        with self.store.transaction() as docs:
            write_secrets(docs, integration_id, _newest(read_secrets(docs, integration_id), [
                (kind, t.access_token, t.refresh_token, t.expires_at, t.scopes) for kind, t in _kinds(secrets)
            ]))  # fmt: skip


_TokenRow = tuple[str, str, "str | None", "int | None", "list[str] | None"]


def _rotating(secrets: IntegrationSecrets) -> bool:
    return any(t is not None and t.refresh_token for t in (secrets.bot, secrets.user))


def _kinds(secrets: IntegrationSecrets) -> list[tuple[str, TokenSet]]:
    """The rotating token sets: the only ones the database keeps."""
    return [
        (k, t) for k, t in (("bot", secrets.bot), ("user", secrets.user)) if t is not None and t.refresh_token
    ]


def _newest(secrets: IntegrationSecrets, rows: list[_TokenRow]) -> IntegrationSecrets:
    """`secrets` with each token set of `rows` (the database's, opened) that expires no earlier than
    the local one: on a tie the database wins, since every refresh is written there first."""
    from cxslack.credentials import IntegrationSecrets, TokenSet

    merged = IntegrationSecrets(secrets.bot, secrets.user, secrets.webhook_url)
    for kind, access, refresh, expires_at, scopes in rows:
        mine = getattr(merged, kind)
        if mine is None or (expires_at or 0) >= (mine.expires_at or 0):
            stored = TokenSet.from_toml(
                {
                    "access_token": access,
                    "refresh_token": refresh,
                    "expires_at": expires_at,
                    "scopes": scopes or [],
                }
            )
            setattr(merged, kind, stored)
    return merged


class PgPacing:
    """The Slack client's pacing (`cxslack.slack.pacing.Pacing`) in one table, on the database's clock
    so replicas on machines whose clocks differ still agree. One statement per call."""

    def __init__(self, db: Database):
        self.db = db

    def take(self, key: str, rate: float, burst: int) -> float:
        interval = 1.0 / rate
        with self.db.connection() as connection:
            (wait,) = connection.execute(
                """WITH now AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS at)
                INSERT INTO cxslack_slack_pacing AS p (key, next_at)
                SELECT %(key)s, now.at - (%(burst)s - 1) * %(interval)s + %(interval)s FROM now
                ON CONFLICT (key) DO UPDATE
                    SET next_at = greatest(p.next_at, p.held_until, EXCLUDED.next_at - %(interval)s) + %(interval)s
                RETURNING next_at - %(interval)s - extract(epoch FROM clock_timestamp())""",
                {"key": key, "burst": burst, "interval": interval},
            ).fetchone()
        return max(0.0, float(wait))

    def hold(self, key: str, seconds: float) -> None:
        with self.db.connection() as connection:
            connection.execute(
                """INSERT INTO cxslack_slack_pacing AS p (key, held_until)
                VALUES (%s, extract(epoch FROM clock_timestamp()) + %s)
                ON CONFLICT (key) DO UPDATE SET held_until = greatest(p.held_until, EXCLUDED.held_until)""",
                [key, seconds],
            )

    def held(self, key: str) -> float:
        with self.db.connection() as connection:
            row = connection.execute(
                "SELECT held_until - extract(epoch FROM clock_timestamp()) FROM cxslack_slack_pacing WHERE key = %s",
                [key],
            ).fetchone()
        return max(0.0, float(row[0])) if row else 0.0
