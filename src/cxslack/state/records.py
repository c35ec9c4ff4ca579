"""The typed records cxslack keeps, and their JSON form (the keys files have always used).

Every `from_json` takes whatever a file holds and keeps what it understands: a value of the wrong
type reads as missing, and a record without what it cannot do without is skipped. So a
hand-edited or older file never crashes a command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args


def _str(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return value if isinstance(value, str) and value else None


def _float(doc: dict[str, Any], key: str) -> float | None:
    value = doc.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _compact(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None and v is not False}


# -- Slack channels --------------------------------------------------------------------------
@dataclass(frozen=True)
class LearnedChannel:
    """What Slack answered a post to a channel *name*: its ID, or why it refused the post."""

    name: str
    id: str | None = None
    error: str | None = None  # channel_not_found, not_in_channel, is_archived
    at: str | None = None  # RFC 3339

    def to_json(self) -> dict[str, Any]:
        return _compact({"id": self.id, "error": self.error, "at": self.at})

    @classmethod
    def from_json(cls, name: str, doc: Any) -> LearnedChannel | None:
        if not isinstance(doc, dict) or not (_str(doc, "id") or _str(doc, "error")):
            return None
        return cls(name, _str(doc, "id"), _str(doc, "error"), _str(doc, "at"))


@dataclass(frozen=True)
class InDoubtPost:
    """A message whose post was sent but got no answer (a timeout, a dropped connection, or
    a crash in between) and that cxslack could neither find in Slack nor rule out. Nothing more is
    sent for its `purpose` until it is settled: found, ruled out, or resent on a person's word."""

    purpose: str  # what it was for: "test|<connector>", "case|<case>|<connector>|update"
    post: str  # the id in its message metadata (event_payload.post)
    channels: tuple[str, ...]  # where it may be, as posted (a name or an ID)
    sent_at: float  # epoch seconds; history is searched from a minute before
    integration: str
    thread_ts: str | None = None  # a reply: searched in that thread
    detail: str | None = None  # what it said (an update's event and text digest)
    why: str | None = None  # how the answer was lost

    @property
    def key(self) -> str:
        """What it is kept under: its purpose."""
        return self.purpose

    def to_json(self) -> dict[str, Any]:
        return _compact({"post": self.post, "channels": list(self.channels), "sent_at": self.sent_at,
                         "integration": self.integration, "thread_ts": self.thread_ts, "detail": self.detail,
                         "why": self.why})  # fmt: skip

    @classmethod
    def from_json(cls, purpose: str, doc: Any) -> InDoubtPost | None:
        if not isinstance(doc, dict):
            return None
        post, integration, sent_at = _str(doc, "post"), _str(doc, "integration"), _float(doc, "sent_at")
        channels = doc.get("channels")
        names = tuple(c for c in channels if isinstance(c, str) and c) if isinstance(channels, list) else ()
        if not (post and integration and names and sent_at is not None):
            return None
        return cls(purpose, post, names, sent_at, integration, _str(doc, "thread_ts"), _str(doc, "detail"),
                   _str(doc, "why"))  # fmt: skip


# -- Case threads ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseThread:
    """Where a Case's root message for one connector lives."""

    case_id: str
    connector: str
    channel: str
    ts: str
    integration: str
    case_name: str | None = None  # the readable id (CASE-123) when known
    updated: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _compact({"channel": self.channel, "ts": self.ts, "integration": self.integration,
                         "case": self.case_name, "updated": self.updated})  # fmt: skip

    @classmethod
    def from_json(cls, case_id: str, connector: str, doc: dict[str, Any]) -> CaseThread | None:
        channel, ts, integration = _str(doc, "channel"), _str(doc, "ts"), _str(doc, "integration")
        if doc.get("pending") or not (channel and ts and integration):
            return None
        return cls(case_id, connector, channel, ts, integration, _str(doc, "case"), _str(doc, "updated"))


@dataclass(frozen=True)
class PendingRoot:
    """A root post in flight for (Case, connector): what a crash between posting and mapping leaves.
    The next notify looks for the root in these channels before posting another."""

    case_id: str
    connector: str
    channels: tuple[str, ...]
    updated: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _compact({"pending": True, "channels": list(self.channels), "updated": self.updated})

    @classmethod
    def from_json(cls, case_id: str, connector: str, doc: dict[str, Any]) -> PendingRoot | None:
        if not doc.get("pending"):
            return None
        channels = doc.get("channels")
        names = tuple(c for c in channels if isinstance(c, str)) if isinstance(channels, list) else ()
        return cls(case_id, connector, names, _str(doc, "updated"))


