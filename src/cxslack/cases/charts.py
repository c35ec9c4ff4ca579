"""The alert evaluation chart in a Case notification's thread: at most once per (Case, trigger).

For each of the Case's latest alert triggers (`caseIndicators.alertIndicators[]`, at most
MAX_PER_NOTIFY), once per Case thread (one per connector): the data from Coralogix, the picture,
then Slack's three upload steps into the thread (`thread_ts` = the root). A chart never blocks a
notification: it is shared after the notification is posted, and whatever stops it (no
permission, an alert type without a series, no data, no files:write, the charts extra missing) is
a `skipped` outcome with the reason, reported by `cases notify` and never raised.

At most once: the upload is recorded as `uploading` (with Slack's file id) before the share is
sent. When the share's answer is lost, the chart is `in_doubt` for that run and the next notify
settles it before anything else is sent for that trigger: the file found in the thread is
`already_shared`; otherwise the same upload is completed again, which Slack allows once only —
it shares the file if the first share never happened, and fails if it did (or if Slack discarded
the upload meanwhile), in which case the chart stays `in_doubt` (exit 5) and is not sent again
until a person who looked says so (`cases notify --resend`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cxslack.cases.model import case_key, case_name
from cxslack.errors import CxError
from cxslack.state.records import CaseThread, ChartShare, chart_key

MAX_PER_NOTIFY = 3  # the latest triggers charted by one notify; older ones are not charted
# A share that failed with one of these may still have gone through: it is in doubt, not refused.
# (outcome_unknown: the answer was lost; a retry of a share whose answer was lost finds the upload
# completed: file_not_found; Slack's own fatal_error / internal_error "It's possible some aspect
# of the operation succeeded"; unreachable or 5xx after the request went out.)
LOST = frozenset(
    {
        "outcome_unknown",
        "file_not_found",
        "fatal_error",
        "internal_error",
        "slack_unreachable",
        "slack_unavailable",
    }
)


def _share_hint(code: str, integration: str) -> str | None:
    """What to do about Slack refusing a share, with the integration's real name."""
    from cxslack.registry import quote

    if code == "not_in_channel":
        return ("Slack shares files only where the app is a member: invite it (/invite @Coralogix in the "
                "channel), or turn on two-way sync, with which it joins public channels itself")  # fmt: skip
    if code == "missing_scope":
        name = quote(integration)
        return (f"Grant files:write: cxslack integrations edit {name} --evaluation-chart, then "
                f"cxslack integrations authorize {name}")  # fmt: skip
    return None


@dataclass
class ChartOutcome:
    status: str  # shared | already_shared | skipped | in_doubt
    alert_id: str | None = None
    trigger_time: str | None = None
    alert_name: str | None = None
    file_id: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    reason: dict[str, Any] | None = None  # {code, message, hint}
    drawn: dict[str, Any] | None = None  # what the picture shows (for a chart drawn this run)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None or k in ("status", "reason")}

    @property
    def line(self) -> str:
        """One line for a person (stderr)."""
        what = f"chart of {self.alert_name or self.alert_id or 'the alert'}"
        if self.status == "shared":
            return f"{what} shared in the thread"
        if self.status == "already_shared":
            return f"{what} is already in the thread"
        why = (self.reason or {}).get("message", "")
        if self.status == "in_doubt":
            return f"{what} is in doubt, not shared again: {why}"
        return f"no chart: {why}"


