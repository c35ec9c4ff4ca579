"""Slack connectors: where notifications land, compatible with Coralogix Notification Center.

A connector references one integration and has a `channel` (also where test notifications go),
a required `fallback_channel`, and per-entity-type overrides of `channel` as Tera templates.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cxslack.errors import ConfigError, NotFoundError, UsageError
from cxslack.model import utc_now, validate_name
from cxslack.registry import ConfigView, Registry, quote
from cxslack.slack.channels import CHANNEL_ID

ID_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")
ID_MAX, NAME_MAX, DESCRIPTION_MAX = 128, 200, 5000
CHANNEL_NAME_MAX = 80
REPLY_MODES = ("new-message", "thread", "thread-broadcast")


class EntityType(StrEnum):
    ALERTS = "alerts"
    CASES = "cases"
    TEST_NOTIFICATIONS = "test-notifications"

    @property
    def json_key(self) -> str:  # the contract's JSON key: test_notifications
        return self.value.replace("-", "_")

    @property
    def coralogix(self) -> str:  # Notification Center's entityType: TEST_NOTIFICATIONS
        return self.json_key.upper()

    @classmethod
    def parse(cls, text: str) -> EntityType:
        # Notification Center's names, bare (CASES) or prefixed (ENTITY_TYPE_CASES), work too
        wanted = text.strip().upper().removeprefix("ENTITY_TYPE_").lower().replace("_", "-")
        for member in cls:
            if member.value == wanted:
                return member
        raise UsageError(
            "invalid_entity_type",
            f"unknown entity type {text!r}",
            "Use one of: alerts, cases, test-notifications.",
        )


def normalise_channel(raw: str, what: str = "channel") -> str:
    """A Slack channel name (with or without '#') or id, checked against Slack's naming rules."""
    value = raw.strip()
    if CHANNEL_ID.fullmatch(value):
        return value
    name = value[1:] if value.startswith("#") else value
    problem = None
    if not name:
        problem = "is empty"
    elif len(name) > CHANNEL_NAME_MAX:
        problem = f"is longer than Slack's {CHANNEL_NAME_MAX} characters"
    elif name != name.lower():
        problem = "has upper-case letters (Slack channel names are lower-case)"
    elif not all(ch in "-_" or unicodedata.category(ch)[0] in "LN" for ch in name):
        problem = (
            "has spaces, periods or other characters Slack does not allow (only letters, digits, - and _)"
        )
    if problem:
        raise UsageError(
            "invalid_channel",
            f"{what} {raw!r} {problem}",
            "Use a channel name like payments-alerts (lower-case letters, numbers, - and _) or a channel id like C0123ABCD.",
        )
    return name


def channel_label(channel: str | None) -> str:
    """A channel as people read it: `#payments-alerts` for a name, an ID (C0123ABCD) as it is."""
    if not channel:
        return "no channel"
    return channel if CHANNEL_ID.fullmatch(channel) else f"#{channel.removeprefix('#')}"


def validate_connector_id(value: str) -> str:
    if not ID_PATTERN.fullmatch(value) or len(value) > ID_MAX:
        raise UsageError(
            "invalid_connector_id",
            f"connector id {value!r} must match {ID_PATTERN.pattern} and be at most {ID_MAX} characters",
        )
    return value


