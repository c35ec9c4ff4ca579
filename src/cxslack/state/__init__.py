"""Everything cxslack keeps besides config.toml and credentials.toml, behind one interface.

`interface` says what the domain needs (claim an event, record a comment once per Slack reply,
map a Case thread, checkpoint a cursor, append to a journal …); `records` are the typed records;
`local` keeps them in files under the state dir, the embedded default; `postgres` keeps what
`listen` replicas share in a PostgreSQL database, chosen by a state URL (`--state-url`,
CXSLACK_STATE_URL). Below that, the file primitives everything (the config store included) goes
through: `lock` (the one inter-process lock), `files` (private directories, atomic writes,
durable append-only logs, user-facing storage errors) and `docs` (small JSON documents changed in
locked transactions).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cxslack.state.interface import State
    from cxslack.store import Store

STATE_URL_ENV = "CXSLACK_STATE_URL"
_selected: list[str | None] = []  # innermost `use_state_url` last


def state_url() -> str | None:
    """The state URL in force: the innermost `use_state_url`, else CXSLACK_STATE_URL, else None (files)."""
    for url in reversed(_selected):
        if url is not None:
            return url
    return os.environ.get(STATE_URL_ENV) or None


@contextmanager
def use_state_url(url: str | None) -> Iterator[None]:
    """Open state at `url` (None: as without this block) inside the block: the database is checked
    (reachable, at this cxslack's schema version) on the way in, and its pool closed at the end."""
    if url:
        from cxslack.state.postgres import database

        database(url)
    _selected.append(url or None)
    try:
        yield
    finally:
        _selected.pop()
        if url and url not in _selected:
            from cxslack.state.postgres import close

            close(url)


def open_state(store: Store) -> State:
    """The state for this store: in the PostgreSQL database of the state URL in force, else in
    files under its state dir."""
    url = state_url()
    if url:
        from cxslack.state.postgres import postgres_state

        return postgres_state(url, store)
    from cxslack.state.local import FileState

    return FileState(store.paths.state_dir, store)
