"""A throwaway PostgreSQL server for the session, and a fresh database per test.

`postgres` (session) runs initdb and postgres from Debian's package (or PATH) in a temp dir on a
free loopback port — as the `postgres` user when the tests run as root, since PostgreSQL refuses
to run as root — and stops it at the end. Without the binaries (or psycopg) the tests that need
it skip, saying why; with CXSLACK_TEST_REQUIRE_POSTGRES=1 (CI) they fail instead.
`pg_url` (per test) is a new empty database on that server, migrated unless the test says not.
`every_stored_value` / `assert_nowhere` read the raw rows of every table (what a database reader,
a backup or a replica of it holds) and check that no secret is among them in plain text.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRE_ENV = "CXSLACK_TEST_REQUIRE_POSTGRES"


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"PostgreSQL is required here ({REQUIRE_ENV}=1) but {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server for the tests: {reason}")


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    _names = itertools.count(1)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(sql)

    def new_database(self) -> str:
        name = f"cxslack_test_{os.getpid()}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[test]')")
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        _unavailable("initdb/pg_ctl not found (apt-get install postgresql)")
    as_root = os.geteuid() == 0
    if as_root:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no postgres user to run the server as")
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="cxslack-pg-"))
    if as_root:
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off -c max_connections=200"
    try:
        subprocess.run([*run_as, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start"],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        _unavailable(f"the throwaway server did not start: {exc} {detail.decode(errors='replace')[-300:]}")
    try:
        yield PostgresServer("127.0.0.1", port, "postgres")
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A new database, migrated to this cxslack's schema; pools opened on it close after the test."""
    from cxslack.state.postgres import close
    from cxslack.state.postgres.db import Database
    from cxslack.state.postgres.schema import migrate

    url = postgres.new_database()
    db = Database(url)
    try:
        migrate(db)
    finally:
        db.close()
    try:
        yield url
    finally:
        close()


def every_stored_value(url: str) -> Iterator[tuple[str, bytes]]:
    """Every text, bytea, JSON and array value of every cxslack_ table, as bytes."""
    import psycopg

    with psycopg.connect(url) as connection:
        columns = connection.execute(
            """SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name LIKE 'cxslack%'
              AND data_type IN ('text', 'bytea', 'json', 'jsonb', 'ARRAY', 'character varying')"""
        ).fetchall()
        assert {"cxslack_slack_tokens", "cxslack_events"} <= {t for t, _, _ in columns}
        for table, column, kind in columns:
            expression = column if kind == "bytea" else f"{column}::text"
            for (value,) in connection.execute(
                f"SELECT {expression} FROM {table} WHERE {column} IS NOT NULL"
            ):
                yield f"{table}.{column}", bytes(value) if kind == "bytea" else str(value).encode()


def assert_nowhere(url: str, *secrets: str) -> None:
    assert secrets and all(len(s) >= 16 for s in secrets)
    found = [
        (where, s[:12]) for where, value in every_stored_value(url) for s in secrets if s.encode() in value
    ]
    assert found == [], f"secrets stored in plain text: {found}"
