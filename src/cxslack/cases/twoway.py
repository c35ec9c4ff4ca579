"""Two-way comment sync: human replies in a Case notification's thread become Case comments.

Only v0.1.0 integrations with two-way sync do this. Skipped: the bot's own messages, every
message cxslack posted (recognised by its metadata), Cases whose sync is muted, and threads
cxslack does not track. Each Slack message syncs once, keyed by (channel, ts), whether it
arrives as an event (`cxslack listen`), a retried event, or a poll (`cxslack sync`). Slack users
are mapped to an email only when they belong to the installed team: a Slack Connect guest
keeps their display name and gets no email, so nobody can pose as a member.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxslack.cases.model import ROOT_EVENT, UPDATE_EVENT
from cxslack.cases.notify import CaseState
from cxslack.model import Integration, Status
from cxslack.registry import Registry
from cxslack.store import atomic_write, ensure_private_dir

CXSLACK_EVENTS = {ROOT_EVENT, UPDATE_EVENT, "cxslack_migration_test"}


class SyncLedger:
    """state/sync/ledger.json: (channel, ts) → what the reply became, plus poll checkpoints."""

    def __init__(self, state_dir: Path):
        self.dir = state_dir / "sync"
        self.path = self.dir / "ledger.json"

    def load(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            doc = {}
        doc.setdefault("messages", {})
        doc.setdefault("checkpoints", {})
        return doc

    def save(self, doc: dict[str, Any]) -> None:
        ensure_private_dir(self.dir)
        atomic_write(self.path, json.dumps(doc, sort_keys=True).encode())

    def seen(self, channel: str, ts: str) -> dict[str, Any] | None:
        entry = self.load()["messages"].get(f"{channel}|{ts}")
        return entry if isinstance(entry, dict) else None

    def record(self, channel: str, ts: str, entry: dict[str, Any]) -> None:
        doc = self.load()
        doc["messages"][f"{channel}|{ts}"] = {
            **doc["messages"].get(f"{channel}|{ts}", {}),
            **entry,
            "at": time.time(),
        }
        self.save(doc)

    def checkpoint(self, thread_key: str) -> str | None:
        value = self.load()["checkpoints"].get(thread_key)
        return str(value) if value else None

    def polled(self) -> None:
        """Remember when `cxslack sync` last ran (doctor asks whether anything reads the threads)."""
        doc = self.load()
        doc["last_poll"] = time.time()
        self.save(doc)

    def advance(self, thread_key: str, ts: str) -> None:
        doc = self.load()
        if float(ts) > float(doc["checkpoints"].get(thread_key, 0) or 0):
            doc["checkpoints"][thread_key] = ts
            self.save(doc)


@dataclass
class Author:
    user_id: str
    name: str
    email: str | None


@dataclass
class SyncResult:
    action: str  # comment | edit | delete | skipped
    reason: str = ""
    case: str | None = None
    comment: dict[str, Any] | None = field(default=None, repr=False)


class ReplySync:
    """Turns one Slack workspace's thread replies into Case comments."""

    def __init__(self, registry: Registry, integration: Integration, access: Any, coralogix: Any):
        self.registry = registry
        self.integration = integration
        self.access = access
        self.coralogix = coralogix
        state_dir = registry.store.ensure_state_dir()
        self.cases = CaseState(state_dir)
        self.ledger = SyncLedger(state_dir)
        self._authors: dict[str, Author] = {}
        self._workspace_url: str | None = None

    @staticmethod
    def enabled_for(integration: Integration) -> bool:
        return (
            integration.supports_cases_features
            and integration.two_way_sync
            and integration.status is Status.ACTIVE
        )

    def tracked_thread(self, channel: str, thread_ts: str) -> tuple[str, dict[str, Any]] | None:
        """(case id, thread record) when (channel, thread_ts) is a Case root cxslack posted."""
        for key, record in self.cases.all_threads().items():
            if (
                record.get("channel") == channel
                and record.get("ts") == thread_ts
                and not record.get("pending")
            ):
                return key.split("|", 1)[0], record
        return None

    def _skip(self, message: dict[str, Any]) -> str | None:
        meta = message.get("metadata") or {}
        if message.get("bot_id") or message.get("subtype") == "bot_message":
            return "a bot's message"
        if message.get("user") and message.get("user") == self.integration.bot_user_id:
            return "the app's own message"
        if meta.get("event_type") in CXSLACK_EVENTS:
            return "posted by cxslack"
        return None

    def handle_message(self, event: dict[str, Any]) -> SyncResult:
        subtype = event.get("subtype")
        if subtype == "message_changed":
            return self._edited(event)
        if subtype == "message_deleted":
            return self._deleted(event)
        if subtype not in (None, "thread_broadcast", "file_share"):
            return SyncResult("skipped", f"subtype {subtype}")
        return self.sync_reply(str(event.get("channel")), event)

    def sync_reply(self, channel: str, message: dict[str, Any]) -> SyncResult:
        thread_ts, ts = message.get("thread_ts"), str(message.get("ts"))
        if not thread_ts or thread_ts == ts:
            return SyncResult("skipped", "not a thread reply")
        reason = self._skip(message)
        if reason:
            return SyncResult("skipped", reason)
        tracked = self.tracked_thread(channel, str(thread_ts))
        if tracked is None:
            return SyncResult("skipped", "not a Case notification thread")
        case_id, record = tracked
        if self._muted(case_id, record.get("case")):
            return SyncResult("skipped", "sync is muted for this Case", case_id)
        if self.ledger.seen(channel, ts):
            return SyncResult("skipped", "already synced", case_id)
        author = self.author(str(message.get("user") or ""))
        text = self._comment_text(author, str(message.get("text") or ""), channel, ts, "replied in Slack")
        comment = self.coralogix.add_comment(case_id, text)
        self.ledger.record(
            channel,
            ts,
            {
                "case": case_id,
                "readable": record.get("case"),
                "comment": _event_id(comment),
                "user": author.user_id,
            },
        )
        return SyncResult("comment", case=case_id, comment=comment)

    def _edited(self, event: dict[str, Any]) -> SyncResult:
        channel, message = str(event.get("channel")), event.get("message") or {}
        ts = str(message.get("ts"))
        synced = self.ledger.seen(channel, ts)
        if not synced:
            return self.sync_reply(channel, message)  # an edit of a reply we never saw: sync it now
        if self._muted(synced["case"], synced.get("readable")) or synced.get("edited_text") == message.get(
            "text"
        ):
            return SyncResult("skipped", "muted or unchanged", synced["case"])
        author = self.author(str(message.get("user") or synced.get("user") or ""))
        text = self._comment_text(
            author, str(message.get("text") or ""), channel, ts, "edited their Slack reply"
        )
        comment = self.coralogix.add_comment(synced["case"], text)
        self.ledger.record(
            channel, ts, {"edited_text": message.get("text"), "edit_comment": _event_id(comment)}
        )
        return SyncResult("edit", case=synced["case"], comment=comment)

    def _deleted(self, event: dict[str, Any]) -> SyncResult:
        channel = str(event.get("channel"))
        previous = event.get("previous_message") or {}
        ts = str(event.get("deleted_ts") or previous.get("ts"))
        synced = self.ledger.seen(channel, ts)
        if not synced or synced.get("deleted"):
            return SyncResult("skipped", "not synced, or deletion already recorded")
        author = self.author(str(previous.get("user") or synced.get("user") or ""))
        link = self.permalink(channel, ts)
        comment = self.coralogix.add_comment(
            synced["case"], f"{author.name} deleted their Slack reply ({link})."
        )
        self.ledger.record(channel, ts, {"deleted": True, "delete_comment": _event_id(comment)})
        return SyncResult("delete", case=synced["case"], comment=comment)

    def _muted(self, case_id: str, readable: str | None = None) -> bool:
        """Muted under either of the Case's ids (settings may be saved by readable id or UUID)."""
        return bool(self.cases.settings({"id": case_id, "readableId": readable or case_id}).get("mute_sync"))

    def author(self, user_id: str) -> Author:
        """Slack user → display name, and email only for members of the installed team."""
        if user_id in self._authors:
            return self._authors[user_id]
        from cxslack.slack.client import SlackError

        author = Author(user_id, user_id or "someone", None)
        try:
            body, _ = self.access.call("users.info", user=user_id, http_verb="GET")
            user = body.get("user") or {}
            profile = user.get("profile") or {}
            author.name = str(
                profile.get("real_name") or profile.get("display_name") or user.get("name") or user_id
            )
            home_team = self.integration.workspace.team_id if self.integration.workspace else None
            if home_team and user.get("team_id") == home_team:
                author.email = profile.get("email")
        except SlackError as exc:
            if exc.code not in {"user_not_found", "users_not_found", "missing_scope"}:
                raise
        self._authors[user_id] = author
        return author

    def permalink(self, channel: str, ts: str) -> str:
        if self._workspace_url is None:
            self._workspace_url = self.access.auth_test().url or "https://slack.com/"
        return f"{self._workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"

    def _comment_text(self, author: Author, text: str, channel: str, ts: str, verb: str) -> str:
        who = f"{author.name} <{author.email}>" if author.email else author.name
        return f"{who} {verb}:\n{text}\n\n{self.permalink(channel, ts)}"

    # -- polling (`cxslack sync`) ------------------------------------------------------------------
    def poll(self, case_filter: set[str] | None = None) -> list[SyncResult]:
        """conversations.replies for every tracked thread from its checkpoint on."""
        results: list[SyncResult] = []
        for key, record in sorted(self.cases.all_threads().items()):
            case_id = key.split("|", 1)[0]
            if record.get("pending") or record.get("integration") != self.integration.id:
                continue
            if case_filter and not ({case_id, str(record.get("case"))} & case_filter):
                continue
            channel, root = str(record["channel"]), str(record["ts"])
            thread_key = f"{channel}|{root}"
            cursor = None
            while True:
                body, _ = self.access.call(
                    "conversations.replies", channel=channel, ts=root, oldest=self.ledger.checkpoint(thread_key) or root,
                    limit=200, cursor=cursor, include_all_metadata=True, http_verb="GET",
                )  # fmt: skip
                for message in body.get("messages", []):
                    if str(message.get("ts")) == root:
                        continue
                    results.append(self.sync_reply(channel, message))
                    self.ledger.advance(thread_key, str(message["ts"]))
                cursor = (body.get("response_metadata") or {}).get("next_cursor")
                if not body.get("has_more") or not cursor:
                    break
        self.ledger.polled()
        return results


def _event_id(comment: Any) -> str | None:
    if isinstance(comment, dict):
        return str(comment.get("id") or comment.get("eventId") or "") or None
    return None
