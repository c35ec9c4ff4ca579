"""Everything one doctor run shares: options, the loaded config, Slack sessions, routing."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from cxslack.connectors import Connector, EntityType, channel_label, parse_connectors
from cxslack.delivery import Resolution, resolve_channel
from cxslack.doctor import remedies
from cxslack.doctor.report import Check, CheckStatus, Subject, Symptom
from cxslack.doctor.slack_state import SlackSession, SlackUnavailable
from cxslack.model import Integration
from cxslack.registry import ConfigView, Registry
from cxslack.scopes import Feature

# Symptoms whose checks ask Slack, and those that need the channel list.
SLACK_SYMPTOMS = frozenset(
    {
        Symptom.FAILING,
        Symptom.NO_TIMELINE_UPDATES,
        Symptom.NO_PREVIEWS,
        Symptom.WRONG_CHANNEL,
        Symptom.CASE_ACTIONS,
    }
)
PREFETCH_WORKERS = 8

LOCAL_SECTION = "Local"


@dataclass(frozen=True)
class DoctorOptions:
    integration: str | None = None  # narrow to one integration (name or id)
    symptom: Symptom | None = None  # one row of the troubleshooting table
    offline: bool = False  # no Slack call at all (not even a token refresh)
    payload: dict[str, Any] | None = None  # template context instead of the shipped samples

    def wants(self, symptom: Symptom) -> bool:
        return self.symptom is None or self.symptom is symptom


@dataclass(frozen=True)
class Target:
    """A channel a connector can route to, and why."""

    channel: str
    role: str  # "channel", "fallback channel", "cases override"
    change: str  # the `connectors edit` option that routes elsewhere, e.g. "--channel CHANNEL"


class Context:
    def __init__(self, registry: Registry, options: DoctorOptions, view: ConfigView,
                 connectors: dict[str, Connector]):  # fmt: skip
        self.registry = registry
        self.options = options
        self.all_integrations = sorted(view.integrations.values(), key=lambda i: i.name.casefold())
        self.integrations = (
            [view.find(options.integration)] if options.integration is not None else self.all_integrations
        )
        self.connector_count = len(connectors)
        by_name = sorted(connectors.values(), key=lambda c: c.name.casefold())
        self._connectors: dict[str, list[Connector]] = {}
        for connector in by_name:
            self._connectors.setdefault(connector.integration, []).append(connector)
        # Connectors whose integration is gone: reported under Local, unless narrowed to one integration.
        self.orphans = (
            [] if options.integration else [c for c in by_name if c.integration not in view.integrations]
        )
        self._sessions = {i.id: SlackSession(registry, i, options.offline) for i in self.integrations}
        self._routing: dict[str, dict[EntityType, Resolution]] = {}
        self._payloads: dict[EntityType, dict[str, Any]] = {}
        self.memo: dict[str, Any] = {}  # what checks fetch once per run (Coralogix's answers)

    @classmethod
    def load(cls, registry: Registry, options: DoctorOptions) -> Context:
        """Raises ConfigError when config.toml cannot be used, NotFoundError for an unknown integration."""
        view = registry.view()
        return cls(registry, options, view, parse_connectors(view, registry.store.paths.config_file))

    # -- what is being diagnosed -----------------------------------------------------------
    def connectors_of(self, integration: Integration) -> list[Connector]:
        return self._connectors.get(integration.id, [])

    def session(self, integration: Integration) -> SlackSession:
        return self._sessions[integration.id]

    # -- subjects: where a check shows up ---------------------------------------------------
    @staticmethod
    def local(label: str) -> Subject:
        return Subject(label, LOCAL_SECTION)

    @staticmethod
    def integration_subject(integration: Integration) -> Subject:
        status = integration.status.value.capitalize()
        return Subject(
            f"integration {integration.name}",
            f"Integration {integration.name} (v{integration.version}, {status})",
            integration=integration.id,
            rank=1,
        )

    @staticmethod
    def connector_subject(connector: Connector, integration: Integration | None) -> Subject:
        heading = (
            f"Connector {connector.name} → {channel_label(connector.channel)} "
            f"(fallback {channel_label(connector.fallback_channel)})"
        )
        if integration is None:
            return Subject(f"connector {connector.name}", LOCAL_SECTION, heading, connector=connector.id)
        section = Context.integration_subject(integration)
        return Subject(
            f"connector {connector.name}", section.section, heading, integration.id, connector.id, 1
        )

    # -- routing ----------------------------------------------------------------------------
    def payload(self, entity: EntityType) -> dict[str, Any]:
        if self.options.payload is not None:
            return self.options.payload
        if entity not in self._payloads:
            from cxslack.templating import sample_payload

            self._payloads[entity] = sample_payload(entity.value)
        return self._payloads[entity]

    def resolutions(self, connector: Connector) -> dict[EntityType, Resolution]:
        """Each override rendered on the payload, as Notification Center would route it."""
        if connector.id not in self._routing:
            self._routing[connector.id] = {
                entity: resolve_channel(connector, entity, self.payload(entity))
                for entity in EntityType
                if entity in connector.overrides
            }
        return self._routing[connector.id]

    def targets(
        self, connector: Connector, entities: Iterable[EntityType] = tuple(EntityType)
    ) -> list[Target]:
        """The channels a connector can route the given entity types to, each once.

        The channel (where a template that fails or renders empty sends everything), the
        fallback (where a failed delivery goes) and what the overrides render on the payload.
        """
        targets = [
            Target(connector.channel, "channel", "--channel CHANNEL"),
            Target(connector.fallback_channel, "fallback channel", "--fallback-channel CHANNEL"),
        ]
        resolutions = self.resolutions(connector)
        for entity in entities:
            resolution = resolutions.get(entity)
            if resolution is not None and resolution.source == "override":
                change = f"--override '{entity.value}=TEMPLATE'"
                targets.append(Target(resolution.channel, f"{entity.value} override", change))
        unique: dict[str, Target] = {}
        for target in targets:
            unique.setdefault(target.channel, target)
        return list(unique.values())

    # -- Slack ------------------------------------------------------------------------------
    def prefetch(self) -> None:
        """Ask Slack for every integration at once (auth.test, then the channel list where a
        selected check needs it), so the checks that follow only read memoised answers."""
        if self.options.offline or not any(self.options.wants(s) for s in SLACK_SYMPTOMS):
            return

        def one(integration: Integration) -> None:
            session = self.session(integration)
            if session.probe().info is not None and self._needs_channels(integration):
                with suppress(SlackUnavailable):  # memoised: the checks report it
                    session.directory()

        with ThreadPoolExecutor(max_workers=min(PREFETCH_WORKERS, max(1, len(self.integrations)))) as pool:
            list(pool.map(one, self.integrations))

    def _needs_channels(self, integration: Integration) -> bool:
        if not self.connectors_of(integration):
            return False
        syncs = integration.two_way_sync and integration.supports_cases_features
        return self.options.wants(Symptom.WRONG_CHANNEL) or (
            syncs and self.options.wants(Symptom.NO_TIMELINE_UPDATES)
        )


class SymptomChecks:
    """One symptom's checks, at the three levels a report groups them by. Each level yields
    nothing unless a module overrides it."""

    symptom: Symptom

    def workspace(self, ctx: Context) -> Iterator[Check]:
        return iter(())

    def integration(self, ctx: Context, integration: Integration) -> Iterator[Check]:
        return iter(())

    def connector(self, ctx: Context, connector: Connector, integration: Integration) -> Iterator[Check]:
        return iter(())

    def scopes_check(self, ctx: Context, integration: Integration, id: str, feature: Feature, *, lacking: str,
                     granted: str, only: Collection[str] | None = None,
                     broken: CheckStatus = CheckStatus.FAIL) -> Check:  # fmt: skip
        """Whether the feature's bot scopes (those in `only`, if given) are granted: `broken`
        naming the missing ones and what that breaks (`lacking`), with the command that
        reauthorizes; ok saying `granted`; Slack's reason when it cannot tell."""
        subject = ctx.integration_subject(integration)
        try:
            missing = ctx.session(integration).missing(feature)
        except SlackUnavailable as why:
            return why.check(subject, id, self.symptom)
        missing = [s for s in missing if only is None or s in only]
        if missing:
            message = f"{', '.join(missing)} not granted{lacking}"
            return subject.check(id, self.symptom, broken, message, remedies.authorize(integration))
        return subject.check(id, self.symptom, CheckStatus.OK, granted)
