"""What Coralogix itself says: linked integrations' status, and router rules that stop delivering.

Both only run when they have something to look at and may call Coralogix: a local integration
linked to a Coralogix integration (`--coralogix-id`), and a configured Coralogix API key. The
Integrations API gives each deployed Slack integration's `connectionStatus` and messages; the
Notification Center API gives the global routers and every connector their rules target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from cxslack.coralogix.integrations import RemoteIntegration
from cxslack.coralogix.notification_center import CONNECTOR_TYPE_PREFIX, SLACK, bare
from cxslack.doctor.context import Context, SymptomChecks
from cxslack.doctor.report import Check, CheckStatus, Subject, Symptom
from cxslack.errors import CxError
from cxslack.model import Integration
from cxslack.registry import quote

NC_SUBJECT = Subject("Coralogix routing rules", "Coralogix Notification Center", rank=2)
REINSTALL = "open the integration in Coralogix (Data Flow → Integrations → Slack) and reinstall the app"
LIST_REMOTE = "cxslack integrations list --remote"


def _fetch(ctx: Context, key: str, call: Callable[[Any], Any]) -> Any:
    """Coralogix's answer (or the CxError it gave) for this run, fetched once."""
    if key not in ctx.memo:
        from cxslack.remote import Coralogix

        try:
            with Coralogix.connect(ctx.registry.store, advisory=True) as coralogix:
                ctx.memo[key] = call(coralogix)
        except CxError as exc:
            ctx.memo[key] = exc
    value = ctx.memo[key]
    if isinstance(value, CxError):
        raise value
    return value


def _configured(ctx: Context) -> bool:
    if "configured" not in ctx.memo:
        from cxslack.coralogix.config import resolve_settings

        try:
            settings = resolve_settings(store=ctx.registry.store)
            ctx.memo["configured"] = bool(settings.api_key and settings.api_url)
        except CxError:
            ctx.memo["configured"] = False
    return bool(ctx.memo["configured"])


def _instances(ctx: Context) -> dict[str, RemoteIntegration]:
    return _fetch(ctx, "instances", lambda c: {r.id: r for r in c.integrations.slack_instances()})


class LinkChecks(SymptomChecks):
    """Status shows Failing: Coralogix's own status of the integration a local one is linked to."""

    symptom = Symptom.FAILING

    def integration(self, ctx: Context, integration: Integration) -> Iterator[Check]:
        if not integration.coralogix_id:
            return
        subject = ctx.integration_subject(integration)
        linked = f"linked to Coralogix integration {integration.coralogix_id}"
        yield subject.check("failing.coralogix", self.symptom, *self._verdict(ctx, integration, linked))

    def _verdict(
        self, ctx: Context, integration: Integration, linked: str
    ) -> tuple[CheckStatus, str, str | None]:
        if ctx.options.offline:
            return CheckStatus.SKIP, f"{linked}; not checked (--offline)", None
        if not _configured(ctx):
            return (
                CheckStatus.SKIP,
                f"{linked}; not checked: Coralogix is not configured",
                "cxslack coralogix configure",
            )
        try:
            found = _instances(ctx).get(str(integration.coralogix_id))
        except CxError as exc:
            return CheckStatus.WARN, f"{linked}; could not ask Coralogix: {exc.message}", exc.hint
        if found is None:
            fix = f"{LIST_REMOTE}; then cxslack integrations edit {quote(integration.name)} --coralogix-id ID (or --unlink-coralogix)"
            return CheckStatus.FAIL, f"{linked}, which Coralogix no longer has (removed?)", fix
        said = f": {'; '.join(found.messages)}" if found.messages else ""
        if found.status == "FAILING":
            return CheckStatus.FAIL, f"Coralogix reports {integration.coralogix_id} Failing{said}", REINSTALL
        if found.status != "ACTIVE":
            return (
                CheckStatus.WARN,
                f"Coralogix reports {integration.coralogix_id} {found.status.capitalize()}{said}",
                REINSTALL,
            )
        return CheckStatus.OK, f"Coralogix reports {integration.coralogix_id} Active (v{found.version})", None


class RoutingRuleChecks(SymptomChecks):
    """Router rules whose connector is gone, or delivers through a Failing or removed integration."""

    symptom = Symptom.ROUTING_RULES

    def workspace(self, ctx: Context) -> Iterator[Check]:
        if not _configured(ctx):
            return
        if ctx.options.offline:
            yield NC_SUBJECT.check("routing.rules", self.symptom, CheckStatus.SKIP, "not checked (--offline)")
            return
        try:
            routers = _fetch(ctx, "routers", lambda c: c.nc.list_routers())
            connectors = _fetch(ctx, "connectors", lambda c: c.nc.list_connectors(connector_type=None))
        except CxError as exc:
            yield NC_SUBJECT.check("routing.rules", self.symptom, CheckStatus.WARN,
                                          f"could not read Notification Center: {exc.message}", exc.hint)  # fmt: skip
            return
        yield self._rules(ctx, routers, {str(c.get("id")): c for c in connectors})

    def _rules(self, ctx: Context, routers: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> Check:
        from cxslack.remote.routing import targets
        from cxslack.remote.shape import integration_of

        problems: list[tuple[str, str]] = []
        rule_targets = list(targets(routers))
        local = {c.id for i in ctx.all_integrations for c in ctx.connectors_of(i)}
        for target in rule_targets:
            connector = by_id.get(target.connector_id)
            where = f"{target.describe()} targets connector {target.connector_id}"
            if connector is None:
                fix = (f"recreate it: cxslack connectors push {quote(target.connector_id)}" if target.connector_id in local
                       else "point the rule at an existing connector in Coralogix (Notification Center → Routing)")  # fmt: skip
                problems.append((f"{where}, which does not exist", fix))
                continue
            if bare(connector.get("type"), CONNECTOR_TYPE_PREFIX) != SLACK:
                continue
            through = integration_of(connector) or "?"
            try:
                instance = _instances(ctx).get(through)
            except CxError as exc:
                problems.append(
                    (f"{where}: its integration could not be checked ({exc.message})", str(exc.hint or ""))
                )
                continue
            migrate = (
                f"cxslack connectors migrate {quote(target.connector_id)} --to INTEGRATION --remote --test"
            )
            if instance is None:
                problems.append((f"{where}, which delivers through Slack integration {through}, removed from Coralogix",
                                 f"move it to a working integration: {migrate}"))  # fmt: skip
            elif instance.failing:
                said = f" ({'; '.join(instance.messages)})" if instance.messages else ""
                problems.append((f"{where}, which delivers through Slack integration {through}, Failing{said}",
                                 f"{REINSTALL}, or move it: {migrate}"))  # fmt: skip
        ok = (f"{len(rule_targets)} rule target(s) in {len(routers)} router(s) reach existing connectors "
              "on working integrations")  # fmt: skip
        return NC_SUBJECT.findings("routing.rules", self.symptom, problems, ok)
