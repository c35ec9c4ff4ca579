"""The one inter-process lock: an exclusive `flock` on a lock file.

flock belongs to an open file description: two opens of the same file, in two processes or two
threads of one, exclude each other, and a forked child holds what its parent held until both
have closed the descriptor (an access-log batch sent from a child relies on that). So a lock is
released by closing its descriptor, never by LOCK_UN, which would also release it for a child
still at work; and dying releases it too, so a killed cxslack never leaves a lock behind.

`FileLock` is not re-entrant: taking it again in the same thread waits forever. The store's
lock, taken by nested transactions, is wrapped in `ReentrantLock`.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class LockBusy(Exception):
    """A non-blocking acquire found the lock held by someone else."""


@contextmanager
def locked(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the lock at `path` (created 0600, its directory 0700); `on_wait()` runs once if it is
    held by someone else, before waiting for it (callers say "waiting for …")."""
    lock = FileLock(path)
    lock.acquire(on_wait=on_wait)
    try:
        yield
    finally:
        lock.release()


class FileLock:
    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, *, blocking: bool = True, on_wait: Callable[[], None] | None = None) -> None:
        """Take the lock; with `blocking=False` raise LockBusy instead of waiting."""
        from cxslack.state.files import ensure_private_dir, storage_error  # not needed to read config

        ensure_private_dir(self.path.parent)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise storage_error(exc, self.path) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not blocking:
                    raise LockBusy(str(self.path)) from None
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing releases it (see the module docstring)

    @property
    def held(self) -> bool:
        return self._fd is not None


class ReentrantLock:
    """A FileLock that the thread holding it may take again (nested transactions); other
    threads and processes wait as usual."""

    def __init__(self) -> None:
        self._rlock = threading.RLock()
        self._depth = 0
        self._lock: FileLock | None = None

    @contextmanager
    def hold(self, path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        with self._rlock:
            if self._depth == 0:
                lock = FileLock(path)
                lock.acquire(on_wait=on_wait)
                self._lock = lock
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._lock is not None:
                    self._lock.release()
                    self._lock = None
