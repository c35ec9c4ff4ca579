"""Collect Slack's access logs (`team.accessLogs`) and deliver every login entry once: to
Coralogix's log ingestion, or as NDJSON.

Reading. Slack lists logins newest first (by `date_first`), at most 1,000 a page and 100 pages a
query; `before` (inclusive) bounds the newest. A run reads its whole window, from the floor
(see below) up to `--until` or Slack's now, walking the cursor; when 100 pages are not enough (or
Slack answers `over_pagination_limit`) it narrows the window by querying again with `before` =
the oldest `date_first` seen so far. Entries read twice are merged by their key.

Once. An entry's key is (user_id, ip, user_agent, date_first): Slack updates `date_last` and
`count` of an entry in place, which does not make it new. Each destination (Coralogix, stdout,
each output file) has a checkpoint: the high-water mark (the newest `date_first` delivered) and
the digests of the entries delivered within OVERLAP of it. The next run's floor is high-water -
OVERLAP, so entries Slack reports late are still found, and entries whose digest is known are
skipped. Digests, not keys, so the state dir holds no IP addresses or user agents.

Crash safety (kill -9 at any moment). New entries go out oldest first, in batches. Only after
the destination accepted a batch (Coralogix answered 2xx; NDJSON lines written, flushed and,
for a file, fsync'd) is one journal line with the batch's digests and newest `date_first`
appended with a single write() and fsync'd. The snapshot (`<name>.json`) is rewritten
atomically from snapshot + journal only at the start and end of a run, then the journal removed.
Each batch for Coralogix is sent, and its journal line written, by a child forked for that
batch, which then tells the collector how it went through a pipe. The child ignores SIGINT,
SIGTERM and SIGHUP and has no hold on the collector's stdout and stderr, so it outlives the
collector's death; and it inherited the lock (below), so a rerun starts only after it exited.
- Killed before a batch was sent, or after its journal line: the rerun replays the journal,
  skips what it records and sends the rest, each entry once.
- The collector killed while a batch for Coralogix is in flight: its child finishes the request
  and the journal line, and the rerun, waiting for the lock until then, skips that batch. Ctrl-C
  reaches both: the child ignores it, and the collector stops once the batch is recorded.
- Still a duplicate, of that one batch: power loss (or an OS crash), or the child killed too
  (kill -9 of the whole process group, or the end of a container whose PID 1 the collector is)
  while the request is in flight or before its journal line. Coralogix may have the batch (a
  server finishes a request its client died during), but the journal does not, so the rerun
  sends it again. Coralogix's ingestion has no idempotency key and a Send-Your-Data key cannot
  ask what arrived, so no client can rule it out; `--batch-size` bounds it. NDJSON is written
  by the collector itself: killed between an fsync'd write and its journal line, a window of
  one write(), it writes that batch again.
- Never a gap: batches go out oldest first, so everything not yet delivered is at least as new
  as the high-water mark, inside the next run's window.
- Killed while compacting: the snapshot rename is atomic and the journal is removed after it;
  replaying a journal over a snapshot that already holds it changes nothing.
Runs for the same integration and destination take turns on a lock file and read the
checkpoint only once they hold it, so two of them never deliver the same batch. (flock belongs
to the open file, which a forked child shares: the lock is free once both have closed it.)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, NoReturn, Protocol

from cxslack.errors import EXIT_AUTH, EXIT_FAILED, EXIT_PARTIAL, AuthError, CxError, UsageError
from cxslack.model import Integration, Status, utc_now
from cxslack.redact import redact
from cxslack.registry import Registry, quote
from cxslack.slack.client import SlackAccess, SlackError
from cxslack.store import atomic_write, ensure_private_dir

if TYPE_CHECKING:
    from cxslack.coralogix.client import CoralogixClient

PAGE_SIZE = 1000  # Slack's largest page
MAX_PAGES = 100  # Slack refuses page 101 of a query with over_pagination_limit
# How far behind the high-water mark each run looks again for entries Slack reports late.
OVERLAP = 24 * 3600
# Doctor warns when an integration that collects access logs has not done so for this long.
STALE_AFTER = timedelta(hours=24)
DEFAULT_BATCH = 1000
DEFAULT_APPLICATION = "slack"
DEFAULT_SUBSYSTEM = "access-logs"
LAST_COLLECTED = "access_logs_last_collected"  # on the integration in config.toml
# Errors a --follow job outlives: it reports them and tries again at the next interval.
TRANSIENT_ERRORS = frozenset(
    {
        "slack_unavailable",
        "slack_unreachable",
        "ratelimited",
        "coralogix_unavailable",
        "coralogix_unreachable",
    }
)
SinkKind = Literal["forward", "output"]


# -- time -------------------------------------------------------------------------------------
_RELATIVE = re.compile(r"(\d{1,6})([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, flag: str, now: float | None = None) -> int:
    """RFC 3339 (a time without offset is UTC) or relative to now (`90m`, `24h`, `7d`) → epoch seconds."""
    value = text.strip()
    relative = _RELATIVE.fullmatch(value.lower())
    if relative:
        seconds = int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
        return int((time.time() if now is None else now) - seconds)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            "invalid_time",
            f"{flag} {text!r} is neither an RFC 3339 time nor a relative one",
            f"Examples: {flag} 24h, {flag} 7d, {flag} 2026-11-29T08:00:00Z",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


# -- entries ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Login:
    """One entry of team.accessLogs, as Slack sent it, with its dedupe digest."""

    digest: str
    date_first: int
    entry: Mapping[str, Any]

    @classmethod
    def from_api(cls, entry: Any) -> Login:
        try:
            date_first = int(entry["date_first"])
        except (KeyError, TypeError, ValueError):
            raise CxError(
                "slack_bad_response",
                "Slack sent an access-log entry without a date_first",
                "This is unexpected from Slack; please report it.",
            ) from None
        # repr of a tuple of strings is unambiguous and, unlike json.dumps, cheap at 100,000 entries
        key = (str(entry.get("user_id", "")), str(entry.get("ip", "")), str(entry.get("user_agent", "")))
        digest = hashlib.sha256(repr((*key, date_first)).encode()).hexdigest()[:24]
        return cls(digest, date_first, entry)


@dataclass(frozen=True)
class Record:
    """What is delivered for a login: its JSON text (NDJSON line, Coralogix `text`) and time."""

    login: Login
    text: str
    timestamp_ms: int


def to_record(login: Login, integration: Integration) -> Record:
    team_id = integration.workspace.team_id if integration.workspace else None
    doc = {**login.entry, "team_id": team_id, "integration_id": integration.id}
    last = login.entry.get("date_last")
    seconds = last if isinstance(last, int) and not isinstance(last, bool) and last > 0 else login.date_first
    text = redact(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
    return Record(login, text, seconds * 1000)


# -- destinations -------------------------------------------------------------------------------
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

    def __init__(self, stream: IO[str], *, name: str = "stdout", durable: bool = False):
        self.stream = stream
        self.name = name
        self.durable = durable

    @classmethod
    def append_to(cls, path: Path) -> NdjsonSink:
        """Append to `path`, creating it 0600: access logs name people and their IP addresses.

        Each file has its own checkpoint, named after its absolute path.
        """
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise UsageError("output_unwritable", f"cannot write {path}: {exc.strerror}") from None
        name = "file-" + hashlib.sha256(str(path.absolute()).encode()).hexdigest()[:16]
        return cls(os.fdopen(fd, "a", encoding="utf-8"), name=name, durable=True)

    def size(self, record: Record) -> int:
        return len(record.text) + 1

    def deliver(self, batch: list[Record]) -> None:
        self.stream.write("".join(r.text + "\n" for r in batch))
        self.stream.flush()
        if self.durable:
            os.fsync(self.stream.fileno())

    def close(self) -> None:
        if self.durable:
            self.stream.close()


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


# -- the checkpoint -----------------------------------------------------------------------------
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


# -- reading Slack ------------------------------------------------------------------------------
class _Stopped(Exception):
    """--follow was asked to stop (SIGINT/SIGTERM) between two pages or batches."""


@dataclass
class Window:
    logins: dict[str, Login]
    pages: int


def read_window(
    access: SlackAccess,
    floor: int,
    until: int | None,
    *,
    page_size: int = PAGE_SIZE,
    on_page: Callable[[int, int], None] = lambda pages, entries: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Window:
    """Every login with floor <= date_first <= until (None: Slack's now), narrowing past the page limit."""
    found: dict[str, Login] = {}
    pages = 0
    before = until
    while True:  # one query per pass; the next pass starts where this one ran out of pages
        cursor, oldest, query_pages = "", None, 0
        while True:
            if should_stop():
                raise _Stopped
            try:
                body, _ = access.call(
                    "team.accessLogs", limit=page_size, before=before, cursor=cursor or None
                )
            except SlackError as exc:
                if exc.code != "over_pagination_limit" or oldest is None:
                    raise
                break
            pages += 1
            query_pages += 1
            logins = body.get("logins") or []
            for entry in logins:
                login = Login.from_api(entry)
                oldest = login.date_first if oldest is None else min(oldest, login.date_first)
                if login.date_first >= floor:
                    found[login.digest] = login
            on_page(pages, len(found))
            metadata = body.get("response_metadata") or {}
            cursor = str(metadata.get("next_cursor") or "")
            if not logins or not cursor or (oldest is not None and oldest < floor):
                return Window(found, pages)
            if query_pages >= MAX_PAGES:
                break
        assert oldest is not None
        if before is not None and oldest >= before:
            raise CxError(
                "access_logs_too_dense",
                f"more than {MAX_PAGES * page_size:,} logins share date_first {rfc3339(oldest)}, "
                "more than Slack lets a query page through",
                "Collect the rest with --since set just after that time.",
            )
        before = oldest  # inclusive: entries of that second come again and are merged by key


# -- a run --------------------------------------------------------------------------------------
@dataclass
class Progress:
    """Callbacks the CLI uses to show progress; all optional."""

    read: Callable[[int, int], None] = lambda pages, entries: None
    delivered: Callable[[int, int], None] = lambda done, total: None
    waiting: Callable[[], None] = lambda: None


@dataclass
class CollectResult:
    integration: str
    kind: SinkKind
    collected: int = 0
    delivered: int = 0
    skipped_duplicates: int = 0
    pages: int = 0
    high_water: int | None = None
    checkpoint: Path | None = None
    stopped: bool = False
    runs: int = 1

    def plus(self, later: CollectResult) -> CollectResult:
        """Totals over a --follow job's runs; the checkpoint is the latest one."""
        return CollectResult(
            integration=self.integration,
            kind=self.kind,
            collected=self.collected + later.collected,
            delivered=self.delivered + later.delivered,
            skipped_duplicates=self.skipped_duplicates + later.skipped_duplicates,
            pages=self.pages + later.pages,
            high_water=later.high_water if later.high_water is not None else self.high_water,
            checkpoint=later.checkpoint,
            stopped=later.stopped,
            runs=self.runs + later.runs,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "integration": self.integration,
            "collected": self.collected,
            "forwarded" if self.kind == "forward" else "written": self.delivered,
            "skipped_duplicates": self.skipped_duplicates,
            "pages": self.pages,
            "checkpoint": {
                "high_water": rfc3339(self.high_water) if self.high_water is not None else None,
                "path": str(self.checkpoint) if self.checkpoint else None,
            },
        }


def find_collecting(registry: Registry, ref: str) -> Integration:
    """The integration, if it collects access logs and its Slack app is installed."""
    integration = registry.view().find(ref)
    name = quote(integration.name)
    if not integration.collects_access_logs:
        raise UsageError(
            "access_logs_not_enabled",
            f"integration {integration.name} does not collect access logs",
            f"Turn it on, then reauthorize so Slack grants the admin scope: cxslack integrations edit {name} "
            f"--access-logs && cxslack integrations authorize {name}",
        )
    if integration.status is Status.PENDING:
        raise AuthError(
            "integration_pending",
            f"integration {integration.name} is Pending: the Slack app is not installed yet",
            f"Install it with: cxslack integrations authorize {name}",
        )
    return integration


def user_access(registry: Registry, integration: Integration) -> SlackAccess:
    """A SlackAccess with the integration's (fresh) user token: team.accessLogs needs a user's `admin`."""
    from cxslack.oauth.flow import fresh_tokens

    secrets = fresh_tokens(registry, integration)
    if secrets.user is None:
        raise AuthError(
            "no_user_token",
            f"integration {integration.name} has no Slack user token, which reading access logs needs "
            "(user scope admin)",
            f"Reauthorize to grant it: cxslack integrations authorize {quote(integration.name)}",
        )
    return SlackAccess(secrets.user.access_token)


def _explain(error: SlackError, integration: Integration) -> CxError:
    """Slack's refusals of team.accessLogs, with what to do about them for this integration."""
    name = quote(integration.name)
    workspace = integration.workspace.team_name if integration.workspace else "the workspace"
    if error.code == "paid_only":
        return CxError(
            "paid_only",
            f"Slack keeps access logs only for paid plans, and {workspace} is on the free plan",
            f"Upgrade the Slack workspace's plan, or stop collecting: cxslack integrations edit {name} --no-access-logs",
        )
    if error.code == "missing_scope":
        granted = str(error.data.get("provided") or "none")
        return AuthError(
            "missing_scope",
            f"reading access logs needs the admin user scope, which {integration.name}'s token lacks "
            f"(granted: {granted})",
            f"Reauthorize as a workspace admin or owner: cxslack integrations authorize {name}",
        )
    if error.token_invalid:
        return SlackError(
            error.code,
            f"Slack rejected {integration.name}'s user token ({error.code})",
            f"Reauthorize: cxslack integrations authorize {name}",
            exit_code=EXIT_AUTH,
            method=error.method,
        )
    return error


def collect(
    registry: Registry,
    integration: Integration,
    sink: Sink,
    checkpoint: Checkpoint,
    *,
    since: int | None = None,
    until: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    page_size: int = PAGE_SIZE,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> CollectResult:
    """One run: read the window past the checkpoint, deliver what is new oldest first, record it."""
    progress = progress or Progress()
    result = CollectResult(integration.id, sink.kind, checkpoint=checkpoint.path)
    access = user_access(registry, integration)
    with checkpoint.session(progress.waiting):
        floor = max(since or 0, checkpoint.floor())
        try:
            window = read_window(
                access, floor, until, page_size=page_size, on_page=progress.read, should_stop=should_stop
            )
        except SlackError as exc:
            raise _explain(exc, integration) from None
        except _Stopped:
            result.stopped = True
            return result
        new = sorted(
            (login for digest, login in window.logins.items() if digest not in checkpoint.sent),
            key=lambda login: (login.date_first, login.digest),
        )
        result.pages, result.collected = window.pages, len(window.logins)
        result.skipped_duplicates = result.collected - len(new)
        for batch in batches((to_record(login, integration) for login in new), sink, batch_size):
            if should_stop():
                result.stopped = True
                break
            try:
                checkpoint.deliver(sink, batch)
            except CxError as exc:
                if not result.delivered:
                    raise
                raise CxError(
                    exc.code,
                    f"{exc.message} ({result.delivered:,} of {len(new):,} new entries were delivered and "
                    "are in the checkpoint; a rerun delivers the rest)",
                    exc.hint,
                    exit_code=EXIT_PARTIAL,
                ) from None
            result.delivered += len(batch)
            progress.delivered(result.delivered, len(new))
        result.high_water = checkpoint.high_water
    if checkpoint.directory is not None and not result.stopped:
        _record_collected(registry, integration.id)
    return result


def _record_collected(registry: Registry, integration_id: str) -> None:
    with registry.editing() as (view, _):
        integration = view.integrations.get(integration_id)
        if integration is not None:  # removed meanwhile
            integration.extra[LAST_COLLECTED] = utc_now()


def follow(
    run_once: Callable[[], CollectResult],
    *,
    interval: float,
    stop: threading.Event,
    on_error: Callable[[CxError], None],
    max_runs: int | None = None,
) -> CollectResult | None:
    """Run, wait `interval`, run again … until `stop` is set (or `max_runs`); the totals, if any run finished.

    Errors in TRANSIENT_ERRORS are reported and retried at the next interval; others end the job.
    """
    total: CollectResult | None = None
    runs = 0
    while not stop.is_set():
        try:
            result = run_once()
            total = result if total is None else total.plus(result)
        except CxError as exc:
            if exc.code not in TRANSIENT_ERRORS:
                raise
            on_error(exc)
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        stop.wait(interval)
    return total


# -- health (for doctor) ------------------------------------------------------------------------
def access_logs_health(integration: Integration, now: datetime | None = None) -> tuple[str, str, str]:
    """(ok|warn|skip, message, remediation): is collection running for an integration that has it on?"""
    name = quote(integration.name)
    run = f"cxslack access-logs collect {name} --forward"
    if not integration.collects_access_logs:
        return "skip", f"{integration.name} does not collect access logs", ""
    if integration.status is Status.PENDING:
        return "skip", f"{integration.name} is not installed yet", f"cxslack integrations authorize {name}"
    last = integration.extra.get(LAST_COLLECTED)
    if not isinstance(last, str) or not last:
        return (
            "warn",
            f"{integration.name} collects access logs, but no collection has run yet",
            f"Run one: {run}; keep it running with --follow, or schedule it",
        )
    try:
        then = datetime.fromisoformat(last)
    except ValueError:
        return "warn", f"{integration.name}'s last access-log collection time is unreadable ({last!r})", run
    age = (now or datetime.now(UTC)) - then
    if age > STALE_AFTER:
        hours = int(age.total_seconds() // 3600)
        return (
            "warn",
            f"{integration.name}'s access logs were last collected {hours} hours ago ({last})",
            f"Check the collection job (--follow, or the scheduler running it); collect now: {run}",
        )
    return "ok", f"{integration.name}'s access logs were last collected at {last}", ""
