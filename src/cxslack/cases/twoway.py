"""Two-way comment sync: human replies in a Case notification's thread become Case comments.

Only v0.1.0 integrations with two-way sync do this. Skipped: the bot's own messages, every
message cxslack posted (recognised by its metadata), Cases whose sync is muted, and threads
cxslack does not track. Each Slack message syncs once, keyed by (channel, ts), whether it
arrives as an event (`cxslack listen`), a retried event, or a poll (`cxslack sync`). Slack users
are mapped to an email only when they belong to the installed team: a Slack Connect guest
keeps their display name and gets no email, so nobody can pose as a member.

An edited reply updates the comment it became (`PUT /cases/events/v1/{event_id}/comments`), a
deleted one deletes it (`DELETE …/comments`); when Coralogix refuses the deletion, the comment
is rewritten to say the reply was deleted. A `message_changed` that leaves the text as it was
(Slack sends one when a link unfurls) changes nothing. Events are read defensively: the edited
message's `ts` may be missing (then `previous_message`'s is used), a `previous_message` may come
alone, fields may be absent or of another type; what cannot be placed is skipped, never guessed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

from cxslack.cases.model import ROOT_EVENT, UPDATE_EVENT
from cxslack.errors import AuthError, CxError, NotFoundError, UsageError
from cxslack.events import RetryableError
from cxslack.model import Integration, Status
from cxslack.registry import Registry
from cxslack.state import open_state
from cxslack.state.interface import ReplyClaim
from cxslack.state.records import CaseThread, SyncedReply

CXSLACK_EVENTS = {ROOT_EVENT, UPDATE_EVENT, "cxslack_migration_test"}
# Message subtypes a person writes (docs.slack.dev/reference/events/message): a plain message, one
# also sent to the channel, one with files, and a /me message. Everything else (bot_message,
# channel_join, message_replied, …) is Slack or an app speaking, never a reply to sync.
HUMAN_SUBTYPES = (None, "thread_broadcast", "file_share", "me_message")
# How long a comment sent by a process that then died could still land: the Coralogix client's
# request timeout (15 s), and a margin. Until then the reply waits; after it, it is sent again.
IN_DOUBT_SECONDS = 20.0


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
    case_name: str | None = None  # the Case's readable id (CASE-1), as `cases notify` names it


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
        if message.get("bot_id") or message.get("bot_profile") or message.get("subtype") == "bot_message":
            return "a bot's message"
        if message.get("user") and message.get("user") == self.integration.bot_user_id:
            return "the app's own message"
        own_app = self.integration.extra.get("app_id")
        if own_app and message.get("app_id") == own_app:  # posted through this app, whatever the token
            return "the app's own message"
        if meta.get("event_type") in CXSLACK_EVENTS:
            return "posted by cxslack"
        return None

    def handle_message(self, event: dict[str, Any]) -> SyncResult:
        subtype = event.get("subtype")
        channel = event.get("channel")
        if not isinstance(channel, str) or not channel or channel == "COMPOSER":
            return SyncResult("skipped", "no channel")
        if subtype == "message_changed":
            return self._edited(channel, event)
        if subtype == "message_deleted":
            return self._deleted(channel, event)
        if subtype not in HUMAN_SUBTYPES:
            return SyncResult("skipped", f"subtype {subtype}")
        return self.sync_reply(channel, event)

    def sync_reply(self, channel: str, message: dict[str, Any]) -> SyncResult:
        thread, skipped = self._case_thread_of(channel, message)
        if thread is None:
            return skipped
        with self.ledger.claim(channel, str(message["ts"])) as claim:
            return self._comment(claim, thread, channel, message)

    def _case_thread_of(self, channel: str, message: dict[str, Any]) -> tuple[CaseThread | None, SyncResult]:
        """The Case thread a human reply belongs to, or why the message is not synced."""
        thread_ts, ts = _ts(message.get("thread_ts")), _ts(message.get("ts"))
        if ts is None:
            return None, SyncResult("skipped", "the message has no ts")
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
        if claim.synced is not None and claim.synced.posting is None:
            return SyncResult("skipped", "already synced", thread.case_id)
        ts, text = str(message["ts"]), _text(message)
        author = self.author(str(message.get("user") or ""))
        where = (channel, ts, _ts(message.get("thread_ts")))
        comment = self._once(claim, thread.case_id, self._comment_text(author, text, *where))
        claim.record(SyncedReply(thread.case_id, thread.case_name, _event_id(comment), author.user_id,
                                 edited_text=text))  # fmt: skip
        return SyncResult("comment", case=thread.case_id, comment=comment, case_name=thread.case_name)

    def _once(self, claim: ReplyClaim, case_id: str, text: str) -> Any:
        """Add the comment once, even across a crash: its text is recorded as `posting` before it is
        sent, so whoever holds the claim next looks for it on the Case's timeline (a process that
        died after sending it) instead of sending it again, waiting while it could still land."""
        prior = claim.synced
        if prior is not None and prior.posting is not None:
            landed = self._landed(prior.case, prior.posting)
            if landed is not None:
                return landed
            if time.time() - (prior.posting_at or 0) < IN_DOUBT_SECONDS:
                raise RetryableError(
                    "comment_in_doubt",
                    f"a comment for this reply was sent to Case {prior.case} by a process that stopped; "
                    "waiting to see whether it landed before sending it again",
                )
        claim.record(SyncedReply(case_id, posting=text, posting_at=time.time()))
        try:
            return self.coralogix.add_comment(case_id, text)
        except CxError as exc:
            if exc.code != "coralogix_unreachable":  # Coralogix answered: it did not take the comment
                claim.forget()
            raise  # no answer: in doubt, and the marker says so

    def _landed(self, case_id: str, text: str) -> dict[str, Any] | None:
        """The comment with exactly this text on the Case's timeline, if there is one."""
        for event in self.coralogix.list_events(case_id):
            comment = _dict(_dict(_dict(event).get("eventData")).get("comment"))  # v5: eventData.comment
            if comment.get("unsafeText") == text:
                return _dict(event)
        return None

    def _edited(self, channel: str, event: dict[str, Any]) -> SyncResult:
        """message_changed: the comment the reply became now says what the reply says."""
        message, previous = _dict(event.get("message")), _dict(event.get("previous_message"))
        ts = _ts(message.get("ts")) or _ts(previous.get("ts"))
        if ts is None:
            return SyncResult("skipped", "message_changed names no message (no ts)")
        # the edited message as a whole: what the event left out, the previous version says
        message = {**previous, **message, "ts": ts}
        with self.ledger.claim(channel, ts) as claim:
            synced = claim.synced
            if synced is None or synced.posting is not None:  # never seen (or in doubt): sync it now
                thread, skipped = self._case_thread_of(channel, message)
                return skipped if thread is None else self._comment(claim, thread, channel, message)
            text = _text(message)
            if synced.deleted or synced.edited_text == text or self._muted(synced.case, synced.readable):
                return SyncResult("skipped", "deleted, unchanged or muted", synced.case)
            if synced.comment is None:
                return SyncResult("skipped", "no comment id was recorded for this reply", synced.case)
            author = self.author(str(message.get("user") or synced.user or ""))
            try:
                comment = self.coralogix.update_comment(
                    synced.comment,
                    self._comment_text(author, text, channel, ts, _ts(message.get("thread_ts"))),
                )
            except NotFoundError:  # the comment was deleted in Coralogix: nothing to keep current
                claim.record(replace(synced, edited_text=text))
                return SyncResult("skipped", "the comment no longer exists", synced.case)
            claim.record(replace(synced, edited_text=text))
            return SyncResult("edit", case=synced.case, comment=comment, case_name=synced.readable)

    def _deleted(self, channel: str, event: dict[str, Any]) -> SyncResult:
        """message_deleted: the comment the reply became is deleted (or, when Coralogix refuses,
        rewritten to say so)."""
        previous = _dict(event.get("previous_message"))
        ts = _ts(event.get("deleted_ts")) or _ts(previous.get("ts"))
        if ts is None:
            return SyncResult("skipped", "message_deleted names no message (no deleted_ts)")
        with self.ledger.claim(channel, ts) as claim:
            synced = claim.synced
            if synced is None or synced.deleted:
                return SyncResult("skipped", "not synced, or deletion already recorded")
            if synced.comment is None:
                return SyncResult("skipped", "no comment id was recorded for this reply", synced.case)
            try:
                self.coralogix.delete_comment(synced.comment)
                comment = None
            except NotFoundError:
                comment = None  # already gone
            except (AuthError, UsageError):  # Coralogix refuses: say so in the comment itself
                author = self.author(str(previous.get("user") or synced.user or ""))
                link = self.permalink(channel, ts, _ts(previous.get("thread_ts")))
                marker = f"{author.name} deleted this reply in Slack ({link})."
                comment = self.coralogix.update_comment(synced.comment, marker)
            claim.record(replace(synced, deleted=True))
            return SyncResult("delete", case=synced.case, comment=comment, case_name=synced.readable)

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

    def permalink(self, channel: str, ts: str, thread_ts: str | None = None) -> str:
        """The message's link in Slack's permalink format (docs.slack.dev/reference/methods/
        chat.getPermalink): `…/archives/C…/p<ts without the dot>`, and for a message in a thread
        `?thread_ts=<parent ts>&cid=<channel>` after it, so the link opens the thread. Built from
        auth.test's workspace URL instead of a chat.getPermalink call per reply."""
        if self._workspace_url is None:
            self._workspace_url = self.access.auth_test().url or "https://slack.com/"
        link = f"{self._workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
        if thread_ts and thread_ts != ts:
            link += f"?thread_ts={thread_ts}&cid={channel}"
        return link

    def _comment_text(self, author: Author, text: str, channel: str, ts: str, thread_ts: str | None) -> str:
        who = f"{author.name} <{author.email}>" if author.email else author.name
        return f"{who} replied in Slack:\n{text}\n\n{self.permalink(channel, ts, thread_ts)}"

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
                    ts = _ts(message.get("ts")) if isinstance(message, dict) else None
                    if ts is None or ts == root:
                        continue
                    results.append(self.sync_reply(channel, message))
                    self.ledger.advance(cursor_key, ts)
                cursor = (body.get("response_metadata") or {}).get("next_cursor")
                if not body.get("has_more") or not cursor:
                    break
        self.ledger.polled()
        return results


def _event_id(comment: Any) -> str | None:
    """A CaseEvent's `eventId` (cases.yaml)."""
    if isinstance(comment, dict):
        return str(comment.get("eventId") or "") or None
    return None


_TS = re.compile(r"\d{1,12}\.\d{1,9}")


def _ts(value: Any) -> str | None:
    """A Slack message timestamp ("1700000000.000100"), or None for anything else."""
    return value if isinstance(value, str) and _TS.fullmatch(value) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(message: dict[str, Any]) -> str:
    """What the reply says; a file shared with it is named (a file alone has no text at all)."""
    text = message.get("text")
    text = text if isinstance(text, str) else ""
    files = message.get("files")
    names = [str(f.get("name") or f.get("title")) for f in files if isinstance(f, dict)
             and (f.get("name") or f.get("title"))] if isinstance(files, list) else []  # fmt: skip
    if names:
        text += ("\n" if text else "") + f"[shared in Slack: {', '.join(names)}]"
    return text