class CaseCharts:
    """Shares the charts of a Case's triggers into its thread through one integration."""

    def __init__(self, deliverer: Any, connector: str, coralogix: Any | None, *, resend: bool = False):
        from cxslack.state import open_state

        self.deliverer = deliverer
        self.connector = connector
        self.coralogix = coralogix  # the data's source; None: Coralogix is not configured
        self.resend = resend  # a person looked: a chart in doubt is not in the thread, share it again
        self.book = open_state(deliverer.registry.store).charts

    def share(self, case: dict[str, Any], thread: CaseThread) -> list[ChartOutcome]:
        """Called under the Case's notify turn (CaseThreads.turn), after the notification is posted."""
        from cxslack.charts.model import alert_triggers

        triggers = alert_triggers(case)
        if not triggers:
            return [_skipped("no_alert_indicators", f"{case_name(case)} has no alert indicators to chart")]
        outcomes = []
        for trigger in triggers[:MAX_PER_NOTIFY]:
            try:
                outcomes.append(self._one(case, thread, trigger))
            except Exception as exc:  # a chart never blocks a notification, whatever went wrong
                failed = _skipped(
                    "chart_failed", f"drawing or sharing the chart failed ({type(exc).__name__})"
                )
                outcomes.append(_with(failed, trigger))
        return outcomes

    def _one(self, case: dict[str, Any], thread: CaseThread, trigger: Any) -> ChartOutcome:
        key = chart_key(case_key(case), self.connector, trigger.alert_id, trigger.when)
        recorded = self.book.get(key)
        if recorded is not None and recorded.state == "shared":
            return _with(ChartOutcome("already_shared", file_id=recorded.file_id, channel=recorded.channel,
                                      thread_ts=recorded.thread_ts), trigger)  # fmt: skip
        if recorded is not None and recorded.state == "in_doubt" and self.resend:
            self.book.forget(key)
            recorded = None
        if recorded is not None and recorded.state == "in_doubt":
            return _with(
                _in_doubt(recorded, recorded.reason or "an earlier share's outcome is unknown"), trigger
            )
        if recorded is not None:
            return _with(self._settle(recorded), trigger)
        access = self.deliverer.access
        if access is None:
            return _with(_skipped("webhook_integration", "an incoming webhook cannot share files"), trigger)
        try:
            picture, name = self._draw(case, trigger)
        except CxError as exc:
            return _with(_skipped(exc.code, exc.message, exc.hint), trigger)
        from cxslack.slack.client import SlackError
        from cxslack.slack.files import share, start_upload

        outcome = ChartOutcome("shared", alert_name=name, channel=thread.channel, thread_ts=thread.ts,
                               drawn=picture.drawn)  # fmt: skip
        try:
            outcome.file_id = start_upload(access, picture.filename, picture.png, picture.alt_text)
        except SlackError as exc:
            return _with(self._refused(outcome, exc), trigger)
        uploading = ChartShare(key, "uploading", outcome.file_id, thread.channel, thread.ts, _now())
        self.book.record(uploading)
        try:
            share(access, outcome.file_id, picture.title, thread.channel, thread.ts)
        except SlackError as exc:
            if exc.code in LOST:
                doubt = _in_doubt(uploading, f"Slack's answer to sharing it was lost ({exc.code}); the next notify "
                                  "looks for it in the thread before sharing anything")  # fmt: skip
                doubt.alert_name = name
                return _with(doubt, trigger)
            self.book.forget(key)
            return _with(self._refused(outcome, exc), trigger)
        self.book.record(ChartShare(key, "shared", outcome.file_id, thread.channel, thread.ts, _now()))
        return _with(outcome, trigger)

    def _draw(self, case: dict[str, Any], trigger: Any) -> tuple[Any, str]:
        from cxslack.charts.fetch import chart_data
        from cxslack.charts.render import render, require_charts

        require_charts()  # before asking Coralogix for data nobody can draw
        if self.coralogix is None:
            raise CxError("coralogix_not_configured", "no Coralogix connection to read the alert's data from",
                          "cxslack coralogix configure, or set CX_API_KEY and CX_REGION")  # fmt: skip
        data = chart_data(self.coralogix, case, trigger)
        return render(data), data.alert.name

    def _refused(self, outcome: ChartOutcome, exc: CxError) -> ChartOutcome:
        outcome.status = "skipped"
        outcome.drawn = None
        hint = _share_hint(exc.code, self.deliverer.integration.name) or exc.hint
        outcome.reason = {"code": exc.code, "message": exc.message, "hint": hint}
        return outcome

    def _settle(self, recorded: ChartShare) -> ChartOutcome:
        """An earlier share's answer was lost: find the file in the thread, or complete the same
        upload again (Slack completes an upload once: this fails if the earlier one went through)."""
        from cxslack.charts.model import parse_time
        from cxslack.delivery import SETTLE_SECONDS
        from cxslack.slack.client import SlackError
        from cxslack.slack.files import carries_file, share

        done = ChartOutcome("already_shared", file_id=recorded.file_id, channel=recorded.channel,
                            thread_ts=recorded.thread_ts)  # fmt: skip
        sent = parse_time(recorded.at) or 0.0
        time.sleep(
            max(0.0, sent + SETTLE_SECONDS - time.time())
        )  # a share Slack is still storing is not missed
        found = self.deliverer.find_posted([recorded.channel], sent, carries_file(recorded.file_id),
                                           thread_ts=recorded.thread_ts)  # fmt: skip
        if found.message is None:
            try:
                share(self.deliverer.access, recorded.file_id, None, recorded.channel, recorded.thread_ts)
            except SlackError as exc:
                if exc.code in LOST - {
                    "file_not_found"
                }:  # this answer was lost too: the next notify looks again
                    return _in_doubt(recorded, f"Slack's answers to sharing it were lost ({exc.code})")
                if found.certain and exc.code != "file_not_found":  # refused, and certainly not in the thread
                    self.book.forget(recorded.key)
                    return self._refused(done, exc)
                unseen = "; ".join(found.unsearchable) or "it is not in the thread"
                why = (f"an earlier share's answer was lost, Slack will not complete that upload again "
                       f"({exc.code}), and cxslack cannot tell whether it arrived ({unseen})")  # fmt: skip
                doubt = replace_state(recorded, "in_doubt", why)
                self.book.record(doubt)
                return _in_doubt(doubt, why)
            done.status = "shared"
        self.book.record(replace_state(recorded, "shared"))
        return done


def replace_state(share: ChartShare, state: Any, reason: str | None = None) -> ChartShare:
    return ChartShare(share.key, state, share.file_id, share.channel, share.thread_ts, share.at, reason)


def _in_doubt(share: ChartShare, why: str) -> ChartOutcome:
    where = f"the thread of {share.thread_ts} in {share.channel}" + (
        f", sent at {share.at}" if share.at else ""
    )
    return ChartOutcome(
        "in_doubt",
        file_id=share.file_id,
        channel=share.channel,
        thread_ts=share.thread_ts,
        reason={"code": "chart_in_doubt", "message": f"{why} (file {share.file_id}, {where})",
                "hint": "Look in the Case's thread. A rerun shares nothing while it cannot tell; if the chart is "
                        "not there, rerun with --resend (a second chart if it was)"},
    )  # fmt: skip


def _skipped(code: str, message: str, hint: str | None = None) -> ChartOutcome:
    return ChartOutcome("skipped", reason={"code": code, "message": message, "hint": hint})


def _with(outcome: ChartOutcome, trigger: Any) -> ChartOutcome:
    outcome.alert_id, outcome.trigger_time = trigger.alert_id, trigger.when
    return outcome


def _now() -> str:
    from cxslack.coralogix.data import rfc3339

    return rfc3339(time.time())
