"""Everything cxslack keeps besides config.toml and credentials.toml, behind one interface.

`interface` says what the domain needs (claim an event, record a comment once per Slack reply,
map a Case thread, checkpoint a cursor, append to a journal …); `records` are the typed records;
`local` keeps them in files under the state dir, the embedded default. Below that, the file
primitives everything (the config store included) goes through: `lock` (the one inter-process
lock), `files` (private directories, atomic writes, durable append-only logs, user-facing storage
errors) and `docs` (small JSON documents changed in locked transactions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cxslack.state.interface import State
    from cxslack.store import Store


def open_state(store: Store) -> State:
    """The state for this store's paths: files under its state dir."""
    from cxslack.state.local import FileState

    return FileState(store.paths.state_dir)
