"""Notification Center's connector JSON and cxslack's Connector, converted without losing anything.

cxslack models a Slack connector's id, name, description, integration, channel, fallback channel
and the channel templates of the entity types it knows (ALERTS, CASES, TEST_NOTIFICATIONS).
Everything else a Coralogix connector carries (diagnostics, fields newer than this tool,
overrides for entity types it does not know such as OLLY_SCHEDULED_TASKS, extra keys inside
known ones) is its *residue*: split off when a connector comes in, laid back under the modelled
values when it goes out, so a round trip keeps it intact.

`normalised` flattens a connector for comparison the way Coralogix's Terraform provider does:
server-managed fields and diagnostics ignored, enum prefixes dropped, config fields and
overrides compared as sets (by name), a missing description equal to an empty one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from cxslack.connectors import Connector, EntityType, RemoteState, slug_id
from cxslack.coralogix.notification_center import CONNECTOR_TYPE_PREFIX, ENTITY_TYPE_PREFIX, SLACK, bare
from cxslack.errors import UsageError
from cxslack.model import utc_now

SERVER_MANAGED = ("createTime", "updateTime", "teamId")  # output only: never sent, never compared
NOT_COMPARED = (*SERVER_MANAGED, "diagnostics")
MODELLED = ("id", "name", "description", "type", "connectorConfig", "configOverrides")
CONFIG_FIELDS = ("integrationId", "channel", "fallbackChannel")
_ORDER = {
    "name": 0,
    "description": 1,
    "type": 2,
    **{f"connectorConfig.{f}": 3 + n for n, f in enumerate(CONFIG_FIELDS)},
}


@dataclass
class Incoming:
    """A Coralogix connector split into what cxslack models and its residue."""

    id: str
    name: str
    description: str
    integration_id: str
    channel: str
    fallback_channel: str
    overrides: dict[EntityType, str] = field(default_factory=dict)
    residue: dict[str, Any] = field(default_factory=dict)
    update_time: str | None = None

    def to_connector(self, integration: str, existing: Connector | None = None) -> Connector:
        """The local connector (integration: a local id); local-only settings of `existing` stay."""
        return Connector(
            id=self.id,
            name=self.name,
            integration=integration,
            channel=self.channel,
            fallback_channel=self.fallback_channel,
            description=self.description,
            overrides=dict(self.overrides),
            case_reply_mode=existing.case_reply_mode if existing else None,
            case_actions=existing.case_actions if existing else True,
            coralogix=RemoteState(self.update_time, self.residue)
            if self.update_time or self.residue
            else None,
            created_at=existing.created_at if existing else utc_now(),
            updated_at=existing.updated_at if existing else utc_now(),
        )


def known_entity(value: Any) -> EntityType | None:
    if not isinstance(value, str):
        return None
    try:
        return EntityType.parse(value)
    except UsageError:
        return None


def split(body: Any, where: str, *, code: str = "invalid_connector", id_required: bool = True) -> Incoming:
    """A connector object (what `{"connector": …}` holds) → Incoming; malformed → UsageError(code)."""

    def bad(problem: str) -> UsageError:
        return UsageError(
            code, f"{where}: {problem}", "Expected Notification Center's Slack connector shape."
        )

    if not isinstance(body, dict):
        raise bad('not a {"connector": {...}} object')
    kind = bare(body.get("type", SLACK), CONNECTOR_TYPE_PREFIX)
    if kind != SLACK:
        raise bad(f"connector type {body.get('type')!r} is not SLACK")
    name, description, ident = body.get("name"), body.get("description", ""), body.get("id")
    if not isinstance(name, str) or not name.strip():
        raise bad("connector.name is required")
    if not isinstance(description, str):
        raise bad("connector.description must be a string")
    if not isinstance(ident, str) or not ident:
        if id_required:
            raise bad("connector.id is required")
        ident = slug_id(name)
    residue = {k: copy.deepcopy(v) for k, v in body.items() if k not in MODELLED and k not in SERVER_MANAGED}

    config = body.get("connectorConfig") or {}
    items = config.get("fields", []) if isinstance(config, dict) else None
    if not isinstance(items, list) or not all(
        isinstance(f, dict) and isinstance(f.get("fieldName"), str) for f in items
    ):
        raise bad("connectorConfig.fields must be a list of {fieldName, value} objects")
    values: dict[str, str] = {}
    rest_fields: list[dict[str, Any]] = []
    for item in items:
        name_ = item["fieldName"]
        if name_ in CONFIG_FIELDS and name_ not in values and isinstance(item.get("value"), str):
            values[name_] = item["value"]
            extra = {k: copy.deepcopy(v) for k, v in item.items() if k not in ("fieldName", "value")}
            if extra:
                rest_fields.append({"fieldName": name_, **extra})
        else:
            rest_fields.append(copy.deepcopy(item))
    missing = [f for f in CONFIG_FIELDS if not values.get(f)]
    if missing:
        raise bad(f"connectorConfig.fields lacks {', '.join(missing)}")
    config_rest = {k: copy.deepcopy(v) for k, v in config.items() if k != "fields"}
    if rest_fields:
        config_rest["fields"] = rest_fields
    if config_rest:
        residue["connectorConfig"] = config_rest

    entries = body.get("configOverrides") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise bad("configOverrides must be a list of objects")
    overrides: dict[EntityType, str] = {}
    rest_overrides: list[dict[str, Any]] = []
    for entry in entries:
        entity = known_entity(entry.get("entityType"))
        fields_ = entry.get("fields") or []
        if entity is None or entity in overrides or not isinstance(fields_, list):
            rest_overrides.append(copy.deepcopy(entry))  # an entity type cxslack does not know: as it is
            continue
        entry_rest = {k: copy.deepcopy(v) for k, v in entry.items() if k not in ("entityType", "fields")}
        kept: list[Any] = []
        for item in fields_:
            channel = isinstance(item, dict) and item.get("fieldName") == "channel"
            if channel and isinstance(item.get("template"), str) and entity not in overrides:
                overrides[entity] = item["template"]
                extra = {k: copy.deepcopy(v) for k, v in item.items() if k not in ("fieldName", "template")}
                if extra:
                    kept.append({"fieldName": "channel", **extra})
            else:
                kept.append(copy.deepcopy(item))
        if kept:
            entry_rest["fields"] = kept
        if entry_rest or entity not in overrides:
            rest_overrides.append({"entityType": entity.coralogix, **entry_rest})
    if rest_overrides:
        residue["configOverrides"] = rest_overrides
    update_time = body.get("updateTime")
    return Incoming(
        id=ident,
        name=name,
        description=description,
        integration_id=values["integrationId"],
        channel=values["channel"],
        fallback_channel=values["fallbackChannel"],
        overrides=overrides,
        residue=residue,
        update_time=update_time if isinstance(update_time, str) else None,
    )


def compose(connector: Connector, integration_id: str) -> dict[str, Any]:
    """The Notification Center connector to send: the modelled values over the residue."""
    residue = copy.deepcopy(connector.coralogix.residue) if connector.coralogix else {}
    config_rest = residue.pop("connectorConfig", {})
    rest_fields = config_rest.pop("fields", [])
    fields: list[dict[str, Any]] = []
    for api_name, value in (("integrationId", integration_id), ("channel", connector.channel),
                            ("fallbackChannel", connector.fallback_channel)):  # fmt: skip
        host = next((f for f in rest_fields if f.get("fieldName") == api_name and "value" not in f), None)
        if host is not None:
            rest_fields.remove(host)
        fields.append({**(host or {"fieldName": api_name}), "value": value})
    rest_overrides = residue.pop("configOverrides", [])
    overrides: list[dict[str, Any]] = []
    for entity, template in sorted(connector.overrides.items()):
        host = next((e for e in rest_overrides if _hosts(e, entity)), None)
        if host is not None:
            rest_overrides.remove(host)
        entry = dict(host or {"entityType": entity.coralogix})
        others = list(entry.get("fields") or [])
        extra = next((f for f in others if isinstance(f, dict) and f.get("fieldName") == "channel"), None)
        if extra is not None:
            others.remove(extra)
        entry["fields"] = [{**(extra or {"fieldName": "channel"}), "template": template}, *others]
        overrides.append(entry)
    overrides += [e for e in (_without_stale_channel(e) for e in rest_overrides) if e]
    body: dict[str, Any] = {
        "id": connector.id,
        "name": connector.name,
        "description": connector.description,
        "type": SLACK,
        "connectorConfig": {"fields": fields + rest_fields, **config_rest},
        "configOverrides": overrides,
    }
    for key, value in residue.items():
        body.setdefault(key, value)
    return body


def _hosts(entry: dict[str, Any], entity: EntityType) -> bool:
    """A residue entry of this entity type with no channel template of its own."""
    if known_entity(entry.get("entityType")) is not entity:
        return False
    return not any(isinstance(f, dict) and f.get("fieldName") == "channel" and "template" in f
                   for f in entry.get("fields") or [])  # fmt: skip


def _without_stale_channel(entry: dict[str, Any]) -> dict[str, Any] | None:
    """A residue entry of a known entity type whose channel override was removed locally: drop the
    leftover channel field (it has no template), and the entry when nothing else is left."""
    if known_entity(entry.get("entityType")) is None:
        return entry
    fields = [f for f in entry.get("fields") or []
              if not (isinstance(f, dict) and f.get("fieldName") == "channel" and "template" not in f)]  # fmt: skip
    rest = {k: v for k, v in entry.items() if k not in ("entityType", "fields")}
    if not fields and not rest:
        return None
    return {**entry, "fields": fields} if "fields" in entry else entry


def for_write(body: dict[str, Any]) -> dict[str, Any]:
    """A connector as read, ready to send back: the server's own fields left out."""
    return {k: copy.deepcopy(v) for k, v in body.items() if k not in SERVER_MANAGED}


