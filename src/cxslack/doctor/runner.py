"""Run the checks a doctor invocation selects and collect them in a Report."""

from __future__ import annotations

from cxslack.doctor import local
from cxslack.doctor.actions import ActionChecks
from cxslack.doctor.certification import CertificationChecks
from cxslack.doctor.charts import ChartChecks
from cxslack.doctor.context import Context, DoctorOptions, SymptomChecks
from cxslack.doctor.coralogix import LinkChecks, RoutingRuleChecks
from cxslack.doctor.failing import FailingChecks
from cxslack.doctor.local import LocalChecks
from cxslack.doctor.previews import PreviewChecks
from cxslack.doctor.report import Report, Symptom
from cxslack.doctor.routing import RoutingChecks
from cxslack.doctor.timeline import TimelineChecks
from cxslack.errors import ConfigError
from cxslack.registry import Registry

# The order rows appear in within a section: the troubleshooting table's, then local health.
MODULES: tuple[SymptomChecks, ...] = (
    FailingChecks(),
    LinkChecks(),
    TimelineChecks(),
    PreviewChecks(),
    RoutingChecks(),
    RoutingRuleChecks(),
    ActionChecks(),
    ChartChecks(),
    CertificationChecks(),
    LocalChecks(),
)


def diagnose(registry: Registry, options: DoctorOptions) -> Report:
    """Run the checks `options` select. Raises NotFoundError for an unknown integration."""
    report = Report()
    try:
        ctx: Context | None = Context.load(registry, options)
        error = None
    except ConfigError as exc:
        ctx, error = None, exc
    # An unusable config stops every other check, so it is reported whatever the symptom.
    if ctx is None or options.wants(Symptom.LOCAL):
        report.checks.append(local.config_check(registry.store, ctx, error))
    if options.wants(Symptom.LOCAL):
        report.checks += local.file_checks(registry.store)
    if ctx is None:
        return report
    ctx.prefetch()
    selected = [m for m in MODULES if options.wants(m.symptom)]
    for module in selected:
        report.checks += module.workspace(ctx)
    for integration in ctx.integrations:
        for module in selected:
            report.checks += module.integration(ctx, integration)
        for connector in ctx.connectors_of(integration):
            for module in selected:
                report.checks += module.connector(ctx, connector, integration)
    return report
