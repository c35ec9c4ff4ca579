"""The file primitives every byte cxslack keeps goes through.

- `ensure_private_dir`: directories cxslack creates are 0700 (parents too). A directory that
  already exists is never chmod-ed (CXSLACK_HOME=/tmp would break the host); if others can write
  to it, a warning says so (and `doctor` too).
- `atomic_write`: temp file in the same directory, full write, fsync, rename, fsync of the
  directory; the new content appears whole or not at all, and a failed write leaves the old file
  and no temp file. A writer holding the file's lock also removes temp files a killed writer
  left (`sweep=True`); nothing ever reads them.
- `JsonDoc`: a small JSON object changed only inside `transaction()`: lock, read fresh, change,
  write back atomically. Readers need no lock.
- `AppendLog`: durable append-only records, one per line: every byte written (short writes are
  continued), fsync'd, and the directory fsync'd when the file is created. A record cut short
  (a full disk, a crash mid-write) is removed again by the writer, or by the next one, and
  ignored by readers; so a record is never glued to the next.
- `storage_error`: a full disk, a permission problem, a read-only file system or a file where a
  directory should be is a `StorageError` naming the path and what to do, never a crash.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

from cxslack.errors import EXIT_FAILED, CxError

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM}
# What the file system can refuse that is the user's to fix (see storage_error).
USER_ERRNOS = frozenset({*_NO_SPACE, *_DENIED, errno.EROFS, errno.ENOTDIR})


class StorageError(CxError, OSError):
    """The file system refused (full, read-only, no permission, not a directory). Also an OSError,
    so code that treats a failed write as "try again later" (the listener's ack) still does."""

    exit_code = EXIT_FAILED

    def __init__(self, code: str, message: str, hint: str | None, cause: OSError, path: Path):
        super().__init__(code, message, hint)
        self.errno = cause.errno
        self.strerror = cause.strerror
        self.filename = str(path)


class StateUnreadable(CxError):
    """A state file that does not parse; it is left exactly as it is."""


def storage_error(exc: OSError, path: Path, action: str = "write") -> CxError:
    """What went wrong with `path`, in words a user can act on."""
    if isinstance(exc, CxError):
        return exc
    number = exc.errno
    if number in _NO_SPACE:
        return StorageError(
            "disk_full",
            f"cannot {action} {path}: no space left on the device",
            "Free some space (or raise the quota), then run the command again; nothing was half-written.",
            exc,
            path,
        )
    if number in _DENIED:
        return StorageError(
            "permission_denied",
            f"cannot {action} {path}: permission denied",
            "Make it writable by this user, or point CXSLACK_HOME at a directory you own.",
            exc,
            path,
        )
    if number == errno.EROFS:
        return StorageError(
            "read_only_filesystem",
            f"cannot {action} {path}: the file system is read-only",
            "Point CXSLACK_HOME at a directory on a writable file system.",
            exc,
            path,
        )
    if number in (errno.ENOTDIR, errno.EEXIST):
        blocker = _first_non_directory(path)
        return StorageError(
            "not_a_directory",
            f"cannot {action} {path}: {blocker} is a file, not a directory",
            "CXSLACK_HOME (and the directories under it) must be directories: move the file away, "
            "or set CXSLACK_HOME to another path.",
            exc,
            path,
        )
    return StorageError("storage_error", f"cannot {action} {path}: {exc.strerror or exc}", None, exc, path)


def _first_non_directory(path: Path) -> Path:
    for candidate in [*reversed(path.parents), path]:
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return path


# -- directories -----------------------------------------------------------------------------
def ensure_private_dir(path: Path) -> None:
    """Create `path` and any missing parents as 0700; leave an existing directory's mode alone.

    (Path.mkdir(parents=True) would create the parents with the umask's mode.)
    """
    try:
        if path.is_dir():
            _warn_if_shared(path)
            return
        if not path.parent.is_dir():
            ensure_private_dir(path.parent)
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            if not path.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path)) from None
    except OSError as exc:
        raise storage_error(exc, path, "create") from None


