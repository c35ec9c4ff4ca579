"""One PostgreSQL database: a small psycopg 3 connection pool, advisory locks, and error mapping.

Every operation borrows a connection (autocommit) for one statement or one short transaction.
An exclusive section (`pinned`) keeps one connection for the thread until it ends, so the
session-level advisory lock it holds and every operation inside it share that connection: a
section never waits for a second connection while holding the first, and a process that dies
releases its locks with its connections.

psycopg's errors become cxslack's: connection trouble is `StateUnavailable` (listen answers 500,
Slack retries), a missing table says to run `cxslack state migrate`, a refused privilege names
what the role needs. The URL's password never reaches a message.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cxslack.errors import CxError, UsageError
from cxslack.redact import register_secret
from cxslack.state.interface import StateUnavailable

POOL_SIZE = 8  # per process: a listen replica's transports, its handler and `cases notify --workers`
CONNECT_TIMEOUT = 3  # seconds: Slack waits 3 s for an ack, so a database that does not answer is an error
POOL_TIMEOUT = 10.0  # seconds an operation waits for a free connection of the pool
QUICK_TIMEOUT = 2.0  # … when Slack waits for the answer (accepting an event), or a health check does
SCHEMES = ("postgresql", "postgres")


EXAMPLE_URL = "postgresql://db.internal:5432/cxslack?user=cxslack"


def check_url(url: str) -> str:
    """A postgresql:// URL (libpq's URI form); a password in it is registered with the redactor."""
    from urllib.parse import parse_qs

    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not (parts.netloc or parts.query or parts.path.strip("/")):
        raise UsageError(
            "invalid_state_url",
            f"a state URL is postgresql://HOST[:PORT]/DATABASE (libpq's URI form), not {safe_url(url)!r}",
            f"For example: --state-url {EXAMPLE_URL} (the password from PGPASSWORD or ~/.pgpass "
            "rather than the URL).",
        )
    register_secret(parts.password)
    for password in parse_qs(parts.query).get("password", []):
        register_secret(password)
    return url