def slug_id(name: str) -> str:
    """An id Notification Center accepts, derived from a name: 'Payments on-call' → payments-on-call."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", ascii_name).strip("-_").lower()
    return (slug or "connector")[:ID_MAX]


@dataclass
class RemoteState:
    """What cxslack knows of a connector's copy in Coralogix Notification Center."""

    update_time: str | None = None  # its updateTime at the last pull or push: push refuses when it moved
    # Everything of the Coralogix connector cxslack does not model (unknown fields, diagnostics,
    # overrides for entity types it does not know), in Notification Center's shape, sent back intact.
    residue: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"update_time": self.update_time, "residue": self.residue}

    def to_toml(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.update_time:
            doc["update_time"] = self.update_time
        if self.residue:  # JSON text: TOML has no null, and this must come back exactly
            doc["residue"] = json.dumps(
                self.residue, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            )
        return doc


@dataclass
class Connector:
    id: str
    name: str
    integration: str  # integration id
    channel: str
    fallback_channel: str
    description: str = ""
    overrides: dict[EntityType, str] = field(default_factory=dict)
    case_reply_mode: str | None = None  # default for Cases without their own setting (cases.ReplyMode)
    case_actions: bool = True  # buttons on Case messages (v0.1.0 integrations); a Case can turn them off
    coralogix: RemoteState | None = None  # set once the connector was pulled from or pushed to Coralogix
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)

    def validate(self) -> None:
        from cxslack.templating import validate_template

        validate_connector_id(self.id)
        self.name = validate_name(self.name, "connector")
        if len(self.name) > NAME_MAX:
            raise UsageError("invalid_name", f"connector name is longer than {NAME_MAX} characters")
        if len(self.description) > DESCRIPTION_MAX:
            raise UsageError(
                "invalid_description", f"description is longer than {DESCRIPTION_MAX} characters"
            )
        self.channel = normalise_channel(self.channel)
        self.fallback_channel = normalise_channel(self.fallback_channel, "fallback channel")
        if self.case_reply_mode is not None and self.case_reply_mode not in REPLY_MODES:
            raise UsageError(
                "invalid_reply_mode",
                f"unknown reply mode {self.case_reply_mode!r}",
                "Use one of: " + ", ".join(REPLY_MODES),
            )
        for entity, template in self.overrides.items():
            try:
                validate_template(template)
            except UsageError as exc:
                raise UsageError(exc.code, f"--override {entity.value}: {exc.message}", exc.hint) from None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "integration": self.integration,
            "channel": self.channel,
            "fallback_channel": self.fallback_channel,
            "overrides": {e.json_key: t for e, t in sorted(self.overrides.items())},
            "case_reply_mode": self.case_reply_mode,
            "case_actions": self.case_actions,
            "coralogix": self.coralogix.to_json() if self.coralogix else None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def to_toml(self) -> dict[str, Any]:
        doc = self.to_json()
        del doc["id"]
        if not doc["overrides"]:
            del doc["overrides"]
        if doc["case_reply_mode"] is None:
            del doc["case_reply_mode"]
        if doc["case_actions"]:  # on is the default: only `false` is written
            del doc["case_actions"]
        remote = self.coralogix.to_toml() if self.coralogix else None
        if not remote:
            del doc["coralogix"]
        else:
            doc["coralogix"] = remote
        return doc

    @classmethod
    def from_toml(cls, ident: str, doc: Any, source: Path) -> Connector:
        from cxslack.store import locate_key

        def fail(key: str | None, problem: str) -> ConfigError:
            where = locate_key(source, f"connectors.{ident}", key)
            return ConfigError(
                "config_invalid",
                f"{source}{where}: connectors.{ident}{'.' + key if key else ''} {problem}",
                "Fix or restore the file; cxslack left it as it is.",
            )

        if not isinstance(doc, dict):
            raise fail(None, "must be a table")
        values, overrides, (reply_mode, case_actions) = _common_fields(doc, fail)
        remote = None
        if "coralogix" in doc:
            table = doc["coralogix"]
            update_time, residue_text = (
                (table.get("update_time"), table.get("residue", "{}")) if isinstance(table, dict) else (0, 0)
            )
            if not isinstance(update_time, str | None) or not isinstance(residue_text, str):
                raise fail("coralogix", "must be a table with update_time and residue strings")
            try:
                residue = json.loads(residue_text) if residue_text != "{}" else {}
            except ValueError:
                residue = None
            if not isinstance(residue, dict):
                raise fail("coralogix", "residue must be a JSON object")
            remote = RemoteState(update_time, residue)
        return cls(id=ident, overrides=overrides, case_reply_mode=reply_mode, case_actions=case_actions,
                   coralogix=remote, **values)  # fmt: skip

    @classmethod
    def from_json(cls, doc: Any, where: str) -> Connector:
        """One connector in `to_json`'s shape (what `connectors export --format cxslack` prints)."""

        def fail(key: str | None, problem: str) -> UsageError:
            return UsageError("invalid_import", f"{where}: {'connector.' + key if key else 'the connector'} {problem}",
                              "Expected what `cxslack connectors export` prints.")  # fmt: skip

        if not isinstance(doc, dict):
            raise fail(None, "must be an object")
        ident = doc.get("id")
        if not isinstance(ident, str) or not ident:
            raise fail("id", "must be a non-empty string")
        values, overrides, (reply_mode, case_actions) = _common_fields(doc, fail)
        remote = doc.get("coralogix")
        if remote is not None and not (
            isinstance(remote, dict)
            and isinstance(remote.get("update_time"), str | None)
            and isinstance(remote.get("residue", {}), dict)
        ):
            raise fail("coralogix", "must be null or {update_time, residue}")
        state = RemoteState(remote.get("update_time"), dict(remote.get("residue") or {})) if remote else None
        return cls(id=ident, overrides=overrides, case_reply_mode=reply_mode, case_actions=case_actions,
                   coralogix=state, **values)  # fmt: skip


