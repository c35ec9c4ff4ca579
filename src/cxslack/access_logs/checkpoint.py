"""The checkpoint of one integration and destination, and sending each batch once (from a forked
child for Coralogix). The package docstring explains the crash safety this gives."""

from __future__ import annotations

import fcntl
import json
import os
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

from cxslack.access_logs.records import Record
from cxslack.access_logs.sinks import Sink
from cxslack.errors import EXIT_FAILED, CxError
from cxslack.model import utc_now
from cxslack.redact import redact
from cxslack.store import atomic_write, ensure_private_dir

# How far behind the high-water mark each run looks again for entries Slack reports late.
OVERLAP = 24 * 3600


class Checkpoint:
    """High-water mark and delivered digests of one integration and destination.

    Persistent (snapshot + journal + lock in `directory`) or, without a directory, in memory
    only (`--no-checkpoint`: a --follow job still skips what it delivered earlier in the run).
    """

    def __init__(self, directory: Path | None, name: str):
        self.directory = directory
        self.name = name
        self.high_water: int | None = None
        self.sent: dict[str, int] = {}  # digest → date_first

    @classmethod
    def for_integration(cls, state_dir: Path, integration_id: str, name: str) -> Checkpoint:
        return cls(state_dir / "access-logs" / integration_id, name)

    @property
    def path(self) -> Path | None:
        return self.directory / f"{self.name}.json" if self.directory else None

    def _file(self, suffix: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{self.name}.{suffix}"

    def floor(self) -> int:
        """The oldest date_first the next read needs."""
        return 0 if self.high_water is None else self.high_water - OVERLAP

    @contextmanager
    def session(self, on_wait: Callable[[], None] = lambda: None) -> Iterator[Checkpoint]:
        """Hold the lock, load snapshot + journal, and compact them again when done."""
        if self.directory is None:
            yield self
            self._prune()
            return
        ensure_private_dir(self.directory)
        fd = os.open(self._file("lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._load()
            self._compact()
            try:
                yield self
            finally:
                self._compact()
        finally:
            os.close(fd)  # closing releases the lock (and so does dying)

    def deliver(self, sink: Sink, batch: list[Record]) -> None:
        """Have the destination take a batch, then record it: journal first, then memory."""
        record = {
            "high_water": max(r.login.date_first for r in batch),
            "sent": [[r.login.digest, r.login.date_first] for r in batch],
        }

        def send() -> None:
            sink.deliver(batch)
            if self.directory is not None:
                self._journal(record)

        if self.directory is None or not sink.send_in_child:
            send()
            self._apply(record)
            return
        # Ctrl-C reaches the whole foreground process group. The child ignores it; this process
        # takes it only once the batch is in memory too, since compaction keeps what memory holds.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            try:
                _run_in_child(send)
            except _ChildDied:
                self._load()  # it may have journaled the batch before dying: take the journal's word
                raise
            self._apply(record)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _journal(self, record: Mapping[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        fd = os.open(self._file("journal"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)  # one write(): the line lands as a unit (_load skips one cut short)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _apply(self, record: Mapping[str, Any]) -> None:
        sent = {str(digest): int(date_first) for digest, date_first in record["sent"]}
        high = int(record["high_water"])
        self.high_water = high if self.high_water is None else max(self.high_water, high)
        self.sent.update(sent)

    def _prune(self) -> None:
        cutoff = self.floor()
        self.sent = {d: first for d, first in self.sent.items() if first >= cutoff}

    def _load(self) -> None:
        path = self._file("json")
        try:
            doc = json.loads(path.read_bytes())
        except FileNotFoundError:
            doc = {"high_water": None, "sent": {}}
        except (OSError, ValueError) as exc:
            raise self._unreadable(path, str(exc)) from None
        high, sent = (doc.get("high_water"), doc.get("sent")) if isinstance(doc, dict) else (None, None)
        if not (high is None or isinstance(high, int)) or not isinstance(sent, dict):
            raise self._unreadable(path, "unexpected content")
        if not all(isinstance(first, int) for first in sent.values()):
            raise self._unreadable(path, "unexpected content")
        self.high_water, self.sent = high, dict(sent)
        try:
            lines = self._file("journal").read_bytes().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                self._apply(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue  # cut short by a crash (disk full): that batch was never recorded

    def _compact(self) -> None:
        journal = self._file("journal")
        if not journal.exists():
            return
        self._prune()
        doc = {"high_water": self.high_water, "sent": self.sent, "updated_at": utc_now()}
        atomic_write(self._file("json"), json.dumps(doc, separators=(",", ":")).encode())
        journal.unlink()

    @staticmethod
    def _unreadable(path: Path, why: str) -> CxError:
        return CxError(
            "checkpoint_unreadable",
            f"the access-log checkpoint {path} cannot be read ({why})",
            "Restore it, or move it aside to start over (entries already delivered would be delivered again).",
        )


# -- sending from a child ------------------------------------------------------------------------
class _ChildDied(CxError):
    """The child sending a batch ended without saying how it went."""


def _run_in_child(work: Callable[[], None]) -> None:
    """Run `work` in a forked child and wait for it; its CxError is raised here.

    If this process is killed meanwhile, the child still finishes `work`, and since it inherited
    the checkpoint's lock (flock belongs to the open file, which fork shares), a rerun waits for it.
    """
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:
        os.close(read_end)
        _child(work, write_end)
    os.close(write_end)
    with open(read_end, "rb") as pipe:
        answer = pipe.read()  # until the child exits
    _, status = os.waitpid(pid, 0)
    try:
        doc = json.loads(answer)
    except ValueError:
        code = os.waitstatus_to_exitcode(status)
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        raise _ChildDied(
            "delivery_interrupted",
            f"the process sending a batch ended before saying whether it was delivered ({how})",
            "Run the collection again: a batch that was delivered and recorded is not sent again.",
        ) from None
    if not doc.get("ok"):
        raise CxError(doc["code"], doc["message"], doc["hint"], exit_code=doc["exit_code"])


def _child(work: Callable[[], None], answer_fd: int) -> NoReturn:
    """The forked child's whole life: never returns into the caller, never runs atexit handlers."""
    status = 1
    try:
        # Signals meant for the whole process group (Ctrl-C, a closed terminal, a service
        # manager's stop) must not cut a request short: whether it arrived would be unknown.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        # Nor may an orphaned child keep open the stdout or stderr pipe someone reads to the end.
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        answer: dict[str, Any]
        try:
            work()
            answer, status = {"ok": True}, 0
        except CxError as exc:
            answer = {**exc.to_dict(), "exit_code": exc.exit_code}
        except Exception as exc:  # a bug or a full disk: report it rather than die silently
            answer = {
                "code": "delivery_failed",
                "message": redact(f"sending a batch failed: {type(exc).__name__}: {exc}"),
                "hint": None,
                "exit_code": EXIT_FAILED,
            }
        with suppress(OSError):  # the parent is gone: the journal tells the rerun what happened
            os.write(answer_fd, json.dumps(answer).encode())
    finally:
        os._exit(status)
