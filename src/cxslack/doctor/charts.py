"""Case notifications come without the alert evaluation chart (cxslack's own feature).

For an integration with `--evaluation-chart`: files:write granted (the upload steps need it; a
declined scope means every chart is skipped), and the charts extra installed (matplotlib draws
the picture). What Coralogix refuses, and channels the app is not in, show per notification.
"""

from __future__ import annotations

from collections.abc import Iterator

from cxslack.doctor.context import Context, SymptomChecks
from cxslack.doctor.report import Check, CheckStatus, Symptom
from cxslack.model import Integration
from cxslack.scopes import Feature


class ChartChecks(SymptomChecks):
    symptom = Symptom.EVALUATION_CHART

    def integration(self, ctx: Context, integration: Integration) -> Iterator[Check]:
        if not integration.evaluation_chart:
            return  # an optional feature, off
        from cxslack.charts.render import charts_available

        subject = ctx.integration_subject(integration)
        if charts_available():
            yield subject.check(
                "chart.extra", self.symptom, CheckStatus.OK, "the charts extra (matplotlib) is installed"
            )
        else:
            yield subject.check(
                "chart.extra", self.symptom, CheckStatus.FAIL,
                "the charts extra is not installed, so no chart can be drawn (notifications go out without one)",
                "pip install 'cxslack[charts]'",
            )  # fmt: skip
        yield self.scopes_check(
            ctx, integration, "chart.scopes", Feature.EVALUATION_CHART,
            lacking=", so charts cannot be shared into Case threads",
            granted="files:write is granted: charts can be shared",
        )  # fmt: skip
