"""Clicks on Slack buttons (`block_actions`) as inbox envelopes, whichever transport brought them.

Over HTTP a click is `POST /slack/interactivity`, form-encoded with one `payload` field holding
the JSON, signed like the Events API; over Socket Mode it is an envelope of type `interactive`
with the same payload. Either way it becomes one inbox envelope::

    {"type": "block_actions", "event_id": "Ia…", "received_at": <unix time>, "payload": {…}}

Its id digests who clicked what, where and when (team, user, channel, message ts, action id,
`action_ts`): a payload Slack sends again is the same click and is stored once, while a second
click on the same button is a new one (the action ledger makes that one do nothing twice).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import parse_qs

from cxslack.errors import UsageError
from cxslack.json_input import parse_json

INTERACTIVITY_PATH = "/slack/interactivity"
CLICK_TYPE = "block_actions"


class NotAClick(ValueError):
    """A body that is not a form with a JSON `payload` object."""


def payload_from_form(body: bytes) -> dict[str, Any]:
    """The JSON object in a form-encoded `payload` field (what Slack posts to a request URL)."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise NotAClick("not a form") from None
    values = fields.get("payload") or []
    if len(values) != 1:
        raise NotAClick("no payload field")
    try:
        payload = parse_json(values[0].encode(), "the interaction payload")
    except UsageError:
        raise NotAClick("the payload is not JSON") from None
    if not isinstance(payload, dict):
        raise NotAClick("the payload is not a JSON object")
    return payload


def click_envelope(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The inbox envelope of a `block_actions` payload; None for anything else (acked, dropped)."""
    if payload.get("type") != CLICK_TYPE:
        return None
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    container = _dict(payload.get("container"))
    parts = (
        _dict(payload.get("team")).get("id")
        or _dict(payload.get("user")).get("team_id"),  # team: null org-wide
        _dict(payload.get("user")).get("id"),
        _dict(payload.get("channel")).get("id") or container.get("channel_id"),
        container.get("message_ts") or _dict(payload.get("message")).get("ts"),
        action.get("action_id"),
        action.get("action_ts"),
    )
    digest = hashlib.sha256("|".join(str(p or "") for p in parts).encode()).hexdigest()[:40]
    return {"type": CLICK_TYPE, "event_id": f"Ia{digest}", "received_at": time.time(), "payload": payload}


def describe(envelope: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, channel, message ts) for the listener's log line: no names, no text."""
    payload = _dict(envelope.get("payload"))
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    container = _dict(payload.get("container"))
    return (
        f"{CLICK_TYPE}/{action.get('action_id') or '-'}",
        str(container.get("channel_id") or _dict(payload.get("channel")).get("id") or "-"),
        str(container.get("message_ts") or "-"),
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
