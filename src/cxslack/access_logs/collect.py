"""One collection run (or a --follow job of them): read the window past the checkpoint, deliver what is new."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxslack.access_logs.checkpoint import Checkpoint
from cxslack.access_logs.reading import PAGE_SIZE, Stopped, read_window
from cxslack.access_logs.records import to_record
from cxslack.access_logs.sinks import Sink, SinkKind, batches
from cxslack.access_logs.times import rfc3339
from cxslack.errors import EXIT_AUTH, EXIT_PARTIAL, AuthError, CxError, UsageError
from cxslack.model import Integration, Status, utc_now
from cxslack.registry import Registry, quote
from cxslack.slack.client import SlackAccess, SlackError

DEFAULT_BATCH = 1000
DEFAULT_APPLICATION = "slack"
DEFAULT_SUBSYSTEM = "access-logs"
LAST_COLLECTED = "access_logs_last_collected"  # on the integration in config.toml
# Errors a --follow job outlives: it reports them and tries again at the next interval.
TRANSIENT_ERRORS = frozenset(
    {
        "slack_unavailable",
        "slack_unreachable",
        "ratelimited",
        "coralogix_unavailable",
        "coralogix_unreachable",
    }
)


@dataclass
class Progress:
    """Callbacks the CLI uses to show progress; all optional."""

    read: Callable[[int, int], None] = lambda pages, entries: None
    delivered: Callable[[int, int], None] = lambda done, total: None
    waiting: Callable[[], None] = lambda: None


@dataclass
class CollectResult:
    integration: str
    kind: SinkKind
    collected: int = 0
    delivered: int = 0
    skipped_duplicates: int = 0
    pages: int = 0
    high_water: int | None = None
    checkpoint: Path | None = None
    stopped: bool = False
    runs: int = 1

    def plus(self, later: CollectResult) -> CollectResult:
        """Totals over a --follow job's runs; the checkpoint is the latest one."""
        return CollectResult(
            integration=self.integration,
            kind=self.kind,
            collected=self.collected + later.collected,
            delivered=self.delivered + later.delivered,
            skipped_duplicates=self.skipped_duplicates + later.skipped_duplicates,
            pages=self.pages + later.pages,
            high_water=later.high_water if later.high_water is not None else self.high_water,
            checkpoint=later.checkpoint,
            stopped=later.stopped,
            runs=self.runs + later.runs,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "integration": self.integration,
            "collected": self.collected,
            "forwarded" if self.kind == "forward" else "written": self.delivered,
            "skipped_duplicates": self.skipped_duplicates,
            "pages": self.pages,
            "checkpoint": {
                "high_water": rfc3339(self.high_water) if self.high_water is not None else None,
                "path": str(self.checkpoint) if self.checkpoint else None,
            },
        }


def find_collecting(registry: Registry, ref: str) -> Integration:
    """The integration, if it collects access logs and its Slack app is installed."""
    integration = registry.view().find(ref)
    name = quote(integration.name)
    if not integration.collects_access_logs:
        raise UsageError(
            "access_logs_not_enabled",
            f"integration {integration.name} does not collect access logs",
            f"Turn it on, then reauthorize so Slack grants the admin scope: cxslack integrations edit {name} "
            f"--access-logs && cxslack integrations authorize {name}",
        )
    if integration.status is Status.PENDING:
        raise AuthError(
            "integration_pending",
            f"integration {integration.name} is Pending: the Slack app is not installed yet",
            f"Install it with: cxslack integrations authorize {name}",
        )
    return integration


def user_access(registry: Registry, integration: Integration) -> SlackAccess:
    """A SlackAccess with the integration's (fresh) user token: team.accessLogs needs a user's `admin`."""
    from cxslack.oauth.flow import fresh_tokens

    secrets = fresh_tokens(registry, integration)
    if secrets.user is None:
        raise AuthError(
            "no_user_token",
            f"integration {integration.name} has no Slack user token, which reading access logs needs "
            "(user scope admin)",
            f"Reauthorize to grant it: cxslack integrations authorize {quote(integration.name)}",
        )
    return SlackAccess(secrets.user.access_token, integration=integration.name)


