"""The shared parts of `State` in PostgreSQL: Case threads and settings, the sync ledger, previews,
tokens and Slack pacing. Each operation is one statement (or one short transaction); the
exclusive sections (`turn`, `claim`) are session-level advisory locks held on a pinned connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cxslack.state.local import HeldReply
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
    thread_key,
)

if TYPE_CHECKING:
    from cxslack.credentials import IntegrationSecrets, TokenSet
    from cxslack.store import Store


def _now() -> str:
    from cxslack.model import utc_now

    return utc_now()


class PgCaseThreads:
    _COLUMNS = "case_id, connector, channel, ts, integration, case_name, pending_channels, updated"

    def __init__(self, db: Database):
        self.db = db

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
        with self.db.connection() as connection:
            return list(
                connection.execute(
                    f"SELECT {self._COLUMNS} FROM cxslack_case_threads WHERE {where} ORDER BY case_id, connector",
                    params,
                )
            )

    def get(self, case_id: str, connector: str) -> CaseThread | PendingRoot | None:
        rows = self._select("case_id = %s AND connector = %s", [case_id, connector])
        return self._thread(rows[0]) if rows else None

    def mark_pending(self, case_id: str, connector: str, channels: list[str]) -> None:
        self._put(case_id, connector, None, None, None, None, channels, _now())

    def map(self, thread: CaseThread) -> None:
        self._put(thread.case_id, thread.connector, thread.channel, thread.ts, thread.integration,
                  thread.case_name, None, _now())  # fmt: skip

    def _put(self, *values: Any) -> None:
        with self.db.connection() as connection:
            connection.execute(
                f"""INSERT INTO cxslack_case_threads ({self._COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (case_id, connector) DO UPDATE SET channel = EXCLUDED.channel, ts = EXCLUDED.ts,
                    integration = EXCLUDED.integration, case_name = EXCLUDED.case_name,
                    pending_channels = EXCLUDED.pending_channels, updated = EXCLUDED.updated""",
                list(values),
            )

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


class PgChannelBook:
    """Learned channel IDs, shared: what one replica's post taught, every replica uses. An ID once
    read is kept for the process (IDs do not change under it), as with files."""

    def __init__(self, db: Database):
        self.db = db
        self._known: dict[tuple[str, str], LearnedChannel] = {}

    def get(self, integration: str, name: str) -> LearnedChannel | None:
        known = self._known.get((integration, name))
        if known is not None:
            return known
        with self.db.connection() as connection:
            row = connection.execute(
                "SELECT id, error, at FROM cxslack_slack_channels WHERE integration = %s AND name = %s",
                [integration, name],
            ).fetchone()
        found = LearnedChannel.from_json(name, {"id": row[0], "error": row[1], "at": row[2]}) if row else None
        if found is not None and found.id:
            self._known[(integration, name)] = found
        return found

    def _set(self, integration: str, name: str, entry: LearnedChannel) -> None:
        with self.db.connection() as connection:
            connection.execute(
                """INSERT INTO cxslack_slack_channels (integration, name, id, error, at) VALUES (%s, %s, %s, %s, %s)
                ON CONFLICT (integration, name) DO UPDATE SET id = EXCLUDED.id, error = EXCLUDED.error, at = EXCLUDED.at""",
                [integration, name, entry.id, entry.error, entry.at],
            )
        self._known.pop((integration, name), None)

    def learn(self, integration: str, name: str, channel_id: str) -> None:
        self._set(integration, name, LearnedChannel(name, id=channel_id, at=_now()))

    def refused(self, integration: str, name: str, error: str) -> None:
        self._set(integration, name, LearnedChannel(name, error=error, at=_now()))

    def forget(self, integration: str, name: str) -> None:
        with self.db.connection() as connection:
            connection.execute(
                "DELETE FROM cxslack_slack_channels WHERE integration = %s AND name = %s", [integration, name]
            )
        self._known.pop((integration, name), None)


class PgPostsInDoubt:
    """Posts whose outcome is unknown, shared: a replica's rerun settles what another left in doubt."""

    def __init__(self, db: Database):
        self.db = db

    def get(self, purpose: str) -> InDoubtPost | None:
        with self.db.connection() as connection:
            row = connection.execute(
                "SELECT post FROM cxslack_posts_in_doubt WHERE purpose = %s", [purpose]
            ).fetchone()
        return InDoubtPost.from_json(purpose, row[0]) if row else None

    def record(self, post: InDoubtPost) -> None:
        with self.db.connection() as connection:
            connection.execute(
                """INSERT INTO cxslack_posts_in_doubt (purpose, post) VALUES (%s, %s)
                ON CONFLICT (purpose) DO UPDATE SET post = EXCLUDED.post""",
                [post.purpose, json.dumps(post.to_json())],
            )

    def settle(self, purpose: str) -> None:
        with self.db.connection() as connection:
            connection.execute("DELETE FROM cxslack_posts_in_doubt WHERE purpose = %s", [purpose])

    def all(self) -> list[InDoubtPost]:
        with self.db.connection() as connection:
            rows = connection.execute(
                "SELECT purpose, post FROM cxslack_posts_in_doubt ORDER BY purpose"
            ).fetchall()
        posts = (InDoubtPost.from_json(purpose, post) for purpose, post in rows)
        return [p for p in posts if p is not None]


class PgCaseSettings:
    def __init__(self, db: Database):
        self.db = db

    def get(self, *refs: str | None) -> CaseSettings:
        wanted = [str(r) for r in refs if r]
        if not wanted:
            return CaseSettings()
        with self.db.connection() as connection:
            rows = connection.execute(
                "SELECT ref, reply_mode, mute_sync, case_actions FROM cxslack_case_settings WHERE ref = ANY(%s)",
                [wanted],
            )
            saved = {ref: CaseSettings(mode, mute, buttons) for ref, mode, mute, buttons in rows}
        merged = CaseSettings()
        for ref in wanted:
            merged = saved.get(ref, CaseSettings()).over(merged)
        return merged

    def update(self, ref: str, changes: CaseSettings) -> CaseSettings:
        with self.db.connection() as connection:
            mode, mute, buttons = connection.execute(
                """INSERT INTO cxslack_case_settings AS s (ref, reply_mode, mute_sync, case_actions)
                VALUES (%s, %s, %s, %s)
                ON CONFLICT (ref) DO UPDATE SET reply_mode = coalesce(EXCLUDED.reply_mode, s.reply_mode),
                    mute_sync = coalesce(EXCLUDED.mute_sync, s.mute_sync),
                    case_actions = coalesce(EXCLUDED.case_actions, s.case_actions)
                RETURNING reply_mode, mute_sync, case_actions""",
                [ref, changes.reply_mode, changes.mute_sync, changes.case_actions],
            ).fetchone()
        return CaseSettings(mode, mute, buttons)


class PgSyncLedger:
    def __init__(self, db: Database):
        self.db = db

    @contextmanager
    def claim(self, channel: str, ts: str) -> Iterator[HeldReply]:
        with self.db.advisory_lock("reply", f"{channel}|{ts}"):
            yield HeldReply(self, channel, ts)

    def get(self, channel: str, ts: str) -> SyncedReply | None:
        with self.db.connection() as connection:
            row = connection.execute(
                "SELECT reply FROM cxslack_synced_replies WHERE channel = %s AND ts = %s", [channel, ts]
            ).fetchone()
        return SyncedReply.from_json(row[0]) if row else None

    def put(self, channel: str, ts: str, reply: SyncedReply) -> None:
        with self.db.connection() as connection:
            connection.execute(
                """INSERT INTO cxslack_synced_replies (channel, ts, reply) VALUES (%s, %s, %s)
                ON CONFLICT (channel, ts) DO UPDATE SET reply = EXCLUDED.reply""",
                [channel, ts, json.dumps(reply.to_json())],
            )

    def drop(self, channel: str, ts: str) -> None:
        with self.db.connection() as connection:
            connection.execute(
                "DELETE FROM cxslack_synced_replies WHERE channel = %s AND ts = %s", [channel, ts]
            )

    def cursor(self, thread: str) -> str | None:
        with self.db.connection() as connection:
            row = connection.execute(
                "SELECT ts FROM cxslack_sync_cursors WHERE thread = %s", [thread]
            ).fetchone()
        return str(row[0]) if row else None

    def advance(self, thread: str, ts: str) -> None:
        float(ts)  # a ts that is not a number fails here, as with files, not in the database
        with self.db.connection() as connection:
            connection.execute(
                """INSERT INTO cxslack_sync_cursors AS c (thread, ts) VALUES (%s, %s)
                ON CONFLICT (thread) DO UPDATE SET ts = EXCLUDED.ts WHERE c.ts::numeric < EXCLUDED.ts::numeric""",
                [thread, ts],
            )

    def polled(self) -> None:
        mark(self.db, "last_poll", time.time())

    def last_poll(self) -> float | None:
        return read_mark(self.db, "last_poll")


def mark(db: Database, name: str, at: float) -> None:
    with db.connection() as connection:
        connection.execute(
            """INSERT INTO cxslack_marks AS m (name, at) VALUES (%s, %s)
            ON CONFLICT (name) DO UPDATE SET at = greatest(m.at, EXCLUDED.at)""",
            [name, at],
        )


def read_mark(db: Database, name: str) -> float | None:
    with db.connection() as connection:
        row = connection.execute("SELECT at FROM cxslack_marks WHERE name = %s", [name]).fetchone()
    return float(row[0]) if row else None


class _PgActionClaim:
    def __init__(self, db: Database, click: str):
        self._db, self._click = db, click
        with db.connection() as connection:
            row = connection.execute(
                "SELECT action FROM cxslack_case_actions WHERE click = %s", [click]
            ).fetchone()
        self._taken = TakenAction.from_json(row[0]) if row else None

    @property
    def taken(self) -> TakenAction | None:
        return self._taken

    def record(self, action: TakenAction) -> None:
        action = replace(action, at=time.time())
        with self._db.connection() as connection:
            connection.execute(
                """INSERT INTO cxslack_case_actions (click, action) VALUES (%s, %s)
                ON CONFLICT (click) DO UPDATE SET action = EXCLUDED.action, at = now()""",
                [self._click, json.dumps(action.to_json())],
            )
        self._taken = action

    def forget(self) -> None:
        with self._db.connection() as connection:
            connection.execute("DELETE FROM cxslack_case_actions WHERE click = %s", [self._click])
        self._taken = None


class PgActionLedger:
    """Clicks are kept by the digest of their key, as in the files (so `state copy` carries them)."""

    def __init__(self, db: Database):
        self.db = db

    @contextmanager
    def claim(self, key: str) -> Iterator[_PgActionClaim]:
        from cxslack.state.local import click_digest

        with self.db.advisory_lock("click", key):
            yield _PgActionClaim(self.db, click_digest(key))


class PgPreviewBook:
    def __init__(self, db: Database):
        self.db = db

    def of_case(self, case_key: str) -> list[PreviewPlace]:
        with self.db.connection() as connection:
            rows = connection.execute(
                "SELECT place FROM cxslack_previews WHERE case_key = %s ORDER BY placed_at", [case_key]
            )
            places = [PreviewPlace.from_json(place) for (place,) in rows]
        return [p for p in places if p is not None]

    def remember(self, case_key: str, place: PreviewPlace) -> None:
        with self.db.connection() as connection:
            connection.execute(
                """INSERT INTO cxslack_previews (case_key, channel, ts, url, place) VALUES (%s, %s, %s, %s, %s)
                ON CONFLICT (case_key, channel, ts, url)
                DO UPDATE SET place = EXCLUDED.place, placed_at = clock_timestamp()""",
                [case_key, *place.key, json.dumps(place.to_json())],
            )

    def shown(self, case_key: str, place: PreviewPlace) -> None:
        with self.db.connection() as connection:  # not forgotten meanwhile: no row, nothing to update
            connection.execute(
                "UPDATE cxslack_previews SET place = %s WHERE case_key = %s AND channel = %s AND ts = %s AND url = %s",
                [json.dumps(place.to_json()), case_key, *place.key],
            )


class PgChartBook:
    def __init__(self, db: Database):
        self.db = db

    def get(self, key: str) -> ChartShare | None:
        with self.db.connection() as connection:
            row = connection.execute(
                "SELECT share FROM cxslack_chart_shares WHERE key = %s", [key]
            ).fetchone()
        return ChartShare.from_json(key, row[0]) if row else None

    def record(self, share: ChartShare) -> None:
        with self.db.connection() as connection:
            connection.execute(
                """INSERT INTO cxslack_chart_shares (key, share) VALUES (%s, %s)
                ON CONFLICT (key) DO UPDATE SET share = EXCLUDED.share, at = now()""",
                [share.key, json.dumps(share.to_json())],
            )

    def forget(self, key: str) -> None:
        with self.db.connection() as connection:
            connection.execute("DELETE FROM cxslack_chart_shares WHERE key = %s", [key])


class PgTokens:
    """Rotating tokens live in the database once any process refreshed (or installed) them; each
    process's credentials.toml is the starting point, and whichever token expires later wins. A
    refresh holds the rows FOR UPDATE, so the replicas that find a token due wait for the one that
    refreshes it, then use what it got. Tokens that do not rotate never touch the database."""

    def __init__(self, db: Database, store: Store):
        self.db = db
        self.store = store

    def current(self, integration_id: str) -> IntegrationSecrets:
        from cxslack.credentials import read_secrets

        secrets = read_secrets(self.store, integration_id)
        if not _rotating(secrets):
            return secrets
        with self.db.connection() as connection:
            rows = list(connection.execute(_SELECT_TOKENS, [integration_id]))
        return _newest(secrets, rows)

    def refresh(
        self, integration_id: str, renew: Callable[[IntegrationSecrets], IntegrationSecrets]
    ) -> IntegrationSecrets:
        from cxslack.credentials import read_secrets

        local = read_secrets(self.store, integration_id)
        with self.db.pinned() as connection, connection.transaction():
            for kind, tokens in _kinds(local):  # rows to lock, even before anyone refreshed
                connection.execute(
                    _INSERT_TOKENS + " ON CONFLICT DO NOTHING", _row(integration_id, kind, tokens)
                )
            rows = list(connection.execute(_SELECT_TOKENS + " FOR UPDATE", [integration_id]))
            latest = _newest(local, rows)
            renewed = renew(latest)
            for kind, tokens in _kinds(renewed):
                connection.execute(_UPSERT_TOKENS, _row(integration_id, kind, tokens))
        self._keep_locally(integration_id, renewed)
        return renewed

    def installed(self, integration_id: str, secrets: IntegrationSecrets) -> None:
        with self.db.connection() as connection:
            connection.execute("DELETE FROM cxslack_slack_tokens WHERE integration_id = %s", [integration_id])
            for kind, tokens in _kinds(secrets):
                connection.execute(_UPSERT_TOKENS, _row(integration_id, kind, tokens))

    def _keep_locally(self, integration_id: str, secrets: IntegrationSecrets) -> None:
        """credentials.toml follows, so this machine's other commands start from the newest."""
        from cxslack.credentials import read_secrets, write_secrets

        with self.store.transaction() as docs:
            write_secrets(docs, integration_id, _newest(read_secrets(docs, integration_id), [
                (kind, t.access_token, t.refresh_token, t.expires_at, t.scopes) for kind, t in _kinds(secrets)
            ]))  # fmt: skip


_SELECT_TOKENS = """SELECT kind, access_token, refresh_token, expires_at, scopes FROM cxslack_slack_tokens
    WHERE integration_id = %s ORDER BY kind"""
_INSERT_TOKENS = """INSERT INTO cxslack_slack_tokens (integration_id, kind, access_token, refresh_token, expires_at,
    scopes) VALUES (%s, %s, %s, %s, %s, %s)"""
_UPSERT_TOKENS = (
    _INSERT_TOKENS
    + """ ON CONFLICT (integration_id, kind) DO UPDATE SET access_token = EXCLUDED.access_token,
    refresh_token = EXCLUDED.refresh_token, expires_at = EXCLUDED.expires_at, scopes = EXCLUDED.scopes,
    updated_at = now()"""
)


def _rotating(secrets: IntegrationSecrets) -> bool:
    return any(t is not None and t.refresh_token for t in (secrets.bot, secrets.user))


def _kinds(secrets: IntegrationSecrets) -> list[tuple[str, TokenSet]]:
    """The rotating token sets: the only ones the database keeps."""
    return [
        (k, t) for k, t in (("bot", secrets.bot), ("user", secrets.user)) if t is not None and t.refresh_token
    ]


def _row(integration_id: str, kind: str, tokens: TokenSet) -> list[Any]:
    return [integration_id, kind, tokens.access_token, tokens.refresh_token, tokens.expires_at, tokens.scopes]


def _newest(secrets: IntegrationSecrets, rows: list[Any]) -> IntegrationSecrets:
    """`secrets` with each token set of `rows` (the database's) that expires no earlier than the
    local one: on a tie the database wins, since every refresh is written there first."""
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
