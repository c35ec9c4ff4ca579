"""Case notifications in Slack: one root message per (Case, connector), updates per reply mode.

The (Case, connector) → (channel, root ts) map lives in the state dir. Every message carries
Slack message metadata (event type, Case id and a post id). A root is marked pending before it is
posted, and an update is recorded as in doubt before it is posted; when Slack's answer is lost (a
timeout, a dropped connection) or cxslack dies before it comes, the message is looked for in the
channel's history (the thread's, for a reply) before anything else is posted for it — found, it
counts as delivered. Reading history needs the channel's ID (remembered from earlier posts, or
looked up with --channel-lookup), a *:history scope and membership; when any of that is missing,
notify says so, posts nothing more for it (never to the fallback channel either) and exits 5,
until a rerun can tell, the operator adopts the root (`--root-link`), or confirms it is not there
(`--resend`). A per-(Case, connector) lock makes concurrent notifies take turns.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cxslack.cases.charts import CaseCharts, ChartOutcome
from cxslack.cases.model import (
    ROOT_EVENT,
    UPDATE_EVENT,
    CaseEvent,
    ReplyMode,
    case_key,
    case_name,
    template_context,
)
from cxslack.cases.people import Assignee, People
from cxslack.connectors import Connector, EntityType
from cxslack.errors import CxError, UsageError
from cxslack.slack.messages import case_root_message, case_update_message
from cxslack.state import open_state
from cxslack.state.records import CaseThread, InDoubtPost, PendingRoot


@dataclass
class NotifyResult:
    case: str
    connector: str
    channel: str
    ts: str
    root_ts: str
    action: str  # root | reply | new-message
    reply_mode: str
    root_updated: bool
    fallback_used: bool = False
    recovered_root: bool = False
    recovered: bool = False  # its answer was lost and it was found in Slack: posted once, not twice
    charts: list[ChartOutcome] = field(default_factory=list)  # the alert evaluation charts (when on)

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "charts": [c.to_json() for c in self.charts]}


class CaseNotifier:
    """Posts a Case's notifications for one connector through its integration."""

    def __init__(self, registry: Any, connector: Connector, deliverer: Any, people: People | None = None,
                 charts: CaseCharts | None = None):  # fmt: skip
        self.registry = registry
        self.connector = connector
        self.deliverer = deliverer
        self.charts = charts  # None: no alert evaluation charts
        # who the assignee is; without a Coralogix client an assigned Case shows no assignee
        self.people = people or People(None, slack=deliverer.access)
        state = open_state(registry.store)
        self.threads, self.settings = state.threads, state.settings

    def reply_mode(self, case: dict[str, Any]) -> ReplyMode:
        mode = (
            self.settings.get(case.get("readableId"), case.get("id")).reply_mode
            or self.connector.case_reply_mode
            or ReplyMode.THREAD.value
        )
        return ReplyMode(mode)

    def buttons(self, case: dict[str, Any]) -> bool:
        """Whether the Case's root carries its action buttons (v0.1.0, on for connector and Case)."""
        from cxslack.cases.actions import buttons_off

        settings = self.settings.get(case.get("readableId"), case.get("id"))
        return buttons_off(self.deliverer.integration, self.connector, settings) is None

    def notify(self, case: dict[str, Any], event: CaseEvent, link: str | None, *, root_link: str | None = None,
               resend: bool = False, note: str | None = None) -> NotifyResult:  # fmt: skip
        """Post the root or an update. `root_link` adopts that Slack message as the Case's root on
        this connector; `resend` confirms that a message whose post was in doubt never arrived;
        `note` says who made the change (shown on the update)."""
        from cxslack.delivery import resolve_channel

        key, connector = case_key(case), self.connector.id
        mode = self.reply_mode(case)
        assignee = self.people.assignee_for_slack(case)
        with self.threads.turn(key, connector):
            found = self.threads.get(key, connector)
            recovered = False
            if root_link is not None:
                channel_id, ts = parse_message_link(root_link)
                found = CaseThread(
                    key, connector, channel_id, ts, self.deliverer.integration.id, case_name(case)
                )
                self.threads.map(found)
            elif isinstance(found, PendingRoot) and not resend:
                # A root post was in flight when cxslack last died: adopt it if it landed.
                found = self._find_root(case, found)
                recovered = found is not None
                if found is not None:
                    self.threads.map(found)
            elif isinstance(found, PendingRoot):
                found = None  # the operator looked: the in-doubt root never arrived
            thread = found
            if thread is None:
                channel = resolve_channel(
                    self.connector, EntityType.CASES, template_context(case, event)
                ).channel
                self.threads.mark_pending(key, connector, [channel, self.connector.fallback_channel])
                text, blocks = case_root_message(case, link, assignee, buttons=self.buttons(case))
                body, used_fallback = self._post(channel, text, blocks, self._metadata(ROOT_EVENT, key, event),
                                                 self._what("root message", case), self._rerun(case),
                                                 fallback=True)  # fmt: skip
                thread = CaseThread(key, connector, body["channel"], body["ts"], self.deliverer.integration.id,
                                    case_name(case))  # fmt: skip
                self.threads.map(thread)
                return NotifyResult(case_name(case), connector, thread.channel, thread.ts, thread.ts, "root",
                                    mode.value, False, used_fallback, recovered=bool(body.get("recovered")),
                                    charts=self._charts(case, thread))  # fmt: skip
            # The root is edited first: an edit can be repeated harmlessly, a post cannot, so when the
            # edit fails a retry of the whole notify has posted nothing yet.
            root_updated = self._refresh_root(case, thread, link, assignee)
            body, action = self._update(case, event, link, thread, mode, resend, assignee, note)
            self.threads.map(replace(thread, case_name=case_name(case)))  # and when it was last notified
            return NotifyResult(case_name(case), connector, body["channel"], body["ts"], thread.ts, action,
                                mode.value, root_updated, recovered_root=recovered,
                                recovered=bool(body.get("recovered")), charts=self._charts(case, thread))  # fmt: skip

    def _charts(self, case: dict[str, Any], thread: CaseThread) -> list[ChartOutcome]:
        """The alert evaluation charts, shared into the root's thread after the notification."""
        return self.charts.share(case, thread) if self.charts is not None else []

    def _update(self, case: dict[str, Any], event: CaseEvent, link: str | None, thread: CaseThread,
                mode: ReplyMode, resend: bool, assignee: Assignee,
                note: str | None = None) -> tuple[dict[str, Any], str]:  # fmt: skip
        """One update, per the reply mode, posted at most once: an earlier post of the same update
        whose outcome is unknown is looked for first (found: it is this one; cannot tell: nothing
        is posted). It is recorded as in doubt before it is sent, so a crash leaves the record."""
        from cxslack.delivery import in_doubt_error

        key = case_key(case)
        new_message = mode is ReplyMode.NEW_MESSAGE  # only the first card is the root
        text, blocks = (
            case_root_message(case, link, assignee, note=note)
            if new_message
            else case_update_message(case, event, assignee, note)
        )
        purpose = f"case|{key}|{self.connector.id}|update"
        detail = f"{event.value}|{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        what, action = self._what("update", case), "new-message" if new_message else "reply"
        book = self.deliverer.in_doubt
        pending = book.get(purpose)
        if pending is not None and pending.detail == detail and not resend:  # this same update, in doubt
            found = self.deliverer.look_for(
                pending.post, pending.channels, pending.sent_at, pending.thread_ts
            )
            if found.message is not None:
                book.settle(purpose)
                return {
                    "channel": found.channel,
                    "ts": str(found.message.get("ts")),
                    "recovered": True,
                }, action
            if not found.certain:
                raise in_doubt_error("update_in_doubt", what, pending.channels, pending.sent_at,
                                     pending.why or "its answer was lost", found.unsearchable,
                                     self._rerun(case, event))  # fmt: skip
        thread_ts = None if new_message else thread.ts

        def before(post: str, channel: str) -> None:
            book.record(InDoubtPost(purpose, post, (channel,), time.time(), self.deliverer.integration.id,
                                    thread_ts, detail, "cxslack stopped before Slack's answer came"))  # fmt: skip

        try:
            body, _ = self._post(thread.channel, text, blocks, self._metadata(UPDATE_EVENT, key, event), what,
                                 self._rerun(case, event), fallback=new_message, thread_ts=thread_ts,
                                 code="update_in_doubt", before=before, record=(purpose, detail),
                                 reply_broadcast=mode is ReplyMode.THREAD_BROADCAST or None)  # fmt: skip
        except CxError as exc:
            if exc.code != "update_in_doubt":
                book.settle(purpose)  # refused: nothing was posted
            raise
        book.settle(purpose)
        return body, action

    def _post(self, channel: str, text: str, blocks: list[dict[str, Any]], metadata: dict[str, Any], what: str,
              rerun: str, *, fallback: bool, thread_ts: str | None = None, code: str = "root_in_doubt",
              before: Callable[[str, str], None] | None = None, record: tuple[str, str] | None = None,
              reply_broadcast: bool | None = None) -> tuple[dict[str, Any], bool]:  # fmt: skip
        """Post once to `channel`; with `fallback`, to the connector's fallback channel when Slack
        refused it or it certainly did not arrive — never while it may have. In doubt: `code`,
        exit 5, and (with `record`: purpose and detail) the record the rerun settles first."""
        from cxslack.delivery import Unsettled
        from cxslack.slack.client import SlackError

        def once(where: str) -> dict[str, Any]:
            post = uuid.uuid4().hex
            if before is not None:
                before(post, where)
            try:
                return dict(self.deliverer.post_once(where, text, blocks, metadata=metadata, post=post,
                                                     thread_ts=thread_ts, reply_broadcast=reply_broadcast))  # fmt: skip
            except Unsettled as unsettled:
                if record is not None:
                    self.deliverer.in_doubt.record(unsettled.record(record[0], self.deliverer.integration.id,
                                                                    record[1]))  # fmt: skip
                error = unsettled.described(code, what, rerun)
                raise (self._root_in_doubt(error, rerun) if code == "root_in_doubt" else error) from None

        try:
            return once(channel), False
        except SlackError as exc:
            if not fallback or exc.token_invalid or channel == self.connector.fallback_channel:
                raise
        return once(self.connector.fallback_channel), True

    def _what(self, kind: str, case: dict[str, Any]) -> str:
        return f"The {kind} of {case_name(case)} on connector {self.connector.name}"

    def _rerun(self, case: dict[str, Any], event: CaseEvent | None = None) -> str:
        command = f"cxslack cases notify {case_name(case)} --connector {self.connector.id}"
        return command + (f" --event {event.value}" if event else "")

    def _metadata(self, event_type: str, key: str, event: CaseEvent) -> dict[str, Any]:
        return {
            "event_type": event_type,
            "event_payload": {"case_id": key, "connector": self.connector.id, "event": event.value},
        }

    def _refresh_root(
        self, case: dict[str, Any], thread: CaseThread, link: str | None, assignee: Assignee
    ) -> bool:
        """Edit the root in place so it always shows the Case's current status and priority, and
        the buttons that now apply."""
        from cxslack.slack.client import SlackError

        text, blocks = case_root_message(case, link, assignee, buttons=self.buttons(case))
        access = self.deliverer.access
        if access is None:
            return False
        try:
            access.call("chat.update", channel=thread.channel, ts=thread.ts, text=text, blocks=blocks)
        except SlackError as exc:
            if exc.code in {"message_not_found", "cant_update_message"}:
                return False
            raise
        return True

    def _find_root(self, case: dict[str, Any], pending: PendingRoot) -> CaseThread | None:
        """A root posted just before a crash, found by its metadata in the channels' history.
        None only when every channel it could be in was searched; CxError (root_in_doubt) otherwise."""
        from cxslack.delivery import in_doubt_error, metadata_of

        key, connector = case_key(case), self.connector.id

        def is_root(message: dict[str, Any]) -> bool:
            kind, payload = metadata_of(message)
            return (
                kind == ROOT_EVENT and payload.get("case_id") == key and payload.get("connector") == connector
            )

        since = _epoch(pending.updated)
        found = self.deliverer.find_posted(pending.channels, since, is_root)
        if found.message is not None and found.channel is not None:
            return CaseThread(key, connector, found.channel, str(found.message["ts"]),
                              self.deliverer.integration.id, case_name(case))  # fmt: skip
        if found.certain:
            return None
        raise self._root_in_doubt(
            in_doubt_error("root_in_doubt", self._what("root message", case), pending.channels, since,
                           "cxslack stopped before Slack's answer came", found.unsearchable, self._rerun(case)),
            self._rerun(case),
        )  # fmt: skip

    @staticmethod
    def _root_in_doubt(error: CxError, rerun: str) -> CxError:
        """A root that did arrive can be adopted: say how."""
        error.hint = f"{error.hint} If it did arrive: {rerun} --root-link <its message link>."
        return error


def _epoch(stamp: str | None) -> float:
    """Seconds since the epoch of an RFC 3339 time (0 when there is none)."""
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp() if stamp else 0.0
    except ValueError:
        return 0.0


def parse_message_link(link: str) -> tuple[str, str]:
    """(channel ID, ts) from a Slack message link (…/archives/C0123ABCD/p1700000000000100)."""
    match = re.search(r"/archives/([CG][A-Z0-9]+)/p(\d{7,})(?:[?#]|$)", link.strip())
    if not match:
        raise UsageError(
            "invalid_message_link",
            f"{link[:120]!r} is not a Slack message link",
            "Copy it in Slack with the message's ⋮ menu → Copy link (…/archives/C…/p…).",
        )
    digits = match.group(2)
    return match.group(1), f"{digits[:-6]}.{digits[-6:]}"
