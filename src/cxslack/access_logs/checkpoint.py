"""The checkpoint of one integration and destination, and sending each batch once (from a forked
child for Coralogix). The package docstring explains the crash safety this gives."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cxslack.access_logs.records import Record
from cxslack.access_logs.sinks import Sink
from cxslack.errors import EXIT_FAILED, CxError
from cxslack.redact import redact
from cxslack.state.interface import CheckpointFiles
from cxslack.state.records import CheckpointSnapshot, DeliveredBatch

if TYPE_CHECKING:
    from cxslack.store import Store

# How far behind the high-water mark each run looks again for entries Slack reports late.
OVERLAP = 24 * 3600


class Checkpoint:
    """High-water mark and delivered digests of one integration and destination.

    Persistent (a snapshot and the batches delivered since, in the state; see CheckpointFiles)
    or, without `files`, in memory only (`--no-checkpoint`: a --follow job still skips what it
    delivered earlier in the run).
    """

    def __init__(self, files: CheckpointFiles | None, name: str):
        self.files = files
        self.name = name
        self.high_water: int | None = None
        self.sent: dict[str, int] = {}  # digest → date_first

    @classmethod
    def for_integration(cls, store: Store, integration_id: str, name: str) -> Checkpoint:
        from cxslack.state import open_state

        return cls(open_state(store).checkpoint(integration_id, name), name)

    @property
    def path(self) -> Path | None:
        return self.files.path if self.files else None

    def floor(self) -> int:
        """The oldest date_first the next read needs."""
        return 0 if self.high_water is None else self.high_water - OVERLAP

    @contextmanager
    def session(self, on_wait: Callable[[], None] = lambda: None) -> Iterator[Checkpoint]:
        """Hold the lock, load snapshot + journal, and compact them again when done. The lock is
        released by closing it (and by dying), so a child sending a batch keeps it until it exits."""
        if self.files is None:
            yield self
            self._prune()
            return
        with self.files.exclusive(on_wait):
            self._load()
            self._compact()
            try:
                yield self
            finally:
                self._compact()

    def deliver(self, sink: Sink, batch: list[Record]) -> None:
        """Have the destination take a batch, then record it: journal first, then memory."""
        record = DeliveredBatch(
            max(r.login.date_first for r in batch), [(r.login.digest, r.login.date_first) for r in batch]
        )
        files = self.files

        def send() -> None:
            sink.deliver(batch)
            if files is not None:
                files.append(record)  # every byte, fsync'd; cut again if the disk fills mid-way

        if files is None or not sink.send_in_child:
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

    def _apply(self, record: DeliveredBatch) -> None:
        self.high_water = (
            record.high_water if self.high_water is None else max(self.high_water, record.high_water)
        )
        self.sent.update(record.sent)

    def _prune(self) -> None:
        cutoff = self.floor()
        self.sent = {d: first for d, first in self.sent.items() if first >= cutoff}

    def _load(self) -> None:
        assert self.files is not None
        snapshot, batches = self.files.load()
        self.high_water, self.sent = snapshot.high_water, dict(snapshot.sent)
        for batch in batches:
            self._apply(batch)

    def _compact(self) -> None:
        assert self.files is not None
        if not self.files.has_batches():
            return
        self._prune()
        self.files.compact(CheckpointSnapshot(self.high_water, dict(self.sent)))


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
