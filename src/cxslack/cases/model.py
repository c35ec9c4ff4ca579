"""A Coralogix Case as cxslack sees it: events, reply modes, labels and the names it shows.

Shared by Case notifications, two-way sync and previews; no state and no Slack calls here.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from cxslack.errors import UsageError

ROOT_EVENT = "coralogix_case_notification"
UPDATE_EVENT = "coralogix_case_update"


class ReplyMode(StrEnum):
    NEW_MESSAGE = "new-message"
    THREAD = "thread"
    THREAD_BROADCAST = "thread-broadcast"


class CaseEvent(StrEnum):
    ACTIVATED = "activated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CLOSED = "closed"
    PRIORITY_CHANGED = "priority-changed"
    ASSIGNEE_CHANGED = "assignee-changed"


EVENT_TEXT = {
    CaseEvent.ACTIVATED: "Case activated",
    CaseEvent.ACKNOWLEDGED: "Case acknowledged",
    CaseEvent.RESOLVED: "Case resolved",
    CaseEvent.CLOSED: "Case closed",
    CaseEvent.PRIORITY_CHANGED: "Priority changed",
    CaseEvent.ASSIGNEE_CHANGED: "Assignee changed",
}
STATUS_EVENT = {
    "ACTIVE": CaseEvent.ACTIVATED,
    "ACKNOWLEDGED": CaseEvent.ACKNOWLEDGED,
    "RESOLVED": CaseEvent.RESOLVED,
    "CLOSED": CaseEvent.CLOSED,
}


def status_label(case: dict[str, Any]) -> str:
    raw = str(case.get("status") or "UNKNOWN").removeprefix("CASE_STATUS_")
    return raw.replace("_", " ").capitalize()


def priority_label(case: dict[str, Any]) -> str:
    return str(case.get("priority") or "").removeprefix("CASE_PRIORITY_") or "-"


def case_key(case: dict[str, Any]) -> str:
    return str(case.get("id") or case.get("readableId"))


def case_name(case: dict[str, Any]) -> str:
    return str(case.get("readableId") or case.get("id"))


def case_labels(case: dict[str, Any]) -> dict[str, list[str]]:
    """Case labels as the templates see them (`_context.entityLabels["team"][0]`), whatever the shape:
    a key → list map, [{key, value}] pairs, "key:value" strings, or bare tags (under "tags")."""
    labels = case.get("labels")
    out: dict[str, list[str]] = {}
    if isinstance(labels, dict):
        for key, value in labels.items():
            out[str(key)] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        return out
    for item in labels if isinstance(labels, list) else []:
        if isinstance(item, dict) and "key" in item:
            out.setdefault(str(item["key"]), []).append(str(item.get("value", "")))
            continue
        match = re.fullmatch(r"([^:=]+)[:=](.*)", str(item))
        key, value = (match.group(1), match.group(2)) if match else ("tags", str(item))
        out.setdefault(key, []).append(value)
    return out


def template_context(case: dict[str, Any], event: CaseEvent) -> dict[str, Any]:
    """What a connector's `cases` override renders against (Coralogix's variables for Cases)."""
    return {
        "case": case,
        "_context": {
            "entityType": "cases",
            "entitySubType": event.value,
            "entityLabels": case_labels(case),
            "system": {"name": "coralogix"},
        },
    }


def case_from_doc(doc: Any, where: str) -> dict[str, Any]:
    """A Case object from parsed JSON: the object itself or `{"case": …}` (webhooks send either)."""
    case = doc.get("case", doc) if isinstance(doc, dict) else None
    if not isinstance(case, dict) or not (case.get("id") or case.get("readableId")):
        raise UsageError(
            "invalid_case_json", f'{where}: expected a Case object (or {{"case": …}}) with id or readableId'
        )
    return case


def event_for(case: dict[str, Any], given: str | None) -> CaseEvent:
    if given:
        try:
            return CaseEvent(given)
        except ValueError:
            raise UsageError(
                "invalid_event",
                f"unknown event {given!r}",
                "Use one of: " + ", ".join(e.value for e in CaseEvent),
            ) from None
    status = str(case.get("status") or "").removeprefix("CASE_STATUS_")
    return STATUS_EVENT.get(status, CaseEvent.ACTIVATED)