def _common_fields(doc: dict[str, Any], fail: Callable[[str | None, str], Exception]
                   ) -> tuple[dict[str, str], dict[EntityType, str], tuple[str | None, bool]]:  # fmt: skip
    """(string fields, overrides, (case reply mode, case actions)) of a connector in config.toml's
    or JSON's shape."""
    values: dict[str, str] = {}
    for key in (
        "name",
        "integration",
        "channel",
        "fallback_channel",
        "description",
        "created_at",
        "updated_at",
    ):
        value = doc.get(key, "" if key in ("description", "created_at", "updated_at") else None)
        if not isinstance(value, str):
            raise fail(key, "must be a string" if key in doc else "is missing")
        values[key] = value
    overrides_doc = doc.get("overrides", {})
    if not isinstance(overrides_doc, dict):
        raise fail("overrides", "must be a table")
    overrides: dict[EntityType, str] = {}
    for key, template in overrides_doc.items():
        try:
            entity = EntityType.parse(key)
        except UsageError:
            raise fail("overrides", f"has unknown entity type {key!r}") from None
        if not isinstance(template, str):
            raise fail("overrides", f"{key} must be a string")
        overrides[entity] = template
    reply_mode = doc.get("case_reply_mode")
    if reply_mode is not None and reply_mode not in REPLY_MODES:
        raise fail("case_reply_mode", f"must be one of {', '.join(REPLY_MODES)}")
    case_actions = doc.get("case_actions", True)
    if not isinstance(case_actions, bool):
        raise fail("case_actions", "must be true or false")
    return values, overrides, (reply_mode, case_actions)


def parse_override(text: str) -> tuple[EntityType, str]:
    """`ENTITY=TEMPLATE`, split at the first '=' (templates contain '==')."""
    entity, sep, template = text.partition("=")
    if not sep or not template.strip():
        raise UsageError(
            "invalid_override",
            f"--override {text!r} is not ENTITY=TEMPLATE",
            'Example: --override cases=\'{% if _context.entityLabels["team"][0] == "db" %}db-cases{% else %}cases{% endif %}\'',
        )
    return EntityType.parse(entity), template


def parse_connectors(view: ConfigView, source: Path) -> dict[str, Connector]:
    return {ident: Connector.from_toml(ident, body, source) for ident, body in view.connectors.items()}


def find_connector(connectors: dict[str, Connector], ref: str) -> Connector:
    if ref in connectors:
        return connectors[ref]
    wanted = ref.strip().casefold()
    for connector in connectors.values():
        if connector.name.casefold() == wanted:
            return connector
    raise NotFoundError(
        "connector_not_found",
        f"no connector named or with id {ref!r}",
        "List them with: cxslack connectors list",
    )


def missing_integration(connector: Connector) -> NotFoundError:
    """The connector's integration is gone (removed, or config.toml edited by hand)."""
    return NotFoundError(
        "integration_not_found",
        f"connector {connector.name} references a missing integration ({connector.integration})",
        f"Point it at an existing one: cxslack connectors edit {quote(connector.name)} --integration NAME "
        "(cxslack integrations list)",
    )


@dataclass
class ConnectorChanges:
    name: str | None = None
    description: str | None = None
    integration: str | None = None
    channel: str | None = None
    fallback_channel: str | None = None
    set_overrides: dict[EntityType, str] = field(default_factory=dict)
    clear_overrides: list[EntityType] = field(default_factory=list)
    case_reply_mode: str | None = None
    case_actions: bool | None = None

    def is_empty(self) -> bool:
        scalars = (
            self.name,
            self.description,
            self.integration,
            self.channel,
            self.fallback_channel,
            self.case_reply_mode,
            self.case_actions,
        )
        return all(v is None for v in scalars) and not self.set_overrides and not self.clear_overrides


