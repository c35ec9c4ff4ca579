"""Secrets at rest in the state database: sealed with AES-256-GCM before they are written.

What is sealed (`SEALED`): each rotating Slack token, access and refresh, and every event
envelope `listen` keeps — Slack's payloads carry the app's verification `token`, a click's
`response_url` and `trigger_id` (bearer capabilities for 30 minutes) and what people wrote.
Nothing else in the database lets its reader act in Slack. A sealed value is

    b"\\x00cxs1" | key id (8 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext and tag

with its table, column and row key as associated data: a value copied into another row or column
does not open, and one changed in the database is refused, never used. A value that is not
sealed is refused too (nothing writes one; `state migrate` seals what an older cxslack wrote).

The key is HKDF-SHA256 of the Slack app's client secret: every replica that refreshes rotating
tokens holds it already, it is the same on all of them by construction, and the database never
holds it. CXSLACK_STATE_KEY (32+ characters, the same everywhere) takes its place when set — a
PKCE app has no client secret, or an operator wants the two apart. `cxslack_state_key` records
which key the database is sealed with; a process with another key refuses to seal or open
anything, naming both key ids and the fix. After the key changes (the client secret regenerated),
CXSLACK_STATE_PREVIOUS_KEY opens what the previous one sealed and `cxslack state migrate`
re-seals it with the new one; `state migrate --reset-key` forgets what no key at hand opens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cxslack.errors import CxError
from cxslack.redact import register_secret

if TYPE_CHECKING:
    from cxslack.state.postgres.db import Database
    from cxslack.store import Store

KEY_ENV = "CXSLACK_STATE_KEY"
PREVIOUS_KEY_ENV = "CXSLACK_STATE_PREVIOUS_KEY"
MIN_KEY_CHARS = 32  # a Slack client secret is 32 hex digits: as much as a key of one's own must have
MAGIC = b"\x00cxs1"  # no JSON document or Slack token starts with NUL
_ID, _NONCE, _TAG = 8, 12, 16
_SALT = b"cxslack state database"


@dataclass(frozen=True)
class SealedColumn:
    """A column whose values are sealed, its row key, and how `state migrate --reset-key` forgets a
    row whose value no key at hand opens (the statement takes the row key)."""

    table: str
    column: str
    key: tuple[str, ...]
    forget: str

    def aad(self, row: Sequence[str]) -> bytes:
        return "\0".join((self.table, self.column, *row)).encode()

    def describe(self, row: Sequence[str]) -> str:
        return f"{self.table}.{self.column} of {'/'.join(row)}"


_FORGET_TOKENS = "DELETE FROM cxslack_slack_tokens WHERE integration_id = %s AND kind = %s"
ACCESS_TOKEN = SealedColumn(
    "cxslack_slack_tokens", "access_token", ("integration_id", "kind"), _FORGET_TOKENS
)
REFRESH_TOKEN = SealedColumn(
    "cxslack_slack_tokens", "refresh_token", ("integration_id", "kind"), _FORGET_TOKENS
)
ENVELOPE = SealedColumn(
    "cxslack_events",
    "envelope",
    ("event_id",),
    """UPDATE cxslack_events SET envelope = NULL,
    state = CASE WHEN state = 'waiting' THEN 'dead-letter' ELSE state END, finished_at = coalesce(finished_at, now()),
    finished_by = coalesce(finished_by, 'state migrate'),
    error = coalesce(error, 'sealed with a key that is gone (state migrate --reset-key)') WHERE event_id = %s""",
)
SEALED = (ACCESS_TOKEN, REFRESH_TOKEN, ENVELOPE)  # fmt: skip


class StateKeyError(CxError):
    """This machine has no key for the database, or not the one it is sealed with: a matter of
    configuration, never of the data (an event it cannot open is left to a replica that can)."""


class SecretUnreadable(CxError, ValueError):
    """A stored value does not open with the key that sealed it (altered, damaged, moved to another
    row) or is not sealed at all: that value is refused."""


@dataclass(frozen=True)
class Key:
    id: bytes
    source: str  # where it comes from, for messages
    secret: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return self.id.hex()


def derive(material: str, source: str) -> Key:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def expand(info: bytes, length: int) -> bytes:
        return HKDF(hashes.SHA256(), length, _SALT, info).derive(material.encode())

    return Key(expand(b"cxslack state key id v1", _ID), source, expand(b"cxslack state sealing key v1", 32))


def key_id(blob: bytes) -> bytes | None:
    """The id of the key that sealed `blob`; None when it is not a sealed value."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _ID + _NONCE + _TAG:
        return None
    return blob[len(MAGIC) : len(MAGIC) + _ID]


