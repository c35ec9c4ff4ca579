"""What each Slack Web API method the sandbox serves demands, and where Slack says so.

One row per method: the scope a token needs (or, for the conversations.* methods, the scope for
the kind of channel named), whether its `channel` argument takes a name or only a conversation ID,
and whether the caller must be a member of that channel. `slack_api.call` applies the row before
the method runs; tests/test_sandbox_rules.py checks every row against the running sandbox, so
the sandbox cannot drift back into accepting what Slack refuses.

What Slack answers when a rule is broken:
- a scope missing: `missing_scope`, with `needed` (the scope, or for a method that serves several
  kinds of channel and no channel to tell them by, every scope that would do) and `provided` (the
  token's scopes, comma-joined);
- a channel *name* where only an ID is taken: `channel_not_found` (Slack looks the value up as an
  ID; slack-api.md, "Channel IDs versus names"), or the row's `name_error` (files.completeUploadExternal
  validates `channel_id`'s shape first: `invalid_arguments`);
- a private channel the caller is not in: `channel_not_found` (it is invisible to them);
- history of a channel the caller is not in: `not_in_channel`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

DOCS = "https://docs.slack.dev/reference/methods/"

# Slack conversation IDs: C… (public and newer private channels), G… (older private channels),
# D… (DMs). Names are lower-case; an ID is upper-case letters and digits.
CONVERSATION_ID = re.compile(r"[CGD][A-Z0-9]{2,}")


class ChannelArg(StrEnum):
    NONE = "none"  # the method takes no channel
    ID = "id"  # a conversation ID only: a name is channel_not_found
    ID_OR_NAME = "id_or_name"  # an ID, `#name` or `name` (chat.postMessage, chat.scheduleMessage)


@dataclass(frozen=True)
class MethodRule:
    method: str
    source: str  # the Slack page this row comes from
    scope: str | None = None  # needed whatever the channel
    public_scope: str | None = None  # needed when the channel is public
    private_scope: str | None = None  # needed when the channel is private
    channel: ChannelArg = ChannelArg.NONE
    member: bool = False  # the caller must be in the channel (not_in_channel)
    channel_required: bool = True  # False: the method has another way to name its target
    user_token_only: bool = False  # a scope only user tokens can hold (admin)
    channel_param: str = "channel"  # the argument that names the channel
    name_error: str = "channel_not_found"  # what a *name* where only an ID is taken gets

    @property
    def channel_scopes(self) -> tuple[str, ...]:
        return tuple(s for s in (self.public_scope, self.private_scope) if s)


RULES: dict[str, MethodRule] = {
    r.method: r
    for r in (
        # any valid token; granted scopes come back in x-oauth-scopes
        MethodRule("auth.test", DOCS + "auth.test"),
        MethodRule("auth.revoke", DOCS + "auth.revoke"),
        # "channel: an encoded ID or channel name"; posting to a public channel the bot is not in
        # needs chat:write.public (else not_in_channel); a private one it is not in is invisible.
        MethodRule(
            "chat.postMessage", DOCS + "chat.postmessage", scope="chat:write", channel=ChannelArg.ID_OR_NAME
        ),
        # "channel: … Can be an encoded ID, or a name" (the ephemeral message goes to `user`)
        MethodRule(
            "chat.postEphemeral",
            DOCS + "chat.postephemeral",
            scope="chat:write",
            channel=ChannelArg.ID_OR_NAME,
        ),
        # "No scope required"; "channel: The ID of the conversation or channel containing the message"
        MethodRule("chat.getPermalink", DOCS + "chat.getpermalink", channel=ChannelArg.ID),
        # "channel: channel containing the message to be updated" — an ID
        MethodRule("chat.update", DOCS + "chat.update", scope="chat:write", channel=ChannelArg.ID),
        # "channel: channel ID of the message" (the channel+ts form; unfurl_id+source takes none)
        MethodRule(
            "chat.unfurl",
            DOCS + "chat.unfurl",
            scope="links:write",
            channel=ChannelArg.ID,
            channel_required=False,
        ),
        # "channel: ID of conversation to join"; public channels only
        MethodRule(
            "conversations.join", DOCS + "conversations.join", scope="channels:join", channel=ChannelArg.ID
        ),
        # "channel: conversation ID to learn more about"; channels:read / groups:read by kind
        MethodRule(
            "conversations.info",
            DOCS + "conversations.info",
            public_scope="channels:read",
            private_scope="groups:read",
            channel=ChannelArg.ID,
        ),
        # types=public_channel needs channels:read, private_channel groups:read (checked per type)
        MethodRule(
            "conversations.list",
            DOCS + "conversations.list",
            public_scope="channels:read",
            private_scope="groups:read",
        ),
        # "channel: conversation ID to fetch history for"; *:history by kind, and membership
        MethodRule(
            "conversations.history",
            DOCS + "conversations.history",
            public_scope="channels:history",
            private_scope="groups:history",
            channel=ChannelArg.ID,
            member=True,
        ),
        MethodRule(
            "conversations.replies",
            DOCS + "conversations.replies",
            public_scope="channels:history",
            private_scope="groups:history",
            channel=ChannelArg.ID,
            member=True,
        ),
        MethodRule("users.info", DOCS + "users.info", scope="users:read"),
        MethodRule("users.lookupByEmail", DOCS + "users.lookupbyemail", scope="users:read.email"),
        # "Gets a URL for an edge external file upload": files:write; no channel (the share names it)
        MethodRule("files.getUploadURLExternal", DOCS + "files.getuploadurlexternal", scope="files:write"),
        # files:write; "channel_id: Channel ID where the file will be shared. If not specified the file
        # will be private" — an ID (a name is invalid_arguments: slack-api.md, "Channel IDs versus
        # names"), and "not_in_channel: User/bot membership is required for the specified channel"
        MethodRule(
            "files.completeUploadExternal",
            DOCS + "files.completeuploadexternal",
            scope="files:write",
            channel=ChannelArg.ID,
            member=True,
            channel_required=False,
            channel_param="channel_id",
            name_error="invalid_arguments",
        ),
        # the `admin` scope exists only on user tokens (docs.slack.dev/reference/scopes/admin)
        MethodRule("team.accessLogs", DOCS + "team.accesslogs", scope="admin", user_token_only=True),
    )
}

# conversations.list: the scope each `types` value needs (docs.slack.dev/reference/methods/conversations.list)
LIST_TYPE_SCOPES = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "mpim": "mpim:read",
    "im": "im:read",
}


def is_conversation_id(value: str) -> bool:
    return bool(CONVERSATION_ID.fullmatch(value))
