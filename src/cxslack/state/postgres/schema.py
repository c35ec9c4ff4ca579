"""The database schema, as numbered migrations applied in order by `cxslack state migrate`.

Each migration runs in its own transaction and is recorded in `cxslack_schema`; migrating takes an
advisory lock, so two replicas' deploy steps running it at once apply each migration once. A
database is used only at exactly the version this cxslack knows: older says to migrate, newer
says this cxslack is older than the database.

Migrating also brings the sealed columns (sealing.py) to this machine's key, every time: the
migration that introduced sealing encrypts what was stored in plain text before it, in its own
transaction, and a later `state migrate` re-encrypts what the previous key sealed. Nothing to
do, nothing written, and no key needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cxslack.errors import CxError
from cxslack.state.postgres.db import Database, lock_id
from cxslack.state.postgres.sealing import Keys, SealReport, reseal


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    seals: bool = False  # its transaction also seals what was stored in plain text before it


MIGRATIONS = (
    Migration(1, "event inbox, Case threads and settings, sync ledger, previews, tokens, Slack pacing", """
CREATE TABLE cxslack_events (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    order_key    text NOT NULL,
    state        text NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'handled', 'dead-letter')),
    envelope     bytea,
    received_at  timestamptz NOT NULL DEFAULT now(),
    received_by  text,
    finished_at  timestamptz,
    finished_by  text,
    error        text
);
CREATE INDEX cxslack_events_waiting ON cxslack_events (seq) WHERE state = 'waiting';
CREATE INDEX cxslack_events_waiting_key ON cxslack_events (order_key, seq) WHERE state = 'waiting';
CREATE INDEX cxslack_events_finished ON cxslack_events (finished_at) WHERE state = 'handled';

CREATE TABLE cxslack_case_threads (
    case_id          text NOT NULL,
    connector        text NOT NULL,
    channel          text,
    ts               text,
    integration      text,
    case_name        text,
    pending_channels text[],
    updated          text,
    PRIMARY KEY (case_id, connector)
);
CREATE INDEX cxslack_case_threads_root ON cxslack_case_threads (channel, ts);

CREATE TABLE cxslack_case_settings (
    ref        text PRIMARY KEY,
    reply_mode text,
    mute_sync  boolean
);

CREATE TABLE cxslack_synced_replies (
    channel text NOT NULL,
    ts      text NOT NULL,
    reply   jsonb NOT NULL,
    PRIMARY KEY (channel, ts)
);

CREATE TABLE cxslack_sync_cursors (
    thread text PRIMARY KEY,
    ts     text NOT NULL
);

CREATE TABLE cxslack_marks (
    name text PRIMARY KEY,
    at   double precision NOT NULL
);

CREATE TABLE cxslack_previews (
    case_key  text NOT NULL,
    channel   text NOT NULL,
    ts        text NOT NULL,
    url       text NOT NULL,
    place     jsonb NOT NULL,
    placed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (case_key, channel, ts, url)
);

CREATE TABLE cxslack_slack_tokens (
    integration_id text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('bot', 'user')),
    access_token   text NOT NULL,
    refresh_token  text,
    expires_at     bigint,
    scopes         text[],
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, kind)
);

CREATE TABLE cxslack_slack_pacing (
    key        text PRIMARY KEY,
    next_at    double precision NOT NULL DEFAULT 0,
    held_until double precision NOT NULL DEFAULT 0
);
"""),
    Migration(2, "Case actions taken from Slack buttons, one per click", """
