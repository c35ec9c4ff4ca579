"""Case notifications in Slack: one root message per (Case, connector), updates per reply mode.

The (Case, connector) → (channel, root ts) map lives in the state dir. Every message carries
Slack message metadata (event type and Case id); if cxslack dies between posting a root and
saving the map, the next notify finds the root in the channel's history instead of posting a
second one. Reading history needs the channel's ID (remembered from earlier posts, or looked up
with --channel-lookup), a *:history scope and membership; when any of that is missing, notify
says so and posts nothing, until the operator adopts the root (`--root-link`) or confirms it is
not there (`--repost-root`). A per-(Case, connector) file lock makes concurrent notifies take turns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

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
from cxslack.connectors import Connector, EntityType, channel_label
from cxslack.errors import CxError, UsageError
from cxslack.slack.messages import case_root_message, case_update_message
from cxslack.state import open_state
from cxslack.state.records import CaseThread, PendingRoot


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

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


class CaseNotifier:
    """Posts a Case's notifications for one connector through its integration."""

    def __init__(self, registry: Any, connector: Connector, deliverer: Any, people: People | None = None):
        self.registry = registry
        self.connector = connector
        self.deliverer = deliverer
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

    def notify(self, case: dict[str, Any], event: CaseEvent, link: str | None, *,
               root_link: str | None = None, repost_root: bool = False) -> NotifyResult:  # fmt: skip
        """Post the root or an update. `root_link` adopts that Slack message as the Case's root on
        this connector; `repost_root` confirms that a root whose post was in doubt never arrived."""
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
            elif isinstance(found, PendingRoot) and not repost_root:
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
                body, used_fallback = self._post_root(case, event, link, channel, ROOT_EVENT, assignee)
                thread = CaseThread(key, connector, body["channel"], body["ts"], self.deliverer.integration.id,
                                    case_name(case))  # fmt: skip
                self.threads.map(thread)
                return NotifyResult(case_name(case), connector, thread.channel, thread.ts, thread.ts, "root",
                                    mode.value, False, used_fallback)  # fmt: skip
            if mode is ReplyMode.NEW_MESSAGE:  # only the first card is the root
                body, _ = self._post_root(case, event, link, thread.channel, UPDATE_EVENT, assignee)
                posted_channel, posted_ts, action = body["channel"], body["ts"], "new-message"
            else:
                text, blocks = case_update_message(case, event, assignee)
                body = self.deliverer.post(
                    thread.channel, text, blocks, thread_ts=thread.ts,
                    reply_broadcast=mode is ReplyMode.THREAD_BROADCAST or None,
                    metadata=self._metadata(UPDATE_EVENT, key, event),
                )  # fmt: skip
                posted_channel, posted_ts, action = thread.channel, body["ts"], "reply"
            root_updated = self._refresh_root(case, thread, link, assignee)
            self.threads.map(replace(thread, case_name=case_name(case)))  # and when it was last notified
            return NotifyResult(case_name(case), connector, posted_channel, posted_ts, thread.ts, action,
                                mode.value, root_updated, recovered_root=recovered)  # fmt: skip

    def _metadata(self, event_type: str, key: str, event: CaseEvent) -> dict[str, Any]:
        return {
            "event_type": event_type,
            "event_payload": {"case_id": key, "connector": self.connector.id, "event": event.value},
        }

    def _post_root(self, case: dict[str, Any], event: CaseEvent, link: str | None, channel: str,
                   kind: str, assignee: Assignee) -> tuple[dict[str, Any], bool]:  # fmt: skip
        from cxslack.slack.client import SlackError

        text, blocks = case_root_message(case, link, assignee)
        metadata = self._metadata(kind, case_key(case), event)
        try:
            return self.deliverer.post(channel, text, blocks, metadata=metadata), False
        except SlackError as exc:
            if exc.token_invalid or channel == self.connector.fallback_channel:
                raise
            return self.deliverer.post(self.connector.fallback_channel, text, blocks, metadata=metadata), True

    def _refresh_root(
        self, case: dict[str, Any], thread: CaseThread, link: str | None, assignee: Assignee
    ) -> bool:
        """Edit the root in place so it always shows the Case's current status and priority."""
        from cxslack.slack.client import SlackError

        text, blocks = case_root_message(case, link, assignee)
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
        from cxslack.delivery import metadata_of

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
        name = case_name(case)
        when = f" at {pending.updated}" if pending.updated else ""
        retry = f"cxslack cases notify {name} --connector {connector}"
        raise CxError(
            "root_in_doubt",
            f"{name} on connector {connector}: cxslack stopped{when} while posting the Case's root message "
            f"(to {' or '.join(channel_label(c) for c in pending.channels)}) and cannot tell whether it "
            "arrived, so it posts nothing rather than risk a second one: " + "; ".join(found.unsearchable),
            f"Look in Slack. If the root is there, adopt it: {retry} --root-link <its message link>. "
            f"If it is not: {retry} --repost-root",
        )


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