def thread_key(case_id: str, connector: str) -> str:
    return f"{case_id}|{connector}"


def split_thread_key(key: str) -> tuple[str, str]:
    case_id, _, connector = key.partition("|")
    return case_id, connector


# -- per-Case settings -----------------------------------------------------------------------
@dataclass(frozen=True)
class CaseSettings:
    reply_mode: str | None = None  # a ReplyMode value; None: the connector's
    mute_sync: bool | None = None  # None: not set (not muted)
    case_actions: bool | None = None  # buttons on the Case's messages; None: the connector's

    def to_json(self) -> dict[str, Any]:
        pairs = (
            ("reply_mode", self.reply_mode),
            ("mute_sync", self.mute_sync),
            ("case_actions", self.case_actions),
        )
        return {k: v for k, v in pairs if v is not None}

    @classmethod
    def from_json(cls, doc: Any) -> CaseSettings:
        if not isinstance(doc, dict):
            return cls()
        mute, actions = doc.get("mute_sync"), doc.get("case_actions")
        return cls(
            _str(doc, "reply_mode"),
            mute if isinstance(mute, bool) else None,
            actions if isinstance(actions, bool) else None,
        )

    def over(self, base: CaseSettings) -> CaseSettings:
        """These settings, falling back to `base` for what is not set here."""
        return CaseSettings(
            self.reply_mode if self.reply_mode is not None else base.reply_mode,
            self.mute_sync if self.mute_sync is not None else base.mute_sync,
            self.case_actions if self.case_actions is not None else base.case_actions,
        )


# -- the sync ledger -------------------------------------------------------------------------
@dataclass(frozen=True)
class SyncedReply:
    """What a Slack reply (channel, ts) became in Coralogix. `posting` is the text of a comment
    sent for it whose answer is not recorded yet: a process that died in between leaves it, and
    the next one looks for that comment on the Case before sending another."""

    case: str
    readable: str | None = None
    comment: str | None = None
    user: str | None = None
    edited_text: str | None = None
    edit_comment: str | None = None
    deleted: bool = False
    delete_comment: str | None = None
    at: float | None = None
    posting: str | None = None
    posting_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return _compact({"case": self.case, "readable": self.readable, "comment": self.comment, "user": self.user,
                         "edited_text": self.edited_text, "edit_comment": self.edit_comment,
                         "deleted": self.deleted, "delete_comment": self.delete_comment, "at": self.at,
                         "posting": self.posting, "posting_at": self.posting_at})  # fmt: skip

    @classmethod
    def from_json(cls, doc: Any) -> SyncedReply | None:
        if not isinstance(doc, dict) or not _str(doc, "case"):
            return None
        return cls(
            str(doc["case"]), _str(doc, "readable"), _str(doc, "comment"), _str(doc, "user"),
            doc.get("edited_text") if isinstance(doc.get("edited_text"), str) else None,
            _str(doc, "edit_comment"), doc.get("deleted") is True, _str(doc, "delete_comment"), _float(doc, "at"),
            _str(doc, "posting"), _float(doc, "posting_at"),
        )  # fmt: skip


def reply_key(channel: str, ts: str) -> str:
    return f"{channel}|{ts}"


# -- Case actions taken from Slack (the buttons on a Case message) -----------------------------
ActionOutcome = Literal["acting", "done", "shown"]


@dataclass(frozen=True)
class TakenAction:
    """What one click (a button on one message, by one person) did to a Case. `acting`: the call
    to Coralogix was sent (a crash before the end leaves this; reading the Case tells whether it
    was applied); `done`: applied in Coralogix; `shown`: applied, and Slack shows it (the root and
    the thread note). Only `shown` ends a click: after `acting` or `done` the Case is read again."""

    case: str
    action: str  # acknowledge | assign | resolve | close
    user: str  # the Slack user who clicked
    outcome: ActionOutcome
    actor: str | None = None  # the Coralogix user it was done as
    at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return _compact({"case": self.case, "action": self.action, "user": self.user, "outcome": self.outcome,
                         "actor": self.actor, "at": self.at})  # fmt: skip

    @classmethod
    def from_json(cls, doc: Any) -> TakenAction | None:
        if not isinstance(doc, dict):
            return None
        case, action, user, outcome = (_str(doc, k) for k in ("case", "action", "user", "outcome"))
        if not (case and action and user and outcome in get_args(ActionOutcome)):
            return None
        return cls(case, action, user, cast(ActionOutcome, outcome), _str(doc, "actor"), _float(doc, "at"))


