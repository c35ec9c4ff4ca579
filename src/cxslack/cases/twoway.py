"""Two-way comment sync: human replies in a Case notification's thread become Case comments.

Only v0.1.0 integrations with two-way sync do this. Skipped: the bot's own messages, every
message cxslack posted (recognised by its metadata), Cases whose sync is muted, and threads
cxslack does not track. Each Slack message syncs once, keyed by (channel, ts), whether it
arrives as an event (`cxslack listen`), a retried event, or a poll (`cxslack sync`). Slack users
are mapped to an email only when they belong to the installed team: a Slack Connect guest
keeps their display name and gets no email, so nobody can pose as a member.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from cxslack.cases.model import ROOT_EVENT, UPDATE_EVENT
from cxslack.model import Integration, Status
from cxslack.registry import Registry
from cxslack.state import open_state
from cxslack.state.interface import ReplyClaim
from cxslack.state.records import CaseThread, SyncedReply

CXSLACK_EVENTS = {ROOT_EVENT, UPDATE_EVENT, "cxslack_migration_test"}


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
        state = open_state(registry.store)
        self.threads, self.settings, self.ledger = state.threads, state.settings, state.ledger
        self._authors: dict[str, Author] = {}
        self._workspace_url: str | None = None

    @staticmethod
    def enabled_for(integration: Integration) -> bool:
        return (
            integration.supports_cases_features
            and integration.two_way_sync
            and integration.status is Status.ACTIVE
        )

    def tracked_thread(self, channel: str, thread_ts: str) -> CaseThread | None:
        """The Case thread when (channel, thread_ts) is a Case root cxslack posted."""
        return self.threads.at(channel, thread_ts)

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
        thread, skipped = self._case_thread_of(channel, message)
        if thread is None:
            return skipped
        with self.ledger.claim(channel, str(message.get("ts"))) as claim:
            return self._comment(claim, thread, channel, message)

    def _case_thread_of(self, channel: str, message: dict[str, Any]) -> tuple[CaseThread | None, SyncResult]:
        """The Case thread a human reply belongs to, or why the message is not synced."""
        thread_ts, ts = message.get("thread_ts"), str(message.get("ts"))
        if not thread_ts or thread_ts == ts:
            return None, SyncResult("skipped", "not a thread reply")
        reason = self._skip(message)
        if reason:
            return None, SyncResult("skipped", reason)
        thread = self.tracked_thread(channel, str(thread_ts))
        if thread is None:
            return None, SyncResult("skipped", "not a Case notification thread")
        if self._muted(thread.case_id, thread.case_name):
            return None, SyncResult("skipped", "sync is muted for this Case", thread.case_id)
        return thread, SyncResult("comment", case=thread.case_id)

    def _comment(
        self, claim: ReplyClaim, thread: CaseThread, channel: str, message: dict[str, Any]
    ) -> SyncResult:
        """Post the reply as a comment unless it was (checked under the claim: `listen` and any
        number of `sync` runs never both post it)."""
        if claim.synced is not None:
            return SyncResult("skipped", "already synced", thread.case_id)
        ts = str(message.get("ts"))
        author = self.author(str(message.get("user") or ""))
        text = self._comment_text(author, str(message.get("text") or ""), channel, ts, "replied in Slack")
        comment = self.coralogix.add_comment(thread.case_id, text)
        claim.record(SyncedReply(thread.case_id, thread.case_name, _event_id(comment), author.user_id))
        return SyncResult("comment", case=thread.case_id, comment=comment)

    def _edited(self, event: dict[str, Any]) -> SyncResult:
        channel, message = str(event.get("channel")), event.get("message") or {}
        ts = str(message.get("ts"))
        with self.ledger.claim(channel, ts) as claim:
            synced = claim.synced
            if synced is None:  # an edit of a reply we never saw: sync it now
                thread, skipped = self._case_thread_of(channel, message)
                return skipped if thread is None else self._comment(claim, thread, channel, message)
            if self._muted(synced.case, synced.readable) or synced.edited_text == message.get("text"):
                return SyncResult("skipped", "muted or unchanged", synced.case)
            author = self.author(str(message.get("user") or synced.user or ""))
            text = self._comment_text(
                author, str(message.get("text") or ""), channel, ts, "edited their Slack reply"
            )
            comment = self.coralogix.add_comment(synced.case, text)
            claim.record(replace(synced, edited_text=message.get("text"), edit_comment=_event_id(comment)))
            return SyncResult("edit", case=synced.case, comment=comment)

    def _deleted(self, event: dict[str, Any]) -> SyncResult:
        channel = str(event.get("channel"))
        previous = event.get("previous_message") or {}
        ts = str(event.get("deleted_ts") or previous.get("ts"))
        with self.ledger.claim(channel, ts) as claim:
            synced = claim.synced
            if synced is None or synced.deleted:
                return SyncResult("skipped", "not synced, or deletion already recorded")
            author = self.author(str(previous.get("user") or synced.user or ""))
            link = self.permalink(channel, ts)
            comment = self.coralogix.add_comment(
                synced.case, f"{author.name} deleted their Slack reply ({link})."
            )
            claim.record(replace(synced, deleted=True, delete_comment=_event_id(comment)))
            return SyncResult("delete", case=synced.case, comment=comment)

    def _muted(self, case_id: str, readable: str | None = None) -> bool:
        """Muted under either of the Case's ids (settings may be saved by readable id or UUID)."""
        return bool(self.settings.get(readable or case_id, case_id).mute_sync)

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
        for thread in self.threads.all():
            if thread.integration != self.integration.id:
                continue
            if case_filter and not ({thread.case_id, str(thread.case_name)} & case_filter):
                continue
            channel, root = thread.channel, thread.ts
            cursor_key = f"{channel}|{root}"
            cursor = None
            while True:
                body, _ = self.access.call(
                    "conversations.replies", channel=channel, ts=root, oldest=self.ledger.cursor(cursor_key) or root,
                    limit=200, cursor=cursor, include_all_metadata=True, http_verb="GET",
                )  # fmt: skip
                for message in body.get("messages", []):
                    if str(message.get("ts")) == root:
                        continue
                    results.append(self.sync_reply(channel, message))
                    self.ledger.advance(cursor_key, str(message["ts"]))
                cursor = (body.get("response_metadata") or {}).get("next_cursor")
                if not body.get("has_more") or not cursor:
                    break
        self.ledger.polled()
        return results


def _event_id(comment: Any) -> str | None:
    if isinstance(comment, dict):
        return str(comment.get("id") or comment.get("eventId") or "") or None
    return None
