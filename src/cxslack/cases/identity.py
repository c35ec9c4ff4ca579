"""The person, not the API key: which Coralogix user a Slack user who clicked a Case button is.

The product page asks for `users:read` to "resolve Slack user identity when a user interacts with
a Case notification" and `users:read.email` to "match the Slack user's email to their Coralogix
account for permission checks on Case interactions". So: the Slack user must belong to the
installed workspace (a Slack Connect guest clicks with their own team's id and is refused: their
email is another company's to vouch for), `users.info` gives their email, and the email must be
the username of an active member of the configured Coralogix team. Anything short of that is a
`Refusal` the person is told about; nothing is done in their name.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from cxslack.model import Integration
from cxslack.registry import quote

CACHE_SECONDS = 60.0  # a member removed from the team stops acting within a minute


@dataclass(frozen=True)
class Actor:
    """The person who clicked, as Coralogix knows them: acts are done (or noted) in their name."""

    slack_user: str
    name: str
    email: str
    coralogix_user: str  # the Coralogix user id (UserDetails.userId)

    @property
    def signature(self) -> str:
        """How Coralogix comments and reasons name them: `Alice Anderson <alice@example.com>`."""
        return f"{self.name} <{self.email}>"

    @property
    def shown(self) -> str:
        """How Slack notes name them (angle brackets are markup there): `Alice Anderson (alice@example.com)`."""
        return f"{self.name} ({self.email})"


@dataclass(frozen=True)
class Refusal:
    """Why a click cannot be done as the person, in words for them (and a code for the log)."""

    code: str
    message: str


class Identities:
    """Slack user → Actor (or Refusal), per integration, remembered for CACHE_SECONDS."""

    def __init__(self, coralogix: Any, team_id: int | None):
        self.coralogix = coralogix
        self.team_id = team_id
        self._cache: dict[tuple[str, str], tuple[float, Actor | Refusal]] = {}
        self._lock = threading.Lock()

    def who(self, integration: Integration, access: Any, payload: dict[str, Any]) -> Actor | Refusal:
        user = _dict(payload.get("user"))
        user_id = str(user.get("id") or "")
        home = integration.workspace.team_id if integration.workspace else None
        # `team` is null when the app is installed org-wide (an `enterprise` comes instead:
        # docs.slack.dev/reference/interaction-payloads/block_actions-payload); the clicking
        # person's own workspace is then only in `user.team_id`
        team_id = _dict(payload.get("team")).get("id") or user.get("team_id")
        if not user_id or home is None or team_id != home or user.get("team_id", home) != home:
            return Refusal(
                "other_team",
                "You are in another Slack workspace than the one Coralogix is installed in (Slack "
                "Connect), so cxslack cannot act as you in Coralogix.",
            )
        key = (integration.id, user_id)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        found = self._look_up(integration, access, user_id, home)
        if not (isinstance(found, Refusal) and found.code == "team_unknown"):
            with self._lock:
                self._cache[key] = (time.monotonic() + CACHE_SECONDS, found)
        return found

    def _look_up(self, integration: Integration, access: Any, user_id: str, home: str) -> Actor | Refusal:
        from cxslack.coralogix.team import find_active_member
        from cxslack.slack.client import SlackError

        if self.team_id is None:
            return Refusal(
                "team_unknown",
                "Case buttons are not set up yet: cxslack does not know the Coralogix team to find "
                "you in (an admin runs `cxslack coralogix configure --team-id ID`).",
            )
        try:
            body, _ = access.call("users.info", user=user_id, http_verb="GET")
        except SlackError as exc:
            if exc.code not in {"user_not_found", "users_not_found", "missing_scope"}:
                raise
            return Refusal("slack_user_unknown", "cxslack could not look you up in Slack.")
        user = body.get("user") or {}
        profile = user.get("profile") or {}
        if user.get("team_id") != home or user.get("deleted") or user.get("is_bot"):
            return Refusal(
                "other_team", "cxslack can only act for people of the workspace Coralogix is installed in."
            )
        email = str(profile.get("email") or "").strip()
        if not email:
            return Refusal(
                "no_email",
                "cxslack cannot read your Slack email (the app lacks users:read.email), so it cannot "
                f"find your Coralogix account (an admin runs `cxslack integrations authorize {quote(integration.name)}`).",
            )
        member = find_active_member(self.coralogix, self.team_id, email)
        if member is None:
            return Refusal(
                "unmapped",
                f"Your Slack email {email} is not an active member of the Coralogix team, so cxslack "
                "cannot act as you. Ask a Coralogix admin to add you with that email.",
            )
        name = str(profile.get("real_name") or profile.get("display_name") or member.name or user.get("name"))
        return Actor(user_id, name, email, member.user_id)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
