"""The integrations registry: add, find, edit and remove integrations in the config store.

Connector records are owned by `cxslack.connectors`; the registry only needs to count them and
cascade removals, which it does on the raw `connectors` table so the two stay decoupled.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxslack.errors import ConfigError, NotFoundError, UsageError
from cxslack.model import (
    CURRENT_VERSION,
    Functionality,
    Integration,
    Status,
    format_version,
    parse_version,
    validate_coralogix_id,
    validate_name,
)
from cxslack.scopes import FEATURE_CONSEQUENCE, missing_by_feature
from cxslack.store import Documents, Store


@dataclass
class ConfigView:
    """config.toml as domain objects (integrations) plus the raw tables other modules own."""

    integrations: dict[str, Integration]
    raw: dict[str, Any]

    @classmethod
    def parse(cls, doc: dict[str, Any], source: Path) -> ConfigView:
        table = doc.get("integrations", {})
        if not isinstance(table, dict):
            raise ConfigError("config_invalid", f"{source}: integrations must be a table")
        integrations = {ident: Integration.from_toml(ident, body, source) for ident, body in table.items()}
        connectors = doc.get("connectors", {})
        if not isinstance(connectors, dict):
            raise ConfigError("config_invalid", f"{source}: connectors must be a table")
        return cls(integrations=integrations, raw=doc)

    @property
    def connectors(self) -> dict[str, dict[str, Any]]:
        return self.raw.setdefault("connectors", {})

    def write_back(self) -> None:
        self.raw["integrations"] = {i.id: i.to_toml() for i in self.integrations.values()}
        if "connectors" in self.raw and not self.raw["connectors"]:
            del self.raw["connectors"]

    def connector_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for body in self.raw.get("connectors", {}).values():
            if isinstance(body, dict):
                ref = body.get("integration")
                if isinstance(ref, str):
                    counts[ref] = counts.get(ref, 0) + 1
        return counts

    def connectors_of(self, integration_id: str) -> list[tuple[str, str]]:
        """(id, name) of every connector that references the integration."""
        out = []
        for ident, body in self.raw.get("connectors", {}).items():
            if isinstance(body, dict) and body.get("integration") == integration_id:
                out.append((ident, str(body.get("name", ident))))
        return sorted(out, key=lambda pair: pair[1].casefold())

    def find(self, ref: str) -> Integration:
        """By id, or by name case-insensitively."""
        if ref in self.integrations:
            return self.integrations[ref]
        wanted = ref.strip().casefold()
        for integration in self.integrations.values():
            if integration.name.casefold() == wanted:
                return integration
        raise NotFoundError(
            "integration_not_found",
            f"no integration named or with id {ref!r}",
            "List them with: cxslack integrations list",
        )

    def linked(self, coralogix_id: str) -> Integration | None:
        """The local integration linked to this Coralogix integration instance, if any."""
        return next((i for i in self.integrations.values() if i.coralogix_id == coralogix_id), None)

    def ensure_unlinked(self, coralogix_id: str, except_id: str | None = None) -> None:
        other = self.linked(coralogix_id)
        if other is not None and other.id != except_id:
            raise UsageError(
                "coralogix_id_linked",
                f"Coralogix integration {coralogix_id} is already linked to {other.name}",
                "One local integration per Coralogix instance; unlink it first: "
                f"cxslack integrations edit {quote(other.name)} --unlink-coralogix",
            )

    def ensure_unique_name(self, name: str, except_id: str | None = None) -> None:
        folded = name.casefold()
        for other in self.integrations.values():
            if other.id != except_id and other.name.casefold() == folded:
                raise UsageError(
                    "duplicate_name",
                    f"an integration named {other.name!r} already exists (names are case-insensitive)",
                    "Choose another --name, or edit the existing one: "
                    f"cxslack integrations edit {quote(other.name)}",
                )


def quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


@dataclass
class NewIntegration:
    name: str
    notifications: bool = True
    access_logs: bool = False
    two_way_sync: bool = False
    link_previews: bool | None = None  # None: on where the version and functionality allow it
    channel_lookup: bool = False
    evaluation_chart: bool = False
    consent_us_data_transfer: bool = False
    version: str = CURRENT_VERSION
    coralogix_id: str | None = None


@dataclass
class IntegrationChanges:
    name: str | None = None
    notifications: bool | None = None
    access_logs: bool | None = None
    two_way_sync: bool | None = None
    link_previews: bool | None = None
    channel_lookup: bool | None = None
    evaluation_chart: bool | None = None
    version: str | None = None
    coralogix_id: str | None = None  # "" unlinks

    def is_empty(self) -> bool:
        return all(v is None for v in vars(self).values())


@dataclass
class Removal:
    integration: Integration
    connectors: list[tuple[str, str]] = field(default_factory=list)


class Registry:
    def __init__(self, store: Store | None = None):
        self.store = store or Store()

    def view(self) -> ConfigView:
        return ConfigView.parse(self.store.read_config(), self.store.paths.config_file)

    @contextmanager
    def editing(self) -> Iterator[tuple[ConfigView, Documents]]:
        with self.store.transaction() as docs:
            view = ConfigView.parse(docs.config, self.store.paths.config_file)
            yield view, docs
            view.write_back()

    def add(self, spec: NewIntegration) -> Integration:
        name = validate_name(spec.name)
        version = format_version(parse_version(spec.version))
        functionality = [
            f
            for f, on in (
                (Functionality.NOTIFICATIONS, spec.notifications),
                (Functionality.ACCESS_LOGS, spec.access_logs),
            )
            if on
        ]
        import uuid

        integration = Integration(
            id=str(uuid.uuid4()),
            name=name,
            version=version,
            functionality=functionality,
            two_way_sync=spec.two_way_sync,
            link_previews=bool(spec.link_previews),
            channel_lookup=spec.channel_lookup,
            evaluation_chart=spec.evaluation_chart,
            consent_us_data_transfer=spec.consent_us_data_transfer,
            status=Status.PENDING,
            status_reason="not authorized yet: the Slack app has not been installed",
            coralogix_id=validate_coralogix_id(spec.coralogix_id) if spec.coralogix_id is not None else None,
        )
        if spec.link_previews is None:
            integration.link_previews = (
                integration.supports_cases_features and integration.sends_notifications
            )
        integration.validate()
        with self.editing() as (view, _):
            view.ensure_unique_name(name)
            if integration.coralogix_id:
                view.ensure_unlinked(integration.coralogix_id)
            view.integrations[integration.id] = integration
        return integration

    def edit(self, ref: str, changes: IntegrationChanges) -> tuple[Integration, list[str]]:
        """Apply changes; returns the integration and warnings (e.g. scopes now missing)."""
        if changes.is_empty():
            raise UsageError(
                "nothing_to_change", "nothing to change", "See: cxslack integrations edit --help"
            )
        warnings: list[str] = []
        with self.editing() as (view, _):
            integration = view.find(ref)
            if changes.name is not None:
                new_name = validate_name(changes.name)
                view.ensure_unique_name(new_name, except_id=integration.id)
                integration.name = new_name
            if changes.coralogix_id == "":
                integration.coralogix_id = None
            elif changes.coralogix_id is not None:
                linked = validate_coralogix_id(changes.coralogix_id)
                view.ensure_unlinked(linked, except_id=integration.id)
                integration.coralogix_id = linked
            if changes.version is not None:
                new_version = parse_version(changes.version)
                if new_version < integration.version_tuple:
                    raise UsageError(
                        "version_downgrade",
                        f"cannot move {integration.name!r} from {integration.version} to an earlier version",
                        "Add a separate integration on the earlier version instead.",
                    )
                if new_version > integration.version_tuple:
                    integration.version = format_version(new_version)
                    integration.status = Status.PENDING
                    integration.status_reason = (
                        f"upgraded to {integration.version}: the new Slack app must be authorized"
                    )
                    warnings.append(
                        f"{integration.name} is now Pending: authorize the {integration.version} app with "
                        f"cxslack integrations authorize {quote(integration.name)}"
                    )
            functionality = set(integration.functionality)
            for flag, member in (
                (changes.notifications, Functionality.NOTIFICATIONS),
                (changes.access_logs, Functionality.ACCESS_LOGS),
            ):
                if flag is True:
                    functionality.add(member)
                elif flag is False:
                    functionality.discard(member)
            integration.functionality = [f for f in Functionality if f in functionality]
            if changes.two_way_sync is not None:
                integration.two_way_sync = changes.two_way_sync
            if changes.link_previews is not None:
                integration.link_previews = changes.link_previews
            if changes.channel_lookup is not None:
                integration.channel_lookup = changes.channel_lookup
            if changes.evaluation_chart is not None:
                integration.evaluation_chart = changes.evaluation_chart
            if not integration.sends_notifications and changes.notifications is False:
                # Turning notifications off turns off the notification settings with it.
                integration.two_way_sync = integration.two_way_sync and changes.two_way_sync is True
                integration.link_previews = integration.link_previews and changes.link_previews is True
                integration.channel_lookup = integration.channel_lookup and changes.channel_lookup is True
                integration.evaluation_chart = (
                    integration.evaluation_chart and changes.evaluation_chart is True
                )
            integration.validate()
            integration.touch()
            if integration.status is Status.ACTIVE:
                for feature, scopes in missing_by_feature(
                    integration.requested_scopes, integration.granted_scopes
                ).items():
                    warnings.append(
                        f"{', '.join(scopes)} not granted yet, so {FEATURE_CONSEQUENCE[feature]}: "
                        f"reauthorize with cxslack integrations authorize {quote(integration.name)}"
                    )
        return integration, warnings

    def set_webhook(self, ref: str, url: str) -> Integration:
        """Store an incoming-webhook URL (a secret) for an integration that delivers through one."""
        from urllib.parse import urlsplit

        from cxslack.credentials import read_secrets, write_secrets
        from cxslack.redact import register_secret

        register_secret(url)
        parts = urlsplit(url)
        loopback = parts.scheme == "http" and parts.hostname in {"127.0.0.1", "::1", "localhost"}
        if not (parts.scheme == "https" and parts.hostname) and not loopback:
            raise UsageError(
                "invalid_webhook_url",
                "the incoming-webhook URL must be an https:// URL (https://hooks.slack.com/services/…)",
            )
        with self.editing() as (view, docs):
            integration = view.find(ref)
            if integration.supports_cases_features:
                raise UsageError(
                    "webhook_not_supported",
                    f"integration {integration.name} is version {integration.version}, which posts with the Slack "
                    "app's bot token; incoming webhooks are for earlier versions",
                    f"Install the app instead: cxslack integrations authorize {quote(integration.name)}",
                )
            secrets = read_secrets(docs, integration.id)
            secrets.webhook_url = url
            write_secrets(docs, integration.id, secrets)
            if integration.status is Status.PENDING:
                integration.set_status(Status.ACTIVE, "delivers through an incoming webhook")
            integration.touch()
        return integration

    def plan_removal(self, ref: str) -> Removal:
        view = self.view()
        integration = view.find(ref)
        return Removal(integration, view.connectors_of(integration.id))

    def remove(self, ref: str) -> Removal:
        """Remove the integration, its connectors and its stored credentials."""
        with self.editing() as (view, docs):
            integration = view.find(ref)
            removal = Removal(integration, view.connectors_of(integration.id))
            del view.integrations[integration.id]
            for ident, _ in removal.connectors:
                view.connectors.pop(ident, None)
            creds = docs.credentials.get("integrations", {})
            if isinstance(creds, dict):
                creds.pop(integration.id, None)
        return removal