def _explain(error: SlackError, integration: Integration) -> CxError:
    """Slack's refusals of team.accessLogs, with what to do about them for this integration."""
    name = quote(integration.name)
    workspace = integration.workspace.team_name if integration.workspace else "the workspace"
    if error.code == "paid_only":
        return CxError(
            "paid_only",
            f"Slack keeps access logs only for paid plans, and {workspace} is on the free plan",
            f"Upgrade the Slack workspace's plan, or stop collecting: cxslack integrations edit {name} --no-access-logs",
        )
    if error.code == "missing_scope":
        granted = str(error.data.get("provided") or "none")
        return AuthError(
            "missing_scope",
            f"reading access logs needs the admin user scope, which {integration.name}'s token lacks "
            f"(granted: {granted})",
            f"Reauthorize as a workspace admin or owner: cxslack integrations authorize {name}",
        )
    if error.token_invalid:
        return SlackError(
            error.code,
            f"Slack rejected {integration.name}'s user token ({error.code})",
            f"Reauthorize: cxslack integrations authorize {name}",
            exit_code=EXIT_AUTH,
            method=error.method,
        )
    return error


def collect(
    registry: Registry,
    integration: Integration,
    sink: Sink,
    checkpoint: Checkpoint,
    *,
    since: int | None = None,
    until: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    page_size: int = PAGE_SIZE,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> CollectResult:
    """One run: read the window past the checkpoint, deliver what is new oldest first, record it."""
    progress = progress or Progress()
    result = CollectResult(integration.id, sink.kind, checkpoint=checkpoint.path)
    access = user_access(registry, integration)
    with checkpoint.session(progress.waiting):
        floor = max(since or 0, checkpoint.floor())
        try:
            window = read_window(
                access, floor, until, page_size=page_size, on_page=progress.read, should_stop=should_stop
            )
        except SlackError as exc:
            raise _explain(exc, integration) from None
        except Stopped:
            result.stopped = True
            return result
        new = sorted(
            (login for digest, login in window.logins.items() if digest not in checkpoint.sent),
            key=lambda login: (login.date_first, login.digest),
        )
        result.pages, result.collected = window.pages, len(window.logins)
        result.skipped_duplicates = result.collected - len(new)
        for batch in batches((to_record(login, integration) for login in new), sink, batch_size):
            if should_stop():
                result.stopped = True
                break
            try:
                checkpoint.deliver(sink, batch)
            except CxError as exc:
                if not result.delivered:
                    raise
                raise CxError(
                    exc.code,
                    f"{exc.message} ({result.delivered:,} of {len(new):,} new entries were delivered and "
                    "are in the checkpoint; a rerun delivers the rest)",
                    exc.hint,
                    exit_code=EXIT_PARTIAL,
                ) from None
            result.delivered += len(batch)
            progress.delivered(result.delivered, len(new))
        result.high_water = checkpoint.high_water
    if checkpoint.files is not None and not result.stopped:
        _record_collected(registry, integration.id)
    return result


def _record_collected(registry: Registry, integration_id: str) -> None:
    with registry.editing() as (view, _):
        integration = view.integrations.get(integration_id)
        if integration is not None:  # removed meanwhile
            integration.extra[LAST_COLLECTED] = utc_now()


def follow(
    run_once: Callable[[], CollectResult],
    *,
    interval: float,
    stop: threading.Event,
    on_error: Callable[[CxError], None],
    max_runs: int | None = None,
) -> CollectResult | None:
    """Run, wait `interval`, run again … until `stop` is set (or `max_runs`); the totals, if any run finished.

    Errors in TRANSIENT_ERRORS are reported and retried at the next interval; others end the job.
    """
    total: CollectResult | None = None
    runs = 0
    while not stop.is_set():
        try:
            result = run_once()
            total = result if total is None else total.plus(result)
        except CxError as exc:
            if exc.code not in TRANSIENT_ERRORS:
                raise
            on_error(exc)
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        stop.wait(interval)
    return total
