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


def status_of(case: dict[str, Any]) -> str:
    """CASE_STATUS_ACKNOWLEDGED → "ACKNOWLEDGED"; "" when the Case has none."""
    return str(case.get("status") or "").removeprefix("CASE_STATUS_")


def status_label(case: dict[str, Any]) -> str:
    """CASE_STATUS_PENDING_ACTIVATION → "Pending activation" (the CaseStatus enum, as read)."""
    raw = str(case.get("status") or "UNKNOWN").removeprefix("CASE_STATUS_")
    return raw.replace("_", " ").capitalize()


def priority_label(case: dict[str, Any]) -> str:
    """CASE_PRIORITY_P1 → "P1" (the CasePriority enum, as read); unspecified → "-"."""
    raw = str(case.get("priority") or "").removeprefix("CASE_PRIORITY_")
    return "-" if raw in ("", "UNSPECIFIED") else raw.replace("_", " ")


def case_key(case: dict[str, Any]) -> str:
    return str(case.get("id") or case.get("readableId"))


def case_name(case: dict[str, Any]) -> str:
    return str(case.get("readableId") or case.get("id"))


def case_title_line(case: dict[str, Any]) -> str:
    """`CASE-123 (uuid)`; a Case without its optional readableId is named by its id alone."""
    readable, ident = case.get("readableId"), case.get("id")
    if readable and ident and readable != ident:
        return f"{readable} ({ident})"
    return str(readable or ident or "-")


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


def label_text(case: dict[str, Any]) -> str:
    """Labels as Coralogix shows them, `key:value`; a key without a value, and bare tags, as they are."""
    return ", ".join(value if key == "tags" else f"{key}:{value}" if value else key
                     for key, values in case_labels(case).items() for value in values) or "-"  # fmt: skip


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


# The Case fields cxslack reads, and the JSON types Coralogix's Cases API gives them (OpenAPI v5,
# components.schemas.Case): a value of another type would be shown as garbage, so it is refused.
_CASE_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "readableId": (str,),
    "title": (str,),
    "status": (str,),  # CaseStatus: CASE_STATUS_ACTIVE, …
    "priority": (str,),  # CasePriority: CASE_PRIORITY_P1, …
    "labels": (list, dict),  # [{key, value}] (v1.KeyValue); key → value(s) maps are read too
    "assignee": (dict, str),  # cases.v1.UserDetails, or a name
    "createTime": (str,),
    "updateTime": (str,),
}


def case_from_doc(doc: Any, where: str, expected: str | None = None) -> dict[str, Any]:
    """A Case object from parsed JSON: the object itself or `{"case": …}` (webhooks send either).

    Fields cxslack shows must have the API's types; with `expected` (the CASE argument), the
    document must be that Case (its id or readableId), so one Case is never posted as another."""
    case = doc.get("case", doc) if isinstance(doc, dict) else None
    if not isinstance(case, dict) or not (case.get("id") or case.get("readableId")):
        raise UsageError(
            "invalid_case_json",
            f'{where}: expected a Case object (or {{"case": …}}) with id or readableId',
            "Pass the Case as Coralogix's Cases API or a Case webhook gives it.",
        )
    wrong = [
        f"{name} must be {' or '.join(_JSON_TYPE[t] for t in types)}, not {_json_type(case[name])}"
        for name, types in _CASE_FIELD_TYPES.items()
        if case.get(name) is not None and not isinstance(case[name], types)
    ]
    if isinstance(case.get("labels"), list) and not all(_is_label(item) for item in case["labels"]):
        wrong.append('labels must be {"key": …, "value": …} objects (or "key:value" strings)')
    if wrong:
        raise UsageError("invalid_case_json", f"{where}: {'; '.join(wrong)}",
                         "Pass the Case as Coralogix's Cases API or a Case webhook gives it.")  # fmt: skip
    if expected is not None and expected.casefold() not in {
        str(case.get(k)).casefold() for k in ("id", "readableId") if case.get(k)
    }:
        raise UsageError(
            "case_mismatch",
            f"{where} is Case {case_name(case)}, not {expected}",
            f"Pass the Case the JSON describes: cxslack cases notify {case_name(case)} --case-json …",
        )
    return case


_JSON_TYPE: dict[type, str] = {str: "a string", list: "an array", dict: "an object"}


def _json_type(value: Any) -> str:
    for kind, name in (
        (bool, "a boolean"), (int, "a number"), (float, "a number"), (str, "a string"), (list, "an array"),
        (dict, "an object"),
    ):  # fmt: skip
        if isinstance(value, kind):
            return name
    return "null"


def _is_label(item: Any) -> bool:
    if isinstance(item, dict):
        return isinstance(item.get("key"), str) and isinstance(item.get("value", ""), str)
    return isinstance(item, str)


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
    return STATUS_EVENT.get(status_of(case), CaseEvent.ACTIVATED)
