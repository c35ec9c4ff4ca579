"""Is access-log collection running? (for doctor and `integrations list`)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cxslack.access_logs.collect import LAST_COLLECTED
from cxslack.model import Integration, Status
from cxslack.registry import quote

# Doctor warns when an integration that collects access logs has not done so for this long.
STALE_AFTER = timedelta(hours=24)


def access_logs_health(integration: Integration, now: datetime | None = None) -> tuple[str, str, str]:
    """(ok|warn|skip, message, remediation): is collection running for an integration that has it on?"""
    name = quote(integration.name)
    run = f"cxslack access-logs collect {name} --forward"
    if not integration.collects_access_logs:
        return "skip", f"{integration.name} does not collect access logs", ""
    if integration.status is Status.PENDING:
        return "skip", f"{integration.name} is not installed yet", f"cxslack integrations authorize {name}"
    last = integration.extra.get(LAST_COLLECTED)
    if not isinstance(last, str) or not last:
        return (
            "warn",
            f"{integration.name} collects access logs, but no collection has run yet",
            f"Run one: {run}; keep it running with --follow, or schedule it",
        )
    try:
        then = datetime.fromisoformat(last)
    except ValueError:
        return "warn", f"{integration.name}'s last access-log collection time is unreadable ({last!r})", run
    age = (now or datetime.now(UTC)) - then
    if age > STALE_AFTER:
        hours = int(age.total_seconds() // 3600)
        return (
            "warn",
            f"{integration.name}'s access logs were last collected {hours} hours ago ({last})",
            f"Check the collection job (--follow, or the scheduler running it); collect now: {run}",
        )
    return "ok", f"{integration.name}'s access logs were last collected at {last}", ""
