"""Status shows Failing: does Slack still accept the integration's bot token?

auth.test with the stored token (refreshed first when it is a rotating one about to expire).
A token Slack rejects marks the integration Failing with the reason; a token that works again
brings a Failing integration back to Active (both persisted by the Slack session).
"""

from __future__ import annotations

from collections.abc import Iterator

from cxslack.doctor import remedies
from cxslack.doctor.context import Context, SymptomChecks
from cxslack.doctor.report import Check, CheckStatus, Symptom
from cxslack.doctor.slack_state import TokenProbe
from cxslack.model import Integration, Status
from cxslack.registry import quote
from cxslack.slack.client import SlackError

# SlackAccess's codes for no answer at all, or only 5xx after its retries.
_UNREACHABLE = {"slack_unreachable", "slack_unavailable"}

# The seed's two causes, told apart by Slack's error code.
_REJECTIONS = {
    "token_revoked": "the app token was revoked",
    "account_inactive": "the workspace removed the Coralogix Slack app (account_inactive)",
}


class FailingChecks(SymptomChecks):
    symptom = Symptom.FAILING

    def integration(self, ctx: Context, integration: Integration) -> Iterator[Check]:
        status, message, remediation = _verdict(integration, ctx.session(integration).probe())
        yield ctx.integration_subject(integration).check(
            "failing.token", self.symptom, status, message, remediation
        )


def _verdict(integration: Integration, probe: TokenProbe) -> tuple[CheckStatus, str, str | None]:
    if probe.info is not None:
        info = probe.info
        restored = "; status restored to Active" if probe.status_change is Status.ACTIVE else ""
        return (
            CheckStatus.OK,
            f"Slack accepts the {'bot' if info.bot_id else 'user'} token ({info.team_name}, {info.team_id}){restored}",
            None,
        )
    error = probe.error
    if error is not None and probe.rejected:
        cause = _REJECTIONS.get(error.code, f"Slack does not accept the stored token ({error.code})")
        recorded = "status set to Failing" if probe.status_change is Status.FAILING else "status is Failing"
        return CheckStatus.FAIL, f"{cause}; {recorded}", remedies.authorize(integration)
    rerun = f"cxslack doctor {quote(integration.name)} --symptom {Symptom.FAILING.value}"
    if isinstance(error, SlackError) and error.code in _UNREACHABLE:
        # not healthy: nothing this integration sends can arrive while Slack cannot be reached
        return (
            CheckStatus.FAIL,
            f"Slack could not be reached, so nothing can be delivered: {error.message}",
            f"Check the network (and CXSLACK_SLACK_API_URL, if set), then rerun: {rerun}",
        )
    if isinstance(error, SlackError):  # rate-limited: Slack is there, it just gave no verdict yet
        return CheckStatus.WARN, f"could not check the token: {error.message}", rerun
    if error is not None:  # no token stored, or a refresh that could not happen
        remedy = (
            "cxslack app configure" if error.code == "app_not_configured" else remedies.authorize(integration)
        )
        return CheckStatus.FAIL, f"no usable token: {error.message}", remedy
    if integration.status is Status.FAILING:  # offline, say what was last recorded
        reason = f" ({integration.status_reason})" if integration.status_reason else ""
        return (
            CheckStatus.FAIL,
            f"recorded as Failing{reason}; {probe.not_called}",
            remedies.authorize(integration),
        )
    return CheckStatus.SKIP, str(probe.not_called), None
