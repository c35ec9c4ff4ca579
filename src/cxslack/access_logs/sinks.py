"""Where logins go: Coralogix's log ingestion, or NDJSON to a file or stdout."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

from cxslack.access_logs.records import Record
from cxslack.errors import UsageError
from cxslack.state.files import AppendLog

if TYPE_CHECKING:
    from cxslack.coralogix.client import CoralogixClient

SinkKind = Literal["forward", "output"]


class Sink(Protocol):
    kind: SinkKind
    name: str  # its checkpoint's name: each destination has its own
    max_bytes: int  # a batch's records add up to at most this (by `size`)
    # Deliver and journal each batch from a forked child that outlives this process being killed:
    # for destinations that cannot be asked afterwards what arrived.
    send_in_child: bool

    def size(self, record: Record) -> int: ...

    def deliver(self, batch: list[Record]) -> None:
        """Return only once the destination holds the whole batch; raise CxError otherwise."""


class CoralogixSink:
    """Coralogix's log ingestion; each batch is exactly one request under the 2 MB limit."""

    kind: SinkKind = "forward"
    name = "forward"
    send_in_child = True

    def __init__(
        self, connect: Callable[[], CoralogixClient], *, computer: str, application: str, subsystem: str
    ):
        from cxslack.coralogix.client import MAX_REQUEST_BYTES

        # A new client per batch: a forked child must not use connections its parent opened.
        self.connect = connect
        connect().close()  # unused: the modules it imports load here once, not again in every child
        self.computer = computer
        self.application = application
        self.subsystem = subsystem
        self.max_bytes = MAX_REQUEST_BYTES - 2  # the array's brackets

    def entry(self, record: Record) -> dict[str, Any]:
        return {
            "applicationName": self.application,
            "subsystemName": self.subsystem,
            "computerName": self.computer,
            "timestamp": record.timestamp_ms,
            "severity": 3,  # info
            "text": record.text,
        }

    def size(self, record: Record) -> int:
        # The client encodes entries exactly like this (every field is set, so it adds no defaults);
        # the extra byte is the comma between entries. A batch therefore never becomes two requests,
        # which is what lets one journal line stand for one accepted request.
        return len(json.dumps(self.entry(record), ensure_ascii=False, separators=(",", ":")).encode()) + 1

    def deliver(self, batch: list[Record]) -> None:
        with self.connect() as client:
            client.send_logs(
                [self.entry(r) for r in batch], application=self.application, subsystem=self.subsystem
            )


class NdjsonSink:
    """One JSON record per line, appended to a file (fsync'd per batch) or written to a stream."""

    kind: SinkKind = "output"
    max_bytes = 8_000_000  # only bounds memory per batch
    send_in_child = False  # an fsync'd write is done or not; the journal line follows at once

    def __init__(self, stream: IO[str] | None = None, *, file: AppendLog | None = None, name: str = "stdout"):
        self.stream = stream
        self.file = file
        self.name = name

    @classmethod
    def append_to(cls, path: Path) -> NdjsonSink:
        """Append to `path`, creating it 0600: access logs name people and their IP addresses.

        Each batch is written whole and fsync'd (a batch cut short by a full disk is taken back);
        a new file's directory is fsync'd too. Each file has its own checkpoint, named after its
        absolute path.
        """
        file = AppendLog(path, owned=False)
        try:
            file.append()  # create it now: a path that cannot be written fails before Slack is read
        except OSError as exc:
            raise UsageError("output_unwritable", f"cannot write {path}: {exc.strerror}") from None
        name = "file-" + hashlib.sha256(str(path.absolute()).encode()).hexdigest()[:16]
        return cls(file=file, name=name)

    def size(self, record: Record) -> int:
        return len(record.text) + 1

    def deliver(self, batch: list[Record]) -> None:
        if self.file is not None:
            self.file.append(*(r.text.encode() for r in batch))
            return
        assert self.stream is not None
        self.stream.write("".join(r.text + "\n" for r in batch))
        self.stream.flush()


def batches(records: Iterable[Record], sink: Sink, batch_size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    size = 0
    for record in records:
        cost = sink.size(record)
        if batch and (len(batch) >= batch_size or size + cost > sink.max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += cost
    if batch:
        yield batch
