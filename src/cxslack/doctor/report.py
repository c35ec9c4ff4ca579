"""What doctor found: checks with a status, grouped by what they are about. Renders nowhere."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cxslack.errors import EXIT_FAILED, EXIT_OK


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


class Symptom(StrEnum):
    """A row of the product page's Troubleshooting table, plus cxslack's own local health."""

    FAILING = "failing"
    NO_TIMELINE_UPDATES = "no-timeline-updates"
    NO_PREVIEWS = "no-previews"
    WRONG_CHANNEL = "wrong-channel"
    CERTIFICATION = "certification"
    ROUTING_RULES = "routing-rules"
    CASE_ACTIONS = "case-actions"
    EVALUATION_CHART = "evaluation-chart"
    LOCAL = "local"

    @property
    def label(self) -> str:
        return _SYMPTOM_LABELS[self]


_SYMPTOM_LABELS = {
    Symptom.FAILING: "Status shows Failing in the integrations list",
    Symptom.NO_TIMELINE_UPDATES: "No Case timeline updates from Slack replies",
    Symptom.NO_PREVIEWS: "Coralogix Case URLs do not preview in Slack",
    Symptom.WRONG_CHANNEL: "Case notifications post to the wrong Slack channel",
    Symptom.CERTIFICATION: "Banner says v0.1.0 is pending certification",
    # The product page: removing an integration removes its connectors, and "Notification Center
    # routing rules that referenced those connectors stop delivering until they are reconfigured".
    Symptom.ROUTING_RULES: "Notification Center routing rules stop delivering",
    # The product page asks for users:read and users:read.email for "a user interacts with a Case
    # notification": cxslack's buttons on Case messages, and what they need to work.
    Symptom.CASE_ACTIONS: "Case buttons in Slack do nothing",
    Symptom.EVALUATION_CHART: "Case notifications come without the alert evaluation chart",
    Symptom.LOCAL: "Local configuration and credentials",
}


@dataclass(frozen=True)
class Subject:
    """What a check is about, and where a report shows it: a section and an optional group in it."""

    label: str  # "integration Payments", "connector Payments on-call", "credentials file"
    section: str  # "Local", "Integration Payments (v0.1.0, Active)", "Slack app"
    group: str | None = None  # a connector's heading inside its integration's section
    integration: str | None = None  # ids, for scripts
    connector: str | None = None
    rank: int = 0  # sections sort by rank, then by first appearance: Local, integrations, Slack app

    def check(
        self, id: str, symptom: Symptom, status: CheckStatus, message: str, remediation: str | None = None
    ) -> Check:
        return Check(id, symptom, self, status, message, remediation)

    def findings(self, id: str, symptom: Symptom, problems: list[tuple[str, str]], ok: str) -> Check:
        """One check from (problem, remediation) pairs: fail listing them all, or ok."""
        if not problems:
            return self.check(id, symptom, CheckStatus.OK, ok)
        remedies = dict.fromkeys(r for _, r in problems)  # each distinct remedy once, in order
        return self.check(
            id, symptom, CheckStatus.FAIL, "; ".join(p for p, _ in problems), "; ".join(remedies)
        )


@dataclass(frozen=True)
class Check:
    id: str  # stable, e.g. failing.token or routing.channels
    symptom: Symptom
    subject: Subject
    status: CheckStatus
    message: str
    remediation: str | None = None  # an exact command (or Slack action) that fixes it

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "symptom": self.symptom.value,
            "subject": self.subject.label,
            "status": self.status.value,
            "message": self.message,
            "remediation": self.remediation,
            "integration": self.subject.integration,
            "connector": self.subject.connector,
        }


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """No failing check; warnings are allowed."""
        return not any(c.status is CheckStatus.FAIL for c in self.checks)

    @property
    def exit_code(self) -> int:
        """1 when a check failed, so CI can gate on doctor."""
        return EXIT_OK if self.healthy else EXIT_FAILED

    def counts(self) -> Counter[CheckStatus]:
        return Counter(c.status for c in self.checks)

    def ordered(self) -> list[Check]:
        """Checks with each section's together (stable: first appearance within a rank)."""
        first_seen: dict[str, int] = {}
        for check in self.checks:
            first_seen.setdefault(check.subject.section, len(first_seen))
        return sorted(self.checks, key=lambda c: (c.subject.rank, first_seen[c.subject.section]))

    def to_json(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "healthy": self.healthy,
            "checks": [c.to_json() for c in self.ordered()],
            "summary": {"total": len(self.checks), **{s.value: counts[s] for s in CheckStatus}},
        }
