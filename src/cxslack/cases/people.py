"""Who a Case is assigned to, as people recognise them.

The Cases API gives a Case's `assignee` as `cases.v1.UserDetails {userId}` — a Coralogix user id
and nothing else (cases.yaml). The team-members API (`GET /aaa/teams/v2/{team_id}/search`,
team-members.yaml) gives each member's `userId`, `username` (their login: an email) and names;
Slack's `users.lookupByEmail` (users:read.email, on the product page's scope list) turns that
email into a Slack user, who is then @-mentioned. When no team id is configured, or the user is
not found, the assignee is left out of the message — never shown as an id or an object.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from cxslack.errors import CxError

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Assignee:
    """How a Case's assignee is shown: `shown` is a name or a Slack mention; None while the Case is
    assigned to someone cxslack could not resolve (the field is then left out)."""

    assigned: bool
    shown: str | None = None


UNASSIGNED = Assignee(False)


def assignee_user_id(case: dict[str, Any]) -> str | None:
    """The assignee's Coralogix user id (UserDetails.userId), if the Case has one."""
    details = case.get("assignee")
    if isinstance(details, dict):
        user_id = details.get("userId")
        return user_id if isinstance(user_id, str) and user_id else None
    return None


@dataclass(frozen=True)
class Person:
    name: str
    slack_user: str | None = None

    @property
    def mention(self) -> str:
        return f"<@{self.slack_user}>" if self.slack_user else self.name


class People:
    """Resolves Coralogix user ids to people, once per process: the team's members are read a
    page at a time on first need, Slack users looked up by email as they come up."""

    def __init__(self, coralogix: Any, slack: Any = None):
        """`coralogix`: a CoralogixClient (its settings name the team), or None; `slack`: a
        SlackAccess to mention people with, or None."""
        self.coralogix = coralogix
        settings = getattr(coralogix, "settings", None)
        self.team_id: int | None = getattr(settings, "team_id", None)
        self.slack = slack
        self._lock = threading.Lock()
        self._members: dict[str, Any] | None = None  # userId → TeamMember
        self._slack_users: dict[str, str | None] = {}  # email → Slack user id

    def assignee(self, case: dict[str, Any]) -> Assignee:
        details = case.get("assignee")
        if not details:
            return UNASSIGNED
        if isinstance(details, str):  # a Case from a webhook that names its assignee
            return Assignee(True, details)
        user_id = assignee_user_id(case)
        person = self.person(user_id) if user_id else None
        return Assignee(True, None if person is None else person.name)

    def assignee_for_slack(self, case: dict[str, Any]) -> Assignee:
        """As `assignee`, with the person @-mentioned when Slack knows their email."""
        user_id = assignee_user_id(case)
        person = self.person(user_id) if user_id else None
        if person is None:
            return self.assignee(case)
        return Assignee(True, person.mention)

    def person(self, user_id: str) -> Person | None:
        member = self._member(user_id)
        if member is None:
            return None
        return Person(member.name, self._slack_user(member.username))

    def _member(self, user_id: str) -> Any:
        from cxslack.coralogix.team import search_members

        if self.team_id is None or self.coralogix is None:
            return None
        with self._lock:
            if self._members is None:
                try:  # every member, active or not: a Case can stay assigned to someone who left
                    self._members = {
                        m.user_id: m for m in search_members(self.coralogix, self.team_id, status=None)
                    }
                except CxError:
                    self._members = {}  # the name is a nicety: a Case still posts without it
            return self._members.get(user_id)

    def _slack_user(self, username: str) -> str | None:
        from cxslack.slack.client import SlackError

        if self.slack is None or not _EMAIL.fullmatch(username):
            return None
        with self._lock:
            if username not in self._slack_users:
                try:
                    body, _ = self.slack.call("users.lookupByEmail", email=username, http_verb="GET")
                    user = body.get("user") if isinstance(body.get("user"), dict) else {}
                    self._slack_users[username] = str(user.get("id") or "") or None
                except SlackError:
                    self._slack_users[username] = None  # not in Slack, or users:read.email declined
            return self._slack_users[username]
