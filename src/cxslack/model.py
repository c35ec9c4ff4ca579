"""The domain model: integrations, their status and features, and the rules the product sets.

Plain data and validation only; no I/O, no CLI.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cxslack.errors import ConfigError, UsageError
from cxslack.scopes import Feature, scopes_for

CURRENT_VERSION = "0.1.0"
# The seed's version table: two-way sync and Case URL previews exist from v0.1.0 on.
CASES_FEATURES_SINCE = (0, 1, 0)
NAME_MAX = 100


class Status(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"
    FAILING = "failing"


class Functionality(StrEnum):
    NOTIFICATIONS = "notifications"
    ACCESS_LOGS = "access_logs"


FUNCTIONALITY_LABEL = {
    Functionality.NOTIFICATIONS: "Send notifications",
    Functionality.ACCESS_LOGS: "Collect access logs",
}


def utc_now(epoch: float | None = None) -> str:
    """RFC 3339 UTC, second precision: 2026-11-29T08:30:00Z (now, or the given epoch seconds)."""
    moment = datetime.now(UTC) if epoch is None else datetime.fromtimestamp(epoch, UTC)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_version(text: str) -> tuple[int, int, int]:
    hint = (
        f"Leave out --integration-version for the current version ({CURRENT_VERSION}), or give the version "
        "your existing integration runs, as the product's integration page shows it (e.g. 0.0.9)."
    )
    match = re.fullmatch(r"v?(\d{1,4})\.(\d{1,4})\.(\d{1,4})", text.strip())
    if not match:
        raise UsageError(
            "invalid_version",
            f"invalid integration version {text!r}: expected MAJOR.MINOR.PATCH such as {CURRENT_VERSION}",
            hint,
        )
    version = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    if version > parse_version_unchecked(CURRENT_VERSION):
        raise UsageError(
            "invalid_version",
            f"integration version {text} does not exist: the newest Slack integration version is {CURRENT_VERSION}",
            hint,
        )
    return version


def parse_version_unchecked(text: str) -> tuple[int, int, int]:
    major, minor, patch = (int(p) for p in text.lstrip("v").split("."))
    return major, minor, patch


def format_version(version: tuple[int, int, int]) -> str:
    return ".".join(str(p) for p in version)


def validate_name(raw: str, what: str = "integration") -> str:
    name = raw.strip()
    if not name:
        raise UsageError("invalid_name", f"{what} name must not be empty")
    if len(name) > NAME_MAX:
        raise UsageError(
            "invalid_name", f"{what} name is {len(name)} characters long; the limit is {NAME_MAX}"
        )
    for ch in name:
        if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}:
            raise UsageError(
                "invalid_name", f"{what} name contains a control or invisible character ({ascii(ch)})"
            )
    if _UUID.fullmatch(name):
        raise UsageError(
            "invalid_name", f"{what} name {name!r} looks like an id; names and ids must stay distinguishable"
        )
    return name


def validate_coralogix_id(raw: str) -> str:
    """The id of a deployed Coralogix integration instance, as `integrations list --remote` shows it."""
    value = raw.strip()
    if not value or len(value) > 256 or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise UsageError(
            "invalid_coralogix_id",
            f"{raw[:80]!r} is not a Coralogix integration id",
            "Copy the ID column of: cxslack integrations list --remote",
        )
    return value


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass
class Workspace:
    team_id: str
    team_name: str

    def to_dict(self) -> dict[str, str]:
        return {"team_id": self.team_id, "team_name": self.team_name}


@dataclass
class Integration:
    id: str
    name: str
    version: str = CURRENT_VERSION
    functionality: list[Functionality] = field(default_factory=lambda: [Functionality.NOTIFICATIONS])
    two_way_sync: bool = False
    link_previews: bool = False
    channel_lookup: bool = False  # cxslack's own channels:read + groups:read (--channel-lookup)
    evaluation_chart: bool = False  # the alert evaluation chart in Case threads (files:write)
    consent_us_data_transfer: bool = True
    status: Status = Status.PENDING
    status_reason: str = ""
    workspace: Workspace | None = None
    bot_user_id: str | None = None
    granted_scopes: list[str] = field(default_factory=list)
    coralogix_id: str | None = None  # the id of this integration's deployed instance in Coralogix
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)
    # Extra keys later features keep on an integration (e.g. access-log bookkeeping).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        return parse_version_unchecked(self.version)

    @property
    def supports_cases_features(self) -> bool:
        return self.version_tuple >= CASES_FEATURES_SINCE

    @property
    def sends_notifications(self) -> bool:
        return Functionality.NOTIFICATIONS in self.functionality

    @property
    def collects_access_logs(self) -> bool:
        return Functionality.ACCESS_LOGS in self.functionality

    @property
    def features(self) -> set[Feature]:
        """The features whose scopes the install requests. The product page's "always" scopes
        come with Send notifications; an access-logs-only integration needs only its user scope."""
        out = {Feature.ALWAYS} if self.sends_notifications else set()
        if self.channel_lookup:
            out.add(Feature.CHANNEL_LOOKUP)
        if self.two_way_sync:
            out.add(Feature.TWO_WAY_SYNC)
        if self.link_previews:
            out.add(Feature.LINK_PREVIEWS)
        if self.evaluation_chart:
            out.add(Feature.EVALUATION_CHART)
        if self.collects_access_logs:
            out.add(Feature.ACCESS_LOGS)
        return out

    @property
    def requested_bot_scopes(self) -> list[str]:
        return scopes_for(self.features)[0]

    @property
    def requested_user_scopes(self) -> list[str]:
        return scopes_for(self.features)[1]

    @property
    def requested_scopes(self) -> list[str]:
        bot, user = scopes_for(self.features)
        return bot + user

    def validate(self) -> None:
        """The product's rules; raises UsageError explaining which rule an input breaks."""
        if not self.functionality:
            raise UsageError(
                "no_functionality",
                "an integration needs at least one application functionality",
                "Pass --notifications, --access-logs, or both.",
            )
        if not self.consent_us_data_transfer:
            raise UsageError(
                "consent_required",
                "the Slack integration requires consent to U.S. data transfer",
                "Pass --consent-us-data-transfer to confirm it.",
            )
        if self.channel_lookup and not self.sends_notifications:
            raise UsageError(
                "feature_needs_notifications",
                "--channel-lookup looks up the channels notifications go to, and needs Send notifications",
                "Add --notifications, or drop --channel-lookup.",
            )
        for flag, enabled, label in (
            ("--two-way-sync", self.two_way_sync, "Two-way comment sync"),
            ("--link-previews", self.link_previews, "Rich link previews"),
            ("--evaluation-chart", self.evaluation_chart, "Alert evaluation chart"),
        ):
            if not enabled:
                continue
            if not self.supports_cases_features:
                offers = (
                    "the alert evaluation chart"
                    if flag == "--evaluation-chart"
                    else "two-way Case comment sync or rich Case URL previews"
                )
                raise UsageError(
                    "feature_needs_v0_1_0",
                    f"{label} needs integration version {CURRENT_VERSION}; version {self.version} "
                    f"cannot offer {offers}",
                    f"Drop {flag}, or add a {CURRENT_VERSION} integration and migrate its connectors.",
                )
            if not self.sends_notifications:
                raise UsageError(
                    "feature_needs_notifications",
                    f"{label} is a notification setting and needs Send notifications",
                    f"Add --notifications, or drop {flag}.",
                )

    def set_status(self, status: Status, reason: str = "") -> None:
        self.status = status
        self.status_reason = reason
        self.touch()

    def touch(self) -> None:
        self.updated_at = utc_now()

    # -- (de)serialisation ---------------------------------------------------------------
    def to_json(self, connectors: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "status": self.status.value,
            "status_reason": self.status_reason,
            "functionality": [f.value for f in self.functionality],
            "two_way_sync": self.two_way_sync,
            "link_previews": self.link_previews,
            "channel_lookup": self.channel_lookup,
            "evaluation_chart": self.evaluation_chart,
            "consent_us_data_transfer": self.consent_us_data_transfer,
            "connectors": connectors,
            "workspace": self.workspace.to_dict() if self.workspace else None,
            "bot_user_id": self.bot_user_id,
            "requested_scopes": self.requested_scopes,
            "granted_scopes": list(self.granted_scopes),
            "coralogix_id": self.coralogix_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            **{k: v for k, v in self.extra.items() if not k.startswith("_")},
        }

    def to_toml(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "functionality": [f.value for f in self.functionality],
            "two_way_sync": self.two_way_sync,
            "link_previews": self.link_previews,
            "channel_lookup": self.channel_lookup,
            "evaluation_chart": self.evaluation_chart,
            "consent_us_data_transfer": self.consent_us_data_transfer,
            "status": self.status.value,
            "status_reason": self.status_reason,
            "bot_user_id": self.bot_user_id,
            "granted_scopes": list(self.granted_scopes),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if self.workspace:
            doc["workspace"] = self.workspace.to_dict()
        if self.coralogix_id:
            doc["coralogix_id"] = self.coralogix_id
        doc.update(self.extra)
        return doc

    @classmethod
    def from_toml(cls, ident: str, doc: Any, source: Path) -> Integration:
        reader = _Reader(doc, source, f"integrations.{ident}")
        workspace_doc = reader.table("workspace", optional=True)
        workspace = None
        if workspace_doc is not None:
            ws = _Reader(workspace_doc, source, f"integrations.{ident}.workspace")
            workspace = Workspace(team_id=ws.string("team_id"), team_name=ws.string("team_name"))
        known = {
            "name", "version", "functionality", "two_way_sync", "link_previews", "channel_lookup",
            "evaluation_chart", "consent_us_data_transfer",
            "status", "status_reason", "bot_user_id", "granted_scopes", "created_at", "updated_at", "workspace",
            "coralogix_id",
        }  # fmt: skip
        return cls(
            id=ident,
            name=reader.string("name"),
            version=reader.version("version"),
            functionality=[Functionality(v) for v in reader.choices("functionality", Functionality)],
            two_way_sync=reader.boolean("two_way_sync", False),
            link_previews=reader.boolean("link_previews", False),
            channel_lookup=reader.boolean("channel_lookup", False),
            evaluation_chart=reader.boolean("evaluation_chart", False),
            consent_us_data_transfer=reader.boolean("consent_us_data_transfer", True),
            status=Status(reader.choice("status", Status, Status.PENDING.value)),
            status_reason=reader.string("status_reason", ""),
            workspace=workspace,
            bot_user_id=reader.string("bot_user_id", None),
            granted_scopes=reader.strings("granted_scopes", []),
            coralogix_id=reader.string("coralogix_id", None),
            created_at=reader.string("created_at", ""),
            updated_at=reader.string("updated_at", ""),
            extra={k: v for k, v in doc.items() if k not in known},
        )


class _Reader:
    """Typed access to one TOML table; a wrong type is a ConfigError with path and line."""

    _MISSING = object()

    def __init__(self, doc: Any, source: Path, table: str):
        if not isinstance(doc, dict):
            self._fail(source, table, None, "must be a table")
        self.doc, self.source, self.where = doc, source, table

    @staticmethod
    def _fail(source: Path, table: str, key: str | None, problem: str) -> None:
        from cxslack.store import locate_key

        where = locate_key(source, table, key)
        name = f"{table}.{key}" if key else table
        raise ConfigError(
            "config_invalid",
            f"{source}{where}: {name} {problem}",
            "Fix or restore the file; cxslack left it as it is.",
        )

    def _get(self, key: str, default: Any) -> Any:
        value = self.doc.get(key, self._MISSING)
        if value is self._MISSING:
            if default is self._MISSING:
                self._fail(self.source, self.where, None, f"is missing required key {key!r}")
            return default
        return value

    def string(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is not default and not isinstance(value, str):
            self._fail(self.source, self.where, key, "must be a string")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            self._fail(self.source, self.where, key, "must be true or false")
        return bool(value)

    def strings(self, key: str, default: Any = _MISSING) -> list[str]:
        value = self._get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._fail(self.source, self.where, key, "must be a list of strings")
        return list(value)

    def choice(self, key: str, enum: type[StrEnum], default: Any = _MISSING) -> str:
        value = self.string(key, default)
        if value not in {e.value for e in enum}:
            allowed = ", ".join(e.value for e in enum)
            self._fail(self.source, self.where, key, f"must be one of {allowed} (found {value!r})")
        return str(value)

    def choices(self, key: str, enum: type[StrEnum]) -> list[str]:
        values = self.strings(key)
        allowed = {e.value for e in enum}
        for v in values:
            if v not in allowed:
                self._fail(self.source, self.where, key, f"has unknown value {v!r}")
        return values

    def version(self, key: str) -> str:
        value = self.string(key, CURRENT_VERSION)
        if not re.fullmatch(r"\d{1,4}\.\d{1,4}\.\d{1,4}", value):
            self._fail(self.source, self.where, key, f"must look like {CURRENT_VERSION} (found {value!r})")
        return str(value)

    def table(self, key: str, optional: bool = False) -> Any:
        value = self._get(key, None if optional else self._MISSING)
        if value is not None and not isinstance(value, dict):
            self._fail(self.source, self.where, key, "must be a table")
        return value
