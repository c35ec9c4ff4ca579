"""Case buttons in Slack do nothing (cxslack's own row, beside the product page's table).

A click works when all of these hold: the integration is v0.1.0 (earlier versions post no
buttons), some connector has the buttons on, `users:read` and `users:read.email` are granted
(who clicked, and their email), Coralogix knows the team to find them in (the team id, with an
API key), and a `cxslack listen` is there to receive the click. What is missing fails once
buttons are out in Slack (Case threads exist for the integration); before that it warns.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from cxslack.doctor.context import Context, SymptomChecks
from cxslack.doctor.report import Check, CheckStatus, Subject, Symptom
from cxslack.model import Integration
from cxslack.scopes import Feature

if TYPE_CHECKING:
    from cxslack.state.interface import State

NEEDED_SCOPES = ("users:read", "users:read.email")
LISTEN = "cxslack listen --http 127.0.0.1:3000 (behind an https proxy), or: cxslack listen --socket-mode"


class ActionChecks(SymptomChecks):
    symptom = Symptom.CASE_ACTIONS

    def integration(self, ctx: Context, integration: Integration) -> Iterator[Check]:
        if not integration.sends_notifications:
            return
        subject = ctx.integration_subject(integration)
        if not integration.supports_cases_features:
            yield subject.check(
                "actions.version", self.symptom, CheckStatus.OK,
                f"v{integration.version} Case messages carry no buttons (Case buttons need v0.1.0)",
            )  # fmt: skip
            return
        connectors = ctx.connectors_of(integration)
        on = [c for c in connectors if c.case_actions]
        if not on:
            why = "no connector delivers through it yet" if not connectors else "every connector has them off"
            yield subject.check("actions.enabled", self.symptom, CheckStatus.OK, f"no Case buttons: {why}")
            return
        yield subject.check(
            "actions.enabled", self.symptom, CheckStatus.OK,
            f"Case buttons are on for {len(on)} of {len(connectors)} connector(s)",
        )  # fmt: skip
        from cxslack.state import open_state

        state = open_state(ctx.registry.store)
        posted = sum(1 for t in state.threads.all() if t.integration == integration.id)
        broken = CheckStatus.FAIL if posted else CheckStatus.WARN
        shown = f"{posted} Case message(s) with buttons are in Slack" if posted else "once Cases are posted"
        yield self.scopes_check(
            ctx, integration, "actions.scopes", Feature.ALWAYS, only=NEEDED_SCOPES, broken=broken,
            lacking=": a click cannot tell who the person is or find their Coralogix account, so every click is refused",
            granted=f"{' and '.join(NEEDED_SCOPES)} are granted: a click finds the person by their Slack email",
        )  # fmt: skip
        yield self._coralogix(ctx, subject, broken, shown)
        yield self._listener(state, subject, shown)

    def _coralogix(self, ctx: Context, subject: Subject, broken: CheckStatus, shown: str) -> Check:
        from cxslack.coralogix.config import TEAM_ID_HINT, resolve_settings
        from cxslack.errors import CxError

        try:
            settings = resolve_settings(store=ctx.registry.store)
        except CxError as exc:
            return subject.check("actions.coralogix", self.symptom, broken, exc.message, exc.hint)
        if settings.team_id is None:
            return subject.check(
                "actions.coralogix", self.symptom, broken,
                f"the Coralogix team id is not configured: every click is refused ({shown})",
                TEAM_ID_HINT,
            )  # fmt: skip
        if not settings.api_key:
            return subject.check(
                "actions.coralogix", self.symptom, broken,
                f"no Coralogix API key: clicks cannot act on Cases ({shown})",
                "cxslack coralogix configure --api-key-stdin, or set CX_API_KEY",
            )  # fmt: skip
        return subject.check(
            "actions.coralogix", self.symptom, CheckStatus.OK,
            f"clicks act as members of Coralogix team {settings.team_id} ({settings.origins['team_id']})",
        )  # fmt: skip

    def _listener(self, state: State, subject: Subject, shown: str) -> Check:
        import time

        if state.listening():
            return subject.check("actions.listener", self.symptom, CheckStatus.OK,
                                 "`cxslack listen` is running and receives the clicks")  # fmt: skip
        configured = [
            n for n in ("CXSLACK_SLACK_SIGNING_SECRET", "CXSLACK_SLACK_APP_TOKEN") if os.environ.get(n)
        ]
        heard = state.last_event_handled_at()
        when = f"; it last handled something {int(time.time() - heard)} s ago" if heard else ""
        ready = f" ({' and '.join(configured)} set here)" if configured else ""
        return subject.check(
            "actions.listener", self.symptom, CheckStatus.WARN,
            f"no `cxslack listen` is running on this state{when}: Slack cannot deliver "
            f"clicks ({shown}) and shows the person an error{ready}",
            LISTEN,
        )  # fmt: skip
