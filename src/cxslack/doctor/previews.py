"""Coralogix Case URLs do not preview in Slack.

The seed's causes: a version earlier than v0.1.0, or links:read and links:write declined at
install. Previews belong to the workspace: any v0.1.0 install there with both scopes renders them.
"""

from __future__ import annotations

from collections.abc import Iterator

from cxslack.doctor import remedies
from cxslack.doctor.context import Context, SymptomChecks
from cxslack.doctor.report import Check, CheckStatus, Symptom
from cxslack.doctor.slack_state import SlackUnavailable, bot_scopes
from cxslack.model import Integration
from cxslack.scopes import Feature


class PreviewChecks(SymptomChecks):
    symptom = Symptom.NO_PREVIEWS

    def integration(self, ctx: Context, integration: Integration) -> Iterator[Check]:
        if not integration.sends_notifications:
            return  # link previews are a notification setting (the product ties them to notifications)
        subject = ctx.integration_subject(integration)
        if not integration.supports_cases_features:
            provider = _current_in_workspace(ctx, integration)
            if provider is not None:
                yield subject.check(
                    "previews.version", self.symptom, CheckStatus.OK,
                    f"v{integration.version} cannot preview Case URLs; v{provider.version} integration "
                    f"{provider.name} does in this workspace",
                )  # fmt: skip
            else:
                yield subject.check(
                    "previews.version", self.symptom, CheckStatus.WARN,
                    f"v{integration.version} cannot preview Case URLs, and no v0.1.0 integration in its workspace does",
                    remedies.add_current(integration, two_way_sync=False)[1],
                )  # fmt: skip
            return
        yield subject.check(
            "previews.version",
            self.symptom,
            CheckStatus.OK,
            f"v{integration.version} renders Case URL previews",
        )
        try:
            missing = ctx.session(integration).missing(Feature.LINK_PREVIEWS)
        except SlackUnavailable as why:
            yield why.check(subject, "previews.scopes", self.symptom)
            return
        if not missing:
            yield subject.check(
                "previews.scopes", self.symptom, CheckStatus.OK,
                f"{', '.join(bot_scopes(Feature.LINK_PREVIEWS))} are granted: Case URLs preview wherever the app is present",
            )  # fmt: skip
        elif integration.link_previews:  # asked for and not granted: declined on Slack's page
            yield subject.check(
                "previews.scopes", self.symptom, CheckStatus.FAIL,
                f"{', '.join(missing)} not granted (declined during install), so Case URLs do not preview",
                remedies.authorize(integration),
            )  # fmt: skip
        else:  # turned off on purpose: an optional feature
            yield subject.check(
                "previews.scopes", self.symptom, CheckStatus.WARN,
                "Rich link previews are off, so Case URLs do not preview",
                remedies.enable(integration, "--link-previews"),
            )  # fmt: skip


def _current_in_workspace(ctx: Context, earlier: Integration) -> Integration | None:
    """A v0.1.0 integration with link previews installed in the same Slack workspace."""
    if earlier.workspace is None:
        return None
    return next(
        (
            i
            for i in ctx.all_integrations
            if i.supports_cases_features
            and i.link_previews
            and i.workspace is not None
            and i.workspace.team_id == earlier.workspace.team_id
        ),
        None,
    )
