"""No Case timeline updates from Slack replies.

The seed's causes: a version earlier than v0.1.0, Two-way comment sync not enabled at install
(so its scopes were never granted), or the bot not a member of the channel. Public channels the
bot joins by itself (channels:join); private ones need an invite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cxslack.connectors import Connector, EntityType, channel_label
from cxslack.doctor import remedies
from cxslack.doctor.context import Context, SymptomChecks
from cxslack.doctor.report import Check, CheckStatus, Symptom
from cxslack.doctor.slack_state import SlackUnavailable, bot_scopes
from cxslack.model import Integration
from cxslack.registry import quote
from cxslack.scopes import Feature


def syncs(integration: Integration) -> bool:
    return integration.two_way_sync and integration.supports_cases_features


class TimelineChecks(SymptomChecks):
    symptom = Symptom.NO_TIMELINE_UPDATES

    def integration(self, ctx: Context, integration: Integration) -> Iterator[Check]:
        if not integration.sends_notifications:
            return  # no Case notifications, so no threads whose replies could sync
        subject = ctx.integration_subject(integration)
        connectors = len(ctx.connectors_of(integration))
        if not integration.supports_cases_features:
            if connectors:
                yield subject.check(
                    "timeline.version", self.symptom, CheckStatus.WARN,
                    f"v{integration.version} cannot sync Slack replies into Case timelines, and {connectors} "
                    "connector(s) still deliver through it",
                    remedies.move_to_current(ctx, integration, two_way_sync=True),
                )  # fmt: skip
            else:
                yield subject.check(
                    "timeline.version", self.symptom, CheckStatus.OK,
                    f"v{integration.version} cannot sync replies, but no connectors deliver through it",
                )  # fmt: skip
            return
        yield subject.check(
            "timeline.version", self.symptom, CheckStatus.OK,
            f"v{integration.version} supports two-way comment sync",
        )  # fmt: skip
        if not integration.two_way_sync:
            # Two-way sync is optional in the product, so off is a choice, not a fault: warn (never
            # fail), and only when connectors deliver Case notifications whose replies are then lost.
            status = CheckStatus.WARN if connectors else CheckStatus.OK
            detail = "Slack replies do not reach Case timelines" if connectors else "no connectors use it"
            yield subject.check(
                "timeline.two_way_sync", self.symptom, status,
                f"Two-way comment sync is off: {detail}",
                remedies.enable(integration, "--two-way-sync") if connectors else None,
            )  # fmt: skip
            return
        yield subject.check(
            "timeline.two_way_sync", self.symptom, CheckStatus.OK, "Two-way comment sync is on"
        )
        yield _receiving(ctx, integration, subject, self.symptom)
        yield self.scopes_check(
            ctx, integration, "timeline.scopes", Feature.TWO_WAY_SYNC,
            lacking=", so the bot cannot join channels or read thread replies",
            granted=f"{', '.join(bot_scopes(Feature.TWO_WAY_SYNC))} are granted",
        )  # fmt: skip

    def connector(self, ctx: Context, connector: Connector, integration: Integration) -> Iterator[Check]:
        if not syncs(integration):
            return
        subject = ctx.connector_subject(connector, integration)
        session = ctx.session(integration)
        problems: list[tuple[str, str]] = []
        unknown: list[str] = []
        # Replies sync on Case notification threads: the channels Case notifications can land in.
        for target in ctx.targets(connector, (EntityType.CASES,)):
            try:
                seen = session.membership(target.channel)
            except SlackUnavailable as why:
                yield why.check(subject, "timeline.membership", self.symptom)
                return
            shown = channel_label(target.channel)
            if seen.state == "invisible":
                problems.append((f"{shown} ({target.role}) {seen.detail}", remedies.invite(target.channel)))
            elif seen.state == "outside" and "channels:join" not in session.scopes():
                problems.append(
                    (
                        f"the app is not in {shown} ({target.role}) and cannot join it: channels:join not granted",
                        f"{remedies.invite(target.channel)}, or grant channels:join: {remedies.authorize(integration)}",
                    )
                )
            elif seen.state == "unknown":
                unknown.append(f"{shown} ({target.role}): {seen.detail}")
        if not problems and unknown:
            yield subject.check(
                "timeline.membership", self.symptom, CheckStatus.SKIP,
                "cannot tell whether the app is in every channel Case notifications can go to: " + "; ".join(unknown),
                f"{remedies.grant_channel_lookup(integration)}   (or post once: "
                f"cxslack connectors test {quote(connector.name)})",
            )  # fmt: skip
            return
        ok = "the app is in, or joins after its first post, every channel Case notifications can go to"
        yield subject.findings("timeline.membership", self.symptom, problems, ok)


def _receiving(ctx: Context, integration: Integration, subject: Any, symptom: Symptom) -> Check:
    """Replies only sync while something reads them: `cxslack listen` (its inbox records every
    event it finished) or a scheduled `cxslack sync` (its ledger holds per-thread checkpoints)."""
    import time

    from cxslack.state import open_state

    state = open_state(ctx.registry.store)
    threads = [t for t in state.threads.all() if t.integration == integration.id]
    if not threads:
        return subject.check("timeline.listener", symptom, CheckStatus.OK, "no Case threads tracked yet")
    heard = state.last_event_handled_at()
    polled = state.ledger.last_poll()
    if heard is None and not polled:
        return subject.check(
            "timeline.listener", symptom, CheckStatus.WARN,
            f"{len(threads)} Case thread(s) are tracked, but no Slack event has ever been received and "
            "`cxslack sync` has never run: replies in them are not reaching the Cases",
            "cxslack listen --http 127.0.0.1:3000   (or schedule: cxslack sync)",
        )  # fmt: skip
    if heard is not None and (not polled or heard >= polled):
        ago = int(time.time() - heard)
        return subject.check(
            "timeline.listener",
            symptom,
            CheckStatus.OK,
            f"`cxslack listen` last handled an event {ago} s ago",
        )
    ago = int(time.time() - float(polled or 0))
    return subject.check(
        "timeline.listener",
        symptom,
        CheckStatus.OK,
        f"`cxslack sync` last polled the tracked threads {ago} s ago",
    )
