"""Channel IDs: what cxslack has learned about an integration's channels from Slack's answers.

Slack takes a channel *name* only in chat.postMessage (and chat.scheduleMessage); every other
method cxslack uses — conversations.join, .history, .replies, chat.update, chat.unfurl — takes
the ID and answers `channel_not_found` for a name. chat.postMessage answers with the ID, so the
first post to a channel by name teaches cxslack its ID and no later call needs the name. The
only other way from a name to an ID is conversations.list, which needs channels:read and
groups:read: scopes the product page does not request (cxslack's own `--channel-lookup`).

A refused post by name is remembered too (`channel_not_found` for a private channel the app is
not in), so doctor can say what Slack answered when nothing else is known. The pairs live in
the state layer (`State.channels`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cxslack.state.interface import ChannelBook
    from cxslack.state.records import LearnedChannel

# Slack channel IDs: C… (channels, public and newer private ones), G… (older private ones);
# names are lower-case, so the two never overlap.
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{6,}")


def is_channel_id(ref: str) -> bool:
    return bool(CHANNEL_ID.fullmatch(ref))


def channel_name(ref: str) -> str:
    return ref.strip().removeprefix("#")


class IntegrationChannels:
    """One integration's channels: an ID given is used as it is, a name maps to the ID Slack
    answered a post to it with."""

    def __init__(self, book: ChannelBook, integration: str):
        self.book = book
        self.integration = integration

    def id_for(self, ref: str) -> str | None:
        if is_channel_id(ref):
            return ref
        learned = self.book.get(self.integration, channel_name(ref))
        return learned.id if learned is not None else None

    def refusal(self, ref: str) -> LearnedChannel | None:
        """How Slack refused the last post to `ref` by name, if it did (and no ID is known)."""
        if is_channel_id(ref):
            return None
        learned = self.book.get(self.integration, channel_name(ref))
        return learned if learned is not None and learned.error else None

    def learn(self, ref: str, channel_id: str) -> None:
        if not is_channel_id(ref) and self.id_for(ref) != channel_id:
            self.book.learn(self.integration, channel_name(ref), channel_id)

    def refused(self, ref: str, error: str) -> None:
        if not is_channel_id(ref):
            self.book.refused(self.integration, channel_name(ref), error)

    def forget(self, ref: str) -> None:
        if not is_channel_id(ref):
            self.book.forget(self.integration, channel_name(ref))
