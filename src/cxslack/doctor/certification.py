"""Banner says v0.1.0 is pending certification: informational, never a fault.

Slack Marketplace certification is a Slack-side review of the app listing; the integration is
fully supported for production use meanwhile, and certification changes nothing in the workspace.
"""

from __future__ import annotations

from collections.abc import Iterator

from cxslack.doctor.context import Context, SymptomChecks
from cxslack.doctor.report import Check, CheckStatus, Subject, Symptom

APP_SUBJECT = Subject("Coralogix Slack app", "Slack app", rank=2)


class CertificationChecks(SymptomChecks):
    symptom = Symptom.CERTIFICATION

    def workspace(self, ctx: Context) -> Iterator[Check]:
        yield APP_SUBJECT.check(
            "certification.status", self.symptom, CheckStatus.OK,
            "v0.1.0 is pending Slack Marketplace certification and fully supported for production use "
            "meanwhile: no action required",
        )  # fmt: skip