def with_integration(body: dict[str, Any], integration_id: str) -> dict[str, Any]:
    """The same connector with only `integrationId` changed (the migration's PUT)."""
    out = for_write(body)
    for item in (out.get("connectorConfig") or {}).get("fields", []):
        if isinstance(item, dict) and item.get("fieldName") == "integrationId":
            item["value"] = integration_id
            return out
    raise UsageError("invalid_connector", f"connector {body.get('id')} has no integrationId field")


def integration_of(body: dict[str, Any]) -> str | None:
    config = body.get("connectorConfig")
    for item in config.get("fields", []) if isinstance(config, dict) else []:
        if isinstance(item, dict) and item.get("fieldName") == "integrationId":
            value = item.get("value")
            return value if isinstance(value, str) else None
    return None


def config_value(body: dict[str, Any], name: str) -> str | None:
    config = body.get("connectorConfig")
    for item in config.get("fields", []) if isinstance(config, dict) else []:
        if isinstance(item, dict) and item.get("fieldName") == name:
            value = item.get("value")
            return value if isinstance(value, str) else None
    return None


# -- comparison --------------------------------------------------------------------------------
def normalised(body: dict[str, Any]) -> dict[str, Any]:
    """field path → value, for comparing a local and a remote connector."""
    out: dict[str, Any] = {
        "name": body.get("name", ""),
        "description": body.get("description") or "",
        "type": bare(body.get("type", SLACK), CONNECTOR_TYPE_PREFIX),
    }
    config = body.get("connectorConfig")
    config = config if isinstance(config, dict) else {}
    for item in config.get("fields") or []:
        if isinstance(item, dict):
            out[f"connectorConfig.{item.get('fieldName')}"] = _value(item, "value")
    for key, value in config.items():
        if key != "fields":
            out[f"connectorConfig[{key}]"] = value
    for entry in body.get("configOverrides") or []:
        if not isinstance(entry, dict):
            continue
        entity = bare(entry.get("entityType"), ENTITY_TYPE_PREFIX)
        for item in entry.get("fields") or []:
            if isinstance(item, dict):
                out[f"configOverrides.{entity}.{item.get('fieldName')}"] = _value(item, "template")
        for key, value in entry.items():
            if key not in ("entityType", "fields"):
                out[f"configOverrides.{entity}[{key}]"] = value
    for key, value in body.items():
        if key not in MODELLED and key not in NOT_COMPARED:
            out[key] = value
    return out


def _value(item: dict[str, Any], key: str) -> Any:
    """A field's value, or the whole field (less its name) when it carries more than the value."""
    if set(item) <= {"fieldName", key}:
        return item.get(key)
    return {k: v for k, v in item.items() if k != "fieldName"}


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, from, to) for every normalised field that differs, modelled fields first."""
    keys = sorted(set(before) | set(after), key=lambda k: (_ORDER.get(k, 99), k))
    return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]
