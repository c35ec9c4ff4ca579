"""Coralogix team members: who in a team a Slack user's email belongs to.

`GET /aaa/teams/v2/{team_id}/search` (team-members.yaml, UsersMgmtService_SearchUsers) filters by
`username` (a partial match) and `status`, a page at a time (`page_size`, an int64 `page_token`);
each user has a `userId`, a `username` (the login: an email), names and a `status`. A partial
match is never taken for the person: only a username equal to the email, case aside, of an
active member counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cxslack.coralogix.client import NO_NAMED_PERMISSION, Call, CoralogixClient
from cxslack.errors import CxError

ACTIVE = "USER_STATUS_ACTIVE"
PAGE_SIZE = 100
MAX_PAGES = 50  # a search by one email that pages on and on is answered as "not found", never a loop


@dataclass(frozen=True)
class TeamMember:
    user_id: str
    username: str
    first_name: str = ""
    last_name: str = ""
    status: str = ""

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.username

    @property
    def active(self) -> bool:
        return self.status.removeprefix("USER_STATUS_") == "ACTIVE"

    @classmethod
    def from_api(cls, doc: Any) -> TeamMember | None:
        """An rbac.v2.User; None without a userId and a username (nothing to act as)."""
        if not isinstance(doc, dict):
            return None
        text: dict[str, str] = {k: v if isinstance(v := doc.get(k), str) else "" for k in
                                ("userId", "username", "firstName", "lastName", "status")}  # fmt: skip
        if not (text["userId"] and text["username"]):
            return None
        return cls(text["userId"], text["username"], text["firstName"], text["lastName"], text["status"])


def search_members(
    client: CoralogixClient, team_id: int, username: str | None = None, status: str | None = ACTIVE
) -> Iterator[TeamMember]:
    """Every member of the team matching `username` (partially) and `status`, page by page."""
    call = Call(f"search the members of Coralogix team {team_id}", NO_NAMED_PERMISSION,
                f"no Coralogix team {team_id}: check the team id (cxslack coralogix show)")  # fmt: skip
    token: int | None = None
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"page_size": PAGE_SIZE}
        if username:
            params["username"] = username
        if status:
            params["status"] = status
        if token is not None:
            params["page_token"] = token
        doc = client.management("GET", f"/aaa/teams/v2/{team_id}/search", call, params=params)
        users = doc.get("users", [])
        if not isinstance(users, list):
            raise CxError("coralogix_bad_response", f"Coralogix sent no user list for team {team_id}")
        for user in users:
            member = TeamMember.from_api(user)
            if member is not None:
                yield member
        next_token = doc.get("nextPageToken")
        # int64 in the spec; protobuf JSON may carry it as a string. 0 or missing: the last page.
        # A page the filter left empty is not the end while a token says there is more (MAX_PAGES
        # bounds a server that never stops); a token that does not move on is the end.
        if isinstance(next_token, str) and next_token.isdigit():
            next_token = int(next_token)
        if (
            not isinstance(next_token, int)
            or isinstance(next_token, bool)
            or not next_token
            or next_token == token
        ):
            return
        token = next_token


def find_active_member(client: CoralogixClient, team_id: int, email: str) -> TeamMember | None:
    """The active member whose username is `email` (case aside), or None."""
    wanted = email.strip().casefold()
    if not wanted:
        return None
    for member in search_members(client, team_id, username=email.strip()):
        if member.username.casefold() == wanted and member.active:
            return member
    return None