def click_digest(key: str) -> str:
    """How a click key is kept (the key names who clicked what: kept only as a digest)."""
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:32]


# -- alert evaluation charts shared into Case threads -------------------------------------------
ChartState = Literal["uploading", "shared", "in_doubt"]


@dataclass(frozen=True)
class ChartShare:
    """One alert evaluation chart for one trigger in one Case thread. `uploading`: its bytes are
    with Slack as file `file_id` and the share into the thread was sent, its outcome not yet known
    (a crash or a lost answer leaves this, and the next notify looks before anything is sent
    again); `shared`: it is in the thread; `in_doubt`: it could not be told whether the share went
    through, and nothing more is shared for this trigger."""

    key: str  # chart_key(case, connector, alert, trigger)
    state: ChartState
    file_id: str
    channel: str  # the channel ID
    thread_ts: str
    at: str | None = None  # RFC 3339: when the share was sent
    reason: str | None = None  # for in_doubt: why nobody can tell

    def to_json(self) -> dict[str, Any]:
        return _compact({"state": self.state, "file_id": self.file_id, "channel": self.channel,
                         "thread_ts": self.thread_ts, "at": self.at, "reason": self.reason})  # fmt: skip

    @classmethod
    def from_json(cls, key: str, doc: Any) -> ChartShare | None:
        if not isinstance(doc, dict):
            return None
        state, file_id, channel, thread_ts = (
            _str(doc, k) for k in ("state", "file_id", "channel", "thread_ts")
        )
        if state not in ("uploading", "shared", "in_doubt") or not (file_id and channel and thread_ts):
            return None
        return cls(
            key, cast(ChartState, state), file_id, channel, thread_ts, _str(doc, "at"), _str(doc, "reason")
        )


def chart_key(case_id: str, connector: str, alert_id: str, trigger: str) -> str:
    return f"{case_id}|{connector}|{alert_id}|{trigger}"


# -- the preview book ------------------------------------------------------------------------
@dataclass(frozen=True)
class PreviewPlace:
    """One unfurl of a Case URL, and the status and priority it last showed."""

    channel: str
    ts: str
    url: str
    integration: str
    status: str | None = None
    priority: str | None = None
    unfurl_id: str | None = None  # set when Slack sent one (a message composer preview)
    source: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.channel, self.ts, self.url

    def target(self) -> dict[str, Any]:
        """chat.unfurl's addressing arguments for this preview."""
        if self.unfurl_id:
            return {"unfurl_id": self.unfurl_id, "source": self.source or "conversations_history"}
        return {"channel": self.channel, "ts": self.ts}

    def to_json(self) -> dict[str, Any]:
        return _compact({"channel": self.channel, "ts": self.ts, "url": self.url, "integration": self.integration,
                         "status": self.status, "priority": self.priority, "unfurl_id": self.unfurl_id,
                         "source": self.source})  # fmt: skip

    @classmethod
    def from_json(cls, doc: Any) -> PreviewPlace | None:
        if not isinstance(doc, dict):
            return None
        channel, ts, url, integration = (_str(doc, k) for k in ("channel", "ts", "url", "integration"))
        if not (channel and ts and url and integration):
            return None
        return cls(channel, ts, url, integration, _str(doc, "status"), _str(doc, "priority"),
                   _str(doc, "unfurl_id"), _str(doc, "source"))  # fmt: skip


# -- the migration journal -------------------------------------------------------------------
MigrationEventKind = Literal[
    "start", "testing", "switched", "failed", "end",
    # migrate --remote (cxslack.remote.migrate): the steps of a switch inside Coralogix
    "pretesting", "pretested", "switching", "confirming", "confirmed", "confirm_failed", "confirm_unknown",
    "reverted", "done",
]  # fmt: skip
_KINDS: frozenset[str] = frozenset(get_args(MigrationEventKind))


