"""Coralogix's alert definitions (OpenAPI v5, alerts v3): what a Case's alert indicator triggered on.

`GET /alerts/alerts/v3/version-ids/{alert_version_id}` answers the definition as it was in the
version that triggered (an indicator's `latestAlertVersion`); `GET /alerts/alerts/v3/{id}` the
current one, used when Coralogix no longer has that version. Both answer `{"alertDef": AlertDef}`
and need `alerts:ReadConfig` (alerts-integrations.yaml).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from cxslack.coralogix.client import Call, CoralogixClient
from cxslack.errors import CxError, NotFoundError

ALERTS_PATH = "/alerts/alerts/v3"
READ = "alerts:ReadConfig"


def alert_definition(client: CoralogixClient, alert_id: str, version_id: str | None = None) -> dict[str, Any]:
    """The `AlertDef` of an alert indicator: its triggering version when given, else the current one."""
    if version_id:
        call = Call(f"read version {version_id} of alert {alert_id}", READ, f"no alert version {version_id}")
        try:
            return _alert_def(
                client.management("GET", f"{ALERTS_PATH}/version-ids/{quote(version_id, safe='')}", call)
            )
        except NotFoundError:
            pass  # a version Coralogix no longer keeps: the alert as it is now
    call = Call(f"read alert {alert_id}", READ, f"no alert {alert_id} (deleted since it triggered?)")
    return _alert_def(client.management("GET", f"{ALERTS_PATH}/{quote(alert_id, safe='')}", call))


def _alert_def(doc: dict[str, Any]) -> dict[str, Any]:
    alert = doc.get("alertDef")
    if not isinstance(alert, dict) or not isinstance(alert.get("alertDefProperties"), dict):
        raise CxError("coralogix_bad_response", "Coralogix sent an alert definition cxslack cannot read")
    return alert
