"""Case notifications post to the wrong Slack channel: review each connector's routing.

Every override is rendered on the sample payloads (or `--payload`) as Notification Center would:
a template that fails or renders empty sends everything to `channel`. Every channel a connector
can route to (channel, fallback, rendered overrides) must exist and not be archived, and a
fallback equal to the channel leaves a failed delivery nowhere to go.
"""

from __future__ import annotations

from collections.abc import Iterator

from cxslack.connectors import Connector, EntityType, channel_label
from cxslack.doctor import remedies
from cxslack.doctor.context import Context, SymptomChecks
from cxslack.doctor.report import Check, CheckStatus, Symptom
from cxslack.doctor.slack_state import SlackUnavailable
from cxslack.model import Integration


class RoutingChecks(SymptomChecks):
    symptom = Symptom.WRONG_CHANNEL

    def connector(self, ctx: Context, connector: Connector, integration: Integration) -> Iterator[Check]:
        subject = ctx.connector_subject(connector, integration)
        yield subject.check("routing.templates", self.symptom, *_templates(ctx, connector))
        if connector.fallback_channel == connector.channel:
            yield subject.check(
                "routing.fallback", self.symptom, CheckStatus.WARN,
                f"the fallback channel is the channel itself ({channel_label(connector.channel)}): "
                "a failed delivery has nowhere else to go",
                remedies.edit_connector(connector, "--fallback-channel CHANNEL"),
            )  # fmt: skip
        else:
            yield subject.check(
                "routing.fallback", self.symptom, CheckStatus.OK,
                f"failed deliveries go to {channel_label(connector.fallback_channel)}",
            )  # fmt: skip
        yield _channels(ctx, connector, integration)


def _templates(ctx: Context, connector: Connector) -> tuple[CheckStatus, str, str | None]:
    resolutions = ctx.resolutions(connector)
    channel = channel_label(connector.channel)
    if not resolutions:
        return CheckStatus.OK, f"no overrides: every notification goes to {channel}", None
    on = "the --payload file" if ctx.options.payload is not None else "the sample payload"
    routes: list[str] = []
    failures: list[tuple[str, str]] = []
    empties: list[EntityType] = []
    for entity, resolution in resolutions.items():
        step = resolution.steps[0]  # the override step: used, empty or error
        if step["outcome"] == "error":
            error = step["error"]
            fix = remedies.edit_connector(connector, f"--override '{entity.value}=TEMPLATE'")
            failures.append(
                (
                    f"the {entity.value} template fails on {on} ({error['code']}: {error['message']}), "
                    f"so {entity.value} notifications go to {channel}",
                    f"see why: {remedies.render(connector, entity)}; then fix it: {fix}",
                )
            )
        elif step["outcome"] == "empty":
            empties.append(entity)
        routes.append(f"{entity.value} → {channel_label(resolution.channel)}")
    if failures:
        return CheckStatus.FAIL, "; ".join(m for m, _ in failures), "; ".join(r for _, r in failures)
    if empties:
        # Coralogix's documented way to fall back to `channel`, so possibly deliberate: a warning.
        listed = ", ".join(e.value for e in empties)
        return (
            CheckStatus.WARN,
            f"the {listed} template renders empty on {on}, so those notifications go to {channel}",
            remedies.render(connector, empties[0]),
        )
    return CheckStatus.OK, f"on {on}: {', '.join(routes)}", None


def _channels(ctx: Context, connector: Connector, integration: Integration) -> Check:
    subject = ctx.connector_subject(connector, integration)
    session = ctx.session(integration)
    try:
        directory = session.directory()
    except SlackUnavailable as why:
        return why.check(subject, "routing.channels", Symptom.WRONG_CHANNEL)
    can_post_public = "chat:write.public" in session.scopes()
    problems: list[tuple[str, str]] = []
    for target in ctx.targets(connector):
        info = directory.lookup(target.channel)
        shown = channel_label(target.channel)
        elsewhere = f"or route elsewhere: {remedies.edit_connector(connector, target.change)}"
        if info is None:
            problems.append(
                (
                    f"{shown} ({target.role}) not found, or private without the app: invite it",
                    f"{remedies.invite(target.channel)}, {elsewhere}",
                )
            )
        elif info.is_archived:
            problems.append(
                (f"{shown} ({target.role}) is archived", f"unarchive {shown} in Slack, {elsewhere}")
            )
        elif not info.is_member and not can_post_public:
            problems.append(
                (
                    f"the app is not in {shown} ({target.role}) and chat:write.public is not granted",
                    f"{remedies.invite(target.channel)}, or grant it: {remedies.authorize(integration)}",
                )
            )
    shown_all = ", ".join(channel_label(t.channel) for t in ctx.targets(connector))
    ok = f"{shown_all} exist, are not archived, and the app can post there"
    return subject.findings("routing.channels", Symptom.WRONG_CHANNEL, problems, ok)