CREATE TABLE cxslack_case_actions (
    click  text PRIMARY KEY,
    action jsonb NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cxslack_case_actions_at ON cxslack_case_actions (at);
"""),
    Migration(3, "channel IDs learned from Slack's answers, per integration", """
CREATE TABLE cxslack_slack_channels (
    integration text NOT NULL,
    name        text NOT NULL,
    id          text,
    error       text,
    at          text,
    PRIMARY KEY (integration, name)
);
"""),
    Migration(4, "posts whose outcome is unknown, by purpose", """
CREATE TABLE cxslack_posts_in_doubt (
    purpose text PRIMARY KEY,
    post    jsonb NOT NULL
);
"""),
    Migration(5, "per-Case buttons on and off (cases settings --case-actions/--no-case-actions)", """
ALTER TABLE cxslack_case_settings ADD COLUMN case_actions boolean;
"""),
    Migration(6, "alert evaluation charts shared into Case threads", """
CREATE TABLE cxslack_chart_shares (
    key   text PRIMARY KEY,
    share jsonb NOT NULL,
    at    timestamptz NOT NULL DEFAULT now()
);
"""),
    Migration(7, "rotating tokens and event envelopes encrypted (AES-256-GCM)", """
ALTER TABLE cxslack_slack_tokens
    ALTER COLUMN access_token TYPE bytea USING convert_to(access_token, 'UTF8'),
    ALTER COLUMN refresh_token TYPE bytea USING convert_to(refresh_token, 'UTF8');
CREATE TABLE cxslack_state_key (
    one    boolean PRIMARY KEY DEFAULT true CHECK (one),
    key_id bytea NOT NULL,
    since  timestamptz NOT NULL DEFAULT now()
);
""", seals=True),
)  # fmt: skip

LATEST = MIGRATIONS[-1].version
_MIGRATE_LOCK = lock_id("migrate", "cxslack")
_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS cxslack_schema (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


SEALED_SINCE = next(m.version for m in MIGRATIONS if m.seals)


@dataclass(frozen=True)
class MigrateResult:
    before: int
    after: int
    applied: list[Migration]
    secrets: SealReport | None = None  # None: the database is not yet at a version that seals


def current_version(connection: Any) -> int:
    """The version the database is at (0: no cxslack tables)."""
    exists = connection.execute("SELECT to_regclass('cxslack_schema') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    return int(connection.execute("SELECT coalesce(max(version), 0) FROM cxslack_schema").fetchone()[0])


def migrate(
    db: Database, keys: Keys | None = None, *, upto: int = LATEST, reset_key: bool = False
) -> MigrateResult:
    """Apply every migration the database lacks (up to version `upto`), each in its own
    transaction, under one lock (held by this connection's session: a migrate that dies mid-way
    holds nothing); then bring the sealed columns to `keys` (see `sealing.reseal`)."""
    keys = keys or Keys()
    secrets = None
    with db.connect() as connection, db.errors():
        connection.execute("SELECT pg_advisory_lock(%s)", [_MIGRATE_LOCK])
        connection.execute(_SCHEMA_TABLE)
        before = current_version(connection)
        if before > LATEST:
            raise newer_than_known(db, before)
        applied = []
        for migration in MIGRATIONS:
            if migration.version <= before or migration.version > upto:
                continue
            with connection.transaction():
                connection.execute(migration.sql)
                if migration.seals:
                    secrets = reseal(connection, keys, db.label, reset_key=reset_key)
                connection.execute(
                    "INSERT INTO cxslack_schema (version, name) VALUES (%s, %s)",
                    [migration.version, migration.name],
                )
            applied.append(migration)
        after = max(before, *(m.version for m in applied)) if applied else before
        if secrets is None and after >= SEALED_SINCE:
            with connection.transaction():
                secrets = reseal(connection, keys, db.label, reset_key=reset_key)
    return MigrateResult(before, after, applied, secrets)


def require_current(db: Database) -> None:
    """Refuse a database that is not at exactly this cxslack's version, saying what to do."""
    with db.connect() as connection, db.errors():
        version = current_version(connection)
    if version == LATEST:
        return
    if version > LATEST:
        raise newer_than_known(db, version)
    raise CxError(
        "state_not_migrated",
        f"the state database {db.label} is at schema version {version}; this cxslack needs {LATEST}",
        f"Migrate it first (safe to run from every replica): cxslack state migrate --state-url {db.label}",
    )


def newer_than_known(db: Database, version: int) -> CxError:
    return CxError(
        "state_schema_newer",
        f"the state database {db.label} is at schema version {version}, newer than this cxslack knows ({LATEST})",
        "Upgrade cxslack on this machine to the version the other replicas run.",
    )