@dataclass(frozen=True)
class MigrationEvent:
    """One line of the migration journal. Which fields are set depends on `event`:
    start (run, to, from_, connectors, test; `runs` when it stands for that many compacted runs),
    testing (connector, to, attempt, channel), switched (connector, from_, to, attempt, `before`:
    the connector's updated_at when it was switched), failed (connector, to, error), end (run).
    A remote migration's steps carry (connector, to) and, where they apply, `source` and `target`
    (Coralogix integration ids), `before` and `after` (the connector's updateTime around a PUT)
    and `message` (why a confirming test failed)."""

    event: MigrationEventKind
    run: str | None = None
    connector: str | None = None
    to: str | None = None
    from_: str | None = None
    connectors: tuple[str, ...] = ()
    test: bool | None = None
    attempt: str | None = None
    channel: str | None = None
    error: dict[str, Any] | None = None
    at: float | None = None
    source: str | None = None
    target: str | None = None
    before: str | None = None
    after: str | None = None
    message: str | None = None
    runs: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"event": self.event, "run": self.run, "connector": self.connector, "to": self.to,
                               "attempt": self.attempt, "channel": self.channel, "error": self.error, "at": self.at,
                               "source": self.source, "target": self.target, "before": self.before,
                               "after": self.after, "message": self.message}  # fmt: skip
        doc = {k: v for k, v in doc.items() if v is not None}
        if self.event == "start" or (self.event == "switched" and self.source is None):
            doc["from"] = self.from_  # null when a start named no --from
        if self.event == "start":
            doc.update(connectors=list(self.connectors), test=bool(self.test))
            if self.runs:
                doc["runs"] = self.runs
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> MigrationEvent | None:
        kind = doc.get("event")
        if not isinstance(kind, str) or kind not in _KINDS:
            return None
        connectors = doc.get("connectors")
        error = doc.get("error")
        test = doc.get("test")
        runs = doc.get("runs")
        return cls(
            cast(MigrationEventKind, kind), _str(doc, "run"), _str(doc, "connector"), _str(doc, "to"),
            _str(doc, "from"), tuple(c for c in connectors if isinstance(c, str)) if isinstance(connectors, list) else (),
            test if isinstance(test, bool) else None, _str(doc, "attempt"), _str(doc, "channel"),
            error if isinstance(error, dict) else None, _float(doc, "at"), _str(doc, "source"),
            _str(doc, "target"), _str(doc, "before"), _str(doc, "after"), _str(doc, "message"),
            runs if isinstance(runs, int) and not isinstance(runs, bool) and runs > 0 else None,
        )  # fmt: skip


# -- access-log checkpoints ------------------------------------------------------------------
@dataclass
class DeliveredBatch:
    """A batch a destination accepted: its entries' digests with their date_first, and the newest."""

    high_water: int
    sent: list[tuple[str, int]]

    def to_json(self) -> dict[str, Any]:
        return {"high_water": self.high_water, "sent": [list(pair) for pair in self.sent]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DeliveredBatch | None:
        try:
            return cls(int(doc["high_water"]), [(str(d), int(first)) for d, first in doc["sent"]])
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class CheckpointSnapshot:
    """A destination's checkpoint as last compacted."""

    high_water: int | None = None
    sent: dict[str, int] = field(default_factory=dict)  # digest → date_first
    updated_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"high_water": self.high_water, "sent": self.sent, "updated_at": self.updated_at}

    @classmethod
    def from_json(cls, doc: Any) -> CheckpointSnapshot | None:
        """None when the content is not a checkpoint (the caller reports the file)."""
        high, sent = (doc.get("high_water"), doc.get("sent")) if isinstance(doc, dict) else (None, None)
        if not (high is None or (isinstance(high, int) and not isinstance(high, bool))) or not isinstance(
            sent, dict
        ):
            return None
        if not all(isinstance(first, int) for first in sent.values()):
            return None
        return cls(high, {str(k): v for k, v in sent.items()}, _str(doc, "updated_at"))


# -- the event inbox ---------------------------------------------------------------------------
EventOutcome = Literal["handled", "dead-letter", "done"]


@dataclass(frozen=True)
class FinishedEvent:
    """A line of the inbox's done log: an event id, when it finished, and how."""

    event_id: str
    at: float
    outcome: str

    def to_line(self) -> bytes:
        return f"{self.event_id} {self.at:.3f} {self.outcome}".encode()

    @classmethod
    def from_line(cls, line: bytes) -> FinishedEvent | None:
        parts = line.split()
        try:
            return cls(
                parts[0].decode("ascii"), float(parts[1]), parts[2].decode("ascii") if len(parts) > 2 else ""
            )
        except (IndexError, ValueError):
            return None