def safe_url(url: str) -> str:
    """The URL for messages and `-o json`: user and password masked (as the redactor masks any
    credentials in a URL), a password query parameter too."""
    import re

    parts = urlsplit(url)
    netloc = f"****@{parts.netloc.rpartition('@')[2]}" if "@" in parts.netloc else parts.netloc
    query = re.sub(r"(^|&)password=[^&]*", r"\1password=****", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def lock_id(kind: str, key: str) -> int:
    """A bigint advisory-lock id for (kind, key). A collision only makes two keys take turns."""
    return int.from_bytes(hashlib.sha256(f"{kind}\0{key}".encode()).digest()[:8], "big", signed=True)


def replica_name() -> str:
    """Who did it, in the event table: host and process id."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def _driver() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise CxError(
            "postgres_driver_missing",
            "a postgresql:// state needs psycopg 3 and psycopg-pool, which are not installed",
            "Install the extra: pip install 'cxslack[postgres]'",
        ) from None
    return psycopg, psycopg_pool


class Database:
    """A connection pool on one database; `connection()` and `pinned()` hand out connections."""

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE):
        psycopg, psycopg_pool = _driver()
        _quiet_driver_logs()
        self.url = check_url(url)
        self.label = safe_url(url)
        self._psycopg = psycopg
        self._pool_errors = (psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed, psycopg.OperationalError,
                             psycopg.InterfaceError)  # fmt: skip
        self._local = threading.local()
        self.sealing_key: bytes | None = None  # the key id found to be the database's (sealing.py)
        self.pool = psycopg_pool.ConnectionPool(
            url,
            kwargs=connect_options(),
            min_size=1,
            max_size=pool_size,
            timeout=POOL_TIMEOUT,
            check=psycopg_pool.ConnectionPool.check_connection,  # a connection the server dropped is replaced
            # Give up reconnecting in the background after 2 s (instead of backing off for minutes):
            # the next request tries again at once, so a database that is back is used at once.
            reconnect_timeout=2.0,
            name="cxslack-state",
            configure=server_keepalives,
            open=False,
        )
        with self.errors():
            self.pool.open(wait=False)

    def connect(self) -> Any:
        """A connection of its own, outside the pool (the listen worker's claims, LISTEN, migrations);
        connecting fails with the server's own reason, not a pool timeout."""
        with self.errors():
            connection = self._psycopg.connect(self.url, **connect_options())
            server_keepalives(connection)
            return connection

    @contextmanager
    def connection(self, timeout: float = POOL_TIMEOUT) -> Iterator[Any]:
        """The thread's pinned connection inside an exclusive section, else one from the pool
        (waiting up to `timeout` seconds for one)."""
        pinned = getattr(self._local, "connection", None)
        if pinned is not None:
            with self.errors():
                yield pinned
            return
        with self.errors(), self.pool.connection(timeout=timeout) as connection:
            yield connection

    @contextmanager
    def pinned(self) -> Iterator[Any]:
        """Keep one connection for this thread until the block ends (nested blocks share it)."""
        if getattr(self._local, "connection", None) is not None:
            with self.connection() as connection:
                yield connection
            return
        with self.errors(), self.pool.connection() as connection:
            self._local.connection = connection
            try:
                yield connection
            finally:
                self._local.connection = None

    @contextmanager
    def advisory_lock(self, kind: str, key: str) -> Iterator[Any]:
        """A session-level advisory lock on (kind, key), waited for; released at the end or when this
        process's connection goes (a killed process holds nothing)."""
        ident = lock_id(kind, key)
        with self.pinned() as connection:
            with self.errors():
                connection.execute("SELECT pg_advisory_lock(%s)", [ident])
            try:
                yield connection
            finally:
                with suppress(*self._pool_errors):  # broken: the server released the lock with the session
                    connection.execute("SELECT pg_advisory_unlock(%s)", [ident])

    @contextmanager
    def errors(self) -> Iterator[None]:
        """psycopg's exceptions as cxslack's (others pass through untouched)."""
        psycopg = self._psycopg
        try:
            yield
        except self._pool_errors as exc:
            raise StateUnavailable(
                "state_unavailable",
                f"the state database {self.label} cannot be reached ({_first_line(exc)})",
                "Check that PostgreSQL is up and reachable from here, and the URL, user and password "
                "(PGPASSWORD or ~/.pgpass).",
            ) from None
        except psycopg.errors.UndefinedTable:
            raise CxError(
                "state_not_migrated",
                f"the state database {self.label} has no cxslack tables yet",
                f"Create them first: cxslack state migrate --state-url {self.label}",
            ) from None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise CxError(
                "state_permission_denied",
                f"the state database {self.label} refused: {_first_line(exc)}",
                "cxslack's role needs SELECT, INSERT, UPDATE and DELETE on the cxslack_ tables "
                "(and CREATE on the schema for `cxslack state migrate`); see the README.",
            ) from None
        except psycopg.Error as exc:
            raise CxError(
                "state_database_error", f"the state database {self.label} answered: {_first_line(exc)}"
            ) from None

    def close(self) -> None:
        self.pool.close(timeout=2.0)


def _quiet_driver_logs() -> None:
    """The pool logs each failed reconnect; cxslack reports the failure itself, once, as an error."""
    import logging

    logger = logging.getLogger("psycopg")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def server_keepalives(connection: Any) -> None:
    """The server's side of this session probes the socket too (10 s idle, then every 5 s, 3
    misses), so the claims and locks of a replica whose host vanished without closing its
    connections are released within about 25 s, not the kernel's two hours. (A killed process's
    connections close at once: nothing to wait for.)"""
    for name, value in (
        ("tcp_keepalives_idle", 10),
        ("tcp_keepalives_interval", 5),
        ("tcp_keepalives_count", 3),
    ):
        connection.execute(f"SET {name} = {value}")


def connect_options() -> dict[str, Any]:
    """libpq settings for every connection: autocommit, a connect timeout, and TCP keepalives so
    this side notices a database host that vanished."""
    return {
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT,
        "application_name": "cxslack",
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }


def _first_line(exc: BaseException) -> str:
    from cxslack.redact import redact

    text = str(exc).strip().splitlines()
    return redact(text[0]) if text else type(exc).__name__