class ConnectorStore:
    """Connectors in config.toml, read and changed under the store's lock."""

    def __init__(self, registry: Registry | None = None):
        self.registry = registry or Registry()
        self.source = self.registry.store.paths.config_file

    def load(self) -> tuple[ConfigView, dict[str, Connector]]:
        view = self.registry.view()
        return view, parse_connectors(view, self.source)

    def find(self, ref: str) -> Connector:
        return find_connector(self.load()[1], ref)

    def create(self, connector: Connector, *, upsert: bool = False) -> tuple[Connector, bool]:
        """Add a connector (or, with upsert, replace the one with its id). Returns (it, created)."""
        connector.validate()
        _ensure_fallback_differs(connector)
        with self.registry.editing() as (view, _):
            connectors = parse_connectors(view, self.source)
            view.find(connector.integration)  # NotFound when the integration does not exist
            connector.integration = view.find(connector.integration).id
            existing = connectors.get(connector.id)
            if existing and not upsert:
                raise UsageError(
                    "duplicate_connector_id",
                    f"a connector with id {connector.id!r} already exists",
                    "Choose another --id, or change it with: cxslack connectors edit " + quote(existing.name),
                )
            _ensure_unique_name(connectors, connector.name, except_id=connector.id)
            if existing:
                connector.created_at = existing.created_at
                connector.updated_at = utc_now()
            view.connectors[connector.id] = connector.to_toml()
        return connector, existing is None

    def new_id(self, name: str) -> str:
        _, connectors = self.load()
        base = slug_id(name)
        candidate, n = base, 2
        while candidate in connectors:
            suffix = f"-{n}"
            candidate, n = base[: ID_MAX - len(suffix)] + suffix, n + 1
        return candidate

    def edit(self, ref: str, changes: ConnectorChanges) -> Connector:
        if changes.is_empty():
            raise UsageError("nothing_to_change", "nothing to change", "See: cxslack connectors edit --help")
        with self.registry.editing() as (view, _):
            connectors = parse_connectors(view, self.source)
            connector = find_connector(connectors, ref)
            if changes.name is not None:
                connector.name = changes.name
                _ensure_unique_name(
                    connectors, validate_name(changes.name, "connector"), except_id=connector.id
                )
            if changes.description is not None:
                connector.description = changes.description
            if changes.integration is not None:
                connector.integration = view.find(changes.integration).id
            if changes.channel is not None:
                connector.channel = changes.channel
            if changes.fallback_channel is not None:
                connector.fallback_channel = changes.fallback_channel
            if changes.case_reply_mode is not None:
                connector.case_reply_mode = changes.case_reply_mode
            if changes.case_actions is not None:
                connector.case_actions = changes.case_actions
            for entity in changes.clear_overrides:
                connector.overrides.pop(entity, None)
            connector.overrides.update(changes.set_overrides)
            connector.validate()
            if changes.channel is not None or changes.fallback_channel is not None:
                _ensure_fallback_differs(connector)
            connector.updated_at = utc_now()
            view.connectors[connector.id] = connector.to_toml()
        return connector

    def remove(self, ref: str) -> Connector:
        with self.registry.editing() as (view, _):
            connector = find_connector(parse_connectors(view, self.source), ref)
            del view.connectors[connector.id]
        return connector


def _ensure_fallback_differs(connector: Connector) -> None:
    """The fallback is where messages go when the channel fails: the same channel cannot be it."""
    if connector.fallback_channel == connector.channel:
        raise UsageError(
            "fallback_is_channel",
            f"the fallback channel is the channel itself ({channel_label(connector.channel)}): "
            "a failed delivery would have nowhere else to go",
            "Pick another --fallback-channel, for example an ops channel the app is in.",
        )


def _ensure_unique_name(connectors: dict[str, Connector], name: str, except_id: str) -> None:
    folded = name.strip().casefold()
    for other in connectors.values():
        if other.id != except_id and other.name.casefold() == folded:
            raise UsageError(
                "duplicate_name",
                f"a connector named {other.name!r} already exists (names are case-insensitive)",
                "Choose another name.",
            )
