"""A login as Slack lists it, and as cxslack delivers it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cxslack.errors import CxError
from cxslack.model import Integration
from cxslack.redact import redact


@dataclass(frozen=True)
class Login:
    """One entry of team.accessLogs, as Slack sent it, with its dedupe digest."""

    digest: str
    date_first: int
    entry: Mapping[str, Any]

    @classmethod
    def from_api(cls, entry: Any) -> Login:
        try:
            date_first = int(entry["date_first"])
        except (KeyError, TypeError, ValueError):
            raise CxError(
                "slack_bad_response",
                "Slack sent an access-log entry without a date_first",
                "This is unexpected from Slack; please report it.",
            ) from None
        # repr of a tuple of strings is unambiguous and, unlike json.dumps, cheap at 100,000 entries
        key = (str(entry.get("user_id", "")), str(entry.get("ip", "")), str(entry.get("user_agent", "")))
        digest = hashlib.sha256(repr((*key, date_first)).encode()).hexdigest()[:24]
        return cls(digest, date_first, entry)


@dataclass(frozen=True)
class Record:
    """What is delivered for a login: its JSON text (NDJSON line, Coralogix `text`) and time."""

    login: Login
    text: str
    timestamp_ms: int


def to_record(login: Login, integration: Integration) -> Record:
    team_id = integration.workspace.team_id if integration.workspace else None
    doc = {**login.entry, "team_id": team_id, "integration_id": integration.id}
    last = login.entry.get("date_last")
    seconds = last if isinstance(last, int) and not isinstance(last, bool) and last > 0 else login.date_first
    text = redact(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
    return Record(login, text, seconds * 1000)