def shared_directory_problem(path: Path) -> str | None:
    """Why `path` is not private to this user (others may write to it), or None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if not mode & 0o022:
        return None
    who = "every user" if mode & 0o002 else "its group"
    return (
        f"{path} is writable by {who} (mode {mode:04o}): they could replace what cxslack keeps there; "
        "use a directory only you can write to (cxslack does not change the mode of a directory it "
        "did not create)"
    )


def _warn_if_shared(path: Path) -> None:
    problem = shared_directory_problem(path)
    if problem:
        from cxslack.notices import warn

        warn(problem)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` survive power loss."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise storage_error(exc, path) from None
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # file systems that cannot sync a directory say EINVAL
            raise storage_error(exc, path) from None
    finally:
        os.close(fd)


# -- whole files -----------------------------------------------------------------------------
def atomic_write(path: Path, data: bytes, mode: int = 0o600, *, sweep: bool = False) -> None:
    """Replace `path` with `data` atomically and durably (see the module docstring).

    mkstemp creates the temp file 0600, so a secrets file is never readable by others, not even
    for an instant. `sweep=True` is for callers holding the lock every writer of `path` takes:
    temp files of `path` still there can only be a killed writer's, and are removed.
    """
    import tempfile

    if sweep:
        sweep_temps(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise storage_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode != 0o600:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise storage_error(exc, path) from None
        raise
    fsync_dir(path.parent)


def temp_files(path: Path) -> list[Path]:
    """Temp files `atomic_write` made for `path` and did not rename (a writer was killed)."""
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return [path.parent / n for n in names if n.startswith(prefix) and n.endswith(".tmp")]


def sweep_temps(path: Path) -> None:
    for leftover in temp_files(path):
        with suppress(OSError):
            leftover.unlink()


# -- append-only logs ----------------------------------------------------------------------------
class AppendLog:
    """Records (bytes without a newline), one per line. Writers take turns (a lock, or a single
    writer thread): cutting a torn tail must not race another append.

    `owned`: cxslack's own log, in a directory it keeps (created 0700), whose torn tail it cuts.
    Otherwise a file someone named (NDJSON output): its directory must exist, and a last line
    without a newline is theirs, so new records start on a fresh line instead.
    """

    def __init__(self, path: Path, *, owned: bool = True):
        self.path = path
        self.owned = owned

    def append(self, *records: bytes) -> None:
        """Write the records durably (no records: create the file, durably)."""
        data = b"".join(record + b"\n" for record in records)
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC  # read too: the torn-tail check
        created = False
        try:
            try:
                fd = os.open(self.path, flags)  # it exists: the common case, one open
            except FileNotFoundError:
                if self.owned:
                    ensure_private_dir(self.path.parent)
                try:
                    fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
                    created = True
                except FileExistsError:  # another writer created it meanwhile
                    fd = os.open(self.path, flags)
        except OSError as exc:
            raise storage_error(exc, self.path) from None
        try:
            if self.owned:
                end = _cut_torn_tail(fd)
            else:
                end = os.fstat(fd).st_size
                if data and end and os.pread(fd, 1, end - 1) != b"\n":
                    data = b"\n" + data
            try:
                _write_all(fd, data)
                _fsync(fd)
            except OSError as exc:
                with suppress(OSError):  # take back what did get written: no torn record stays
                    os.ftruncate(fd, end)
                    os.fsync(fd)
                raise storage_error(exc, self.path) from None
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path.parent)

    def lines(self) -> list[bytes]:
        """Every complete record, oldest first; a torn last line is ignored."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise storage_error(exc, self.path, "read") from None
        lines = raw.split(b"\n")
        lines.pop()  # "" after the final newline, or a record that never got its newline
        return [line for line in lines if line]

    def json_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # torn by a version that did not cut torn tails: that step never completed
            if isinstance(record, dict):
                out.append(record)
        return out

    def append_json(self, *records: dict[str, Any]) -> None:
        self.append(*(json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() for r in records))

    def replace(self, records: Iterable[bytes]) -> None:
        """Compaction: the log becomes exactly `records`, atomically (writers take turns, so a
        temp file of the log still there is a killed writer's, and goes)."""
        ensure_private_dir(self.path.parent)
        atomic_write(self.path, b"".join(r + b"\n" for r in records), sweep=True)

    def remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise storage_error(exc, self.path, "remove") from None

    def exists(self) -> bool:
        return self.path.exists()


def _fsync(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # a pipe or a terminal (--file /dev/stdout): nothing to sync
            raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _cut_torn_tail(fd: int) -> int:
    """Truncate a last line without its newline (a write cut short); returns the new size."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    position = size
    while position > 0:
        start = max(0, position - 4096)
        newline = os.pread(fd, position - start, start).rfind(b"\n")
        if newline >= 0:
            cut = start + newline + 1
            break
        position = start
    else:
        cut = 0
    os.ftruncate(fd, cut)
    return cut