def fingerprint(ident: bytes | None) -> str | None:
    return ident.hex() if ident is not None else None


class Keys:
    """This machine's key and, while one replaces another, the previous one."""

    def __init__(
        self, current: Key | None = None, previous: Key | None = None, problem: CxError | None = None
    ):
        self.current, self.previous, self.problem = current, previous, problem

    @classmethod
    def load(cls, store: Store) -> Keys:
        """CXSLACK_STATE_KEY, else the Slack app's client secret; CXSLACK_STATE_PREVIOUS_KEY."""
        from cxslack.credentials import client_secret

        current, problem = None, None
        own = os.environ.get(KEY_ENV, "")
        if own:
            register_secret(own)
            if len(own) < MIN_KEY_CHARS:
                problem = CxError(
                    "state_key_too_short",
                    f"{KEY_ENV} has {len(own)} characters; a key needs at least {MIN_KEY_CHARS}",
                    "Set it to one random value on every machine that uses the database, e.g. the output "
                    "of: openssl rand -base64 32 (or unset it to derive the key from the Slack app's client "
                    "secret).",
                )
            else:
                current = derive(own, KEY_ENV)
        else:
            secret, where = client_secret(store)
            if secret:
                current = derive(secret, f"the Slack app's client secret in {where}")
        previous = os.environ.get(PREVIOUS_KEY_ENV, "")
        register_secret(previous)
        return cls(current, derive(previous, PREVIOUS_KEY_ENV) if previous else None, problem)

    def find(self, ident: bytes | None) -> Key | None:
        return next((k for k in (self.current, self.previous) if k is not None and k.id == ident), None)

    def require(self, label: str) -> Key:
        if self.problem is not None:
            raise self.problem
        if self.current is None:
            raise StateKeyError(
                "state_key_missing",
                f"the state database {label} keeps Slack tokens and event payloads encrypted, and this "
                "machine has no key for them",
                "The key is derived from the Slack app's client secret: configure the one the other replicas "
                f"have (cxslack app configure, or CXSLACK_SLACK_CLIENT_SECRET). A PKCE app has none: set "
                f"{KEY_ENV} to one random value of {MIN_KEY_CHARS}+ characters on every machine that uses "
                "this database (openssl rand -base64 32).",
            )
        return self.current

    def mismatch(self, label: str, sealed_with: bytes, what: str = "") -> StateKeyError:
        mine = self.require(label)
        subject = f"{what} in the state database {label} is" if what else f"the state database {label} is"
        return StateKeyError(
            "state_key_mismatch",
            f"{subject} encrypted with key {sealed_with.hex()}, and this machine's key is {mine.fingerprint} "
            f"(from {mine.source})",
            f"Give this machine the client secret (or {KEY_ENV}) the other replicas have. If it changed on "
            f"purpose, set {PREVIOUS_KEY_ENV} to the previous one and run once: cxslack state migrate --state-url "
            f"{label} (it encrypts everything again with the new key). If the previous one is lost, add "
            "--reset-key (it forgets the shared tokens and waiting events the lost key encrypted; see the README).",
        )

    def seal(self, value: bytes, column: SealedColumn, row: Sequence[str], label: str) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key = self.require(label)
        nonce = os.urandom(_NONCE)
        return MAGIC + key.id + nonce + AESGCM(key.secret).encrypt(nonce, value, column.aad(row))

    def open(self, blob: bytes, column: SealedColumn, row: Sequence[str], label: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        what = column.describe(row)
        ident = key_id(blob)
        if ident is None:
            raise _unreadable(label, what, "it is not encrypted", "cxslack state migrate encrypts it")
        key = self.find(ident)
        if key is None:
            raise self.mismatch(label, ident, what)
        start = len(MAGIC) + _ID
        try:
            return AESGCM(key.secret).decrypt(
                blob[start : start + _NONCE], blob[start + _NONCE :], column.aad(row)
            )
        except InvalidTag:
            raise _unreadable(label, what, "it was changed in the database, damaged, or moved from another row",
                              "It is not used.") from None  # fmt: skip


def _unreadable(label: str, what: str, why: str, hint: str) -> SecretUnreadable:
    return SecretUnreadable(
        "state_secret_unreadable", f"{what} in the state database {label} cannot be decrypted: {why}", hint
    )


class Sealer:
    """Seals and opens one database's values with this machine's keys — once, per process, the
    database agrees they are its keys (`cxslack_state_key`; a database that records none takes
    this machine's)."""

    def __init__(self, db: Database, store: Store):
        self.db = db
        self._store = store
        self._keys: Keys | None = None

    @property
    def keys(self) -> Keys:
        if self._keys is None:
            self._keys = Keys.load(self._store)
        return self._keys

    def check(self) -> None:
        key = self.keys.require(self.db.label)
        if self.db.sealing_key == key.id:
            return
        with self.db.connection() as connection:
            connection.execute(
                "INSERT INTO cxslack_state_key (key_id) VALUES (%s) ON CONFLICT DO NOTHING", [key.id]
            )
            (sealed_with,) = connection.execute("SELECT key_id FROM cxslack_state_key").fetchone()
        if self.keys.find(bytes(sealed_with)) is None:
            raise self.keys.mismatch(self.db.label, bytes(sealed_with))
        self.db.sealing_key = key.id

    def seal(self, value: str | bytes, column: SealedColumn, *row: str) -> bytes:
        self.check()
        plain = value.encode() if isinstance(value, str) else value
        return self.keys.seal(plain, column, row, self.db.label)

    def open(self, blob: Any, column: SealedColumn, *row: str) -> bytes:
        self.check()
        return self.keys.open(bytes(blob), column, row, self.db.label)


@dataclass
class SealReport:
    """What `state migrate` did to the sealed columns."""

    sealed: int = 0  # plain text (written before sealing), now encrypted
    resealed: int = 0  # sealed with the previous key, now with this machine's
    forgotten: int = 0  # --reset-key: sealed with a key that is gone
    key: str | None = None  # the id of the key the database is sealed with now

    def to_json(self) -> dict[str, Any]:
        return {
            "sealed": self.sealed,
            "resealed": self.resealed,
            "forgotten": self.forgotten,
            "key": self.key,
        }


def reseal(connection: Any, keys: Keys, label: str, *, reset_key: bool = False) -> SealReport:
    """Bring every sealed column to this machine's key, in the caller's transaction: seal plain
    text, re-seal what the previous key sealed, and with `reset_key` forget what no key at hand
    opens (and record this machine's key whatever the database recorded). Idempotent: a database
    already sealed with this key is left as it is, and then no key is needed at all."""
    if keys.problem is not None:
        raise keys.problem
    row = connection.execute("SELECT key_id FROM cxslack_state_key").fetchone()
    recorded = bytes(row[0]) if row else None
    current = keys.current
    if current is not None and recorded is not None and not (keys.find(recorded) or reset_key):
        raise keys.mismatch(label, recorded)
    target = current.id if current is not None else recorded
    stale: list[tuple[SealedColumn, tuple[str, ...], bytes]] = []
    for column in SEALED:
        select = f"SELECT {', '.join(column.key)}, {column.column} FROM {column.table} WHERE {column.column} IS NOT NULL"
        for *ident, value in connection.execute(select).fetchall():
            if target is None or key_id(bytes(value)) != target:
                stale.append((column, tuple(str(i) for i in ident), bytes(value)))
    report = SealReport(key=fingerprint(target))
    if current is None:
        if stale or reset_key:
            keys.require(label)
        return report
    forgotten: set[tuple[str, tuple[str, ...]]] = set()
    for column, ident, blob in stale:
        if (column.table, ident) in forgotten:
            continue
        try:
            plain = blob if key_id(blob) is None else keys.open(blob, column, ident, label)
        except (StateKeyError, SecretUnreadable):
            if not reset_key:
                raise
            connection.execute(column.forget, list(ident))
            forgotten.add((column.table, ident))
            report.forgotten += 1
            continue
        match = " AND ".join(f"{k} = %s" for k in column.key)
        connection.execute(
            f"UPDATE {column.table} SET {column.column} = %s WHERE {match} AND {column.column} = %s",
            [keys.seal(plain, column, ident, label), *ident, blob],
        )
        if key_id(blob) is None:
            report.sealed += 1
        else:
            report.resealed += 1
    if recorded != current.id:
        connection.execute(
            """INSERT INTO cxslack_state_key (key_id) VALUES (%s)
            ON CONFLICT (one) DO UPDATE SET key_id = EXCLUDED.key_id, since = now()""",
            [current.id],
        )
    return report
