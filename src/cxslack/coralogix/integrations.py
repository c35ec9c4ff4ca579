"""Coralogix's Integrations API (OpenAPI v5): the Slack integrations deployed in the account.

The Slack definition is found by its name in `GET /integrations/integrations/v1` (its id is
Coralogix's to choose, so it is never hard-coded); `GET /integrations/integrations/v1/{id}`
then lists its deployed instances (`integrationDetail.default.registered`), each with a
definition version and `integrationStatus.connectionStatus` (PENDING, ACTIVE, FAILING,
STATUS_UNKNOWN) plus Coralogix's own messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from cxslack.coralogix.client import Call, CoralogixClient
from cxslack.errors import CxError, NotFoundError

INTEGRATIONS_PATH = "/integrations/integrations/v1"
READ = "integrations:ReadConfig"  # the product page's prerequisite to view deployed integrations
SLACK_NAME = "Slack"
STATUSES = ("PENDING", "ACTIVE", "FAILING", "STATUS_UNKNOWN")
_STATUS_PREFIX = "CONNECTION_STATUS_"


@dataclass(frozen=True)
class RemoteIntegration:
    """One deployed Slack integration instance, as Coralogix reports it."""

    id: str
    version: str
    status: str  # one of STATUSES
    messages: tuple[str, ...] = ()
    details: dict[str, str] = field(default_factory=dict)
    last_updated: str = ""
    testing: bool = False

    @property
    def failing(self) -> bool:
        return self.status == "FAILING"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "status": self.status.lower(),
            "messages": list(self.messages),
            "details": dict(self.details),
            "last_updated": self.last_updated,
            "testing": self.testing,
        }


class Integrations:
    def __init__(self, client: CoralogixClient):
        self.client = client

    def slack_definition_id(self) -> str:
        """The id of the integration definition named Slack."""
        call = Call("list integration definitions", READ, "no Integrations API here")
        doc = self.client.management("GET", INTEGRATIONS_PATH, call)
        entries = doc.get("integrations", [])
        if not isinstance(entries, list):
            raise CxError("coralogix_bad_response", "Coralogix sent an integration list cxslack cannot read")
        named: dict[str, str] = {}  # name → id
        for entry in entries:
            integration = entry.get("integration") if isinstance(entry, dict) else None
            if isinstance(integration, dict) and isinstance(integration.get("id"), str) and integration["id"]:
                named[str(integration.get("name", "")).strip()] = integration["id"]
        exact = [i for name, i in named.items() if name.casefold() == SLACK_NAME.casefold()]
        # "Slack" on the product page; a longer name is taken only when it is the one Slack definition
        loose = [i for name, i in named.items() if SLACK_NAME.casefold() in name.casefold()]
        if exact or len(loose) == 1:
            return (exact or loose)[0]
        raise NotFoundError(
            "slack_integration_not_available",
            f"Coralogix lists no integration named {SLACK_NAME}",
            "Check the region (cxslack coralogix show) and that the key can read integrations.",
        )

    def slack_instances(self) -> list[RemoteIntegration]:
        """Every deployed Slack integration instance of the account (two calls)."""
        definition = self.slack_definition_id()
        call = Call("read the Slack integration", READ, f"no integration {definition}")
        doc = self.client.management("GET", f"{INTEGRATIONS_PATH}/{quote(definition, safe='')}", call)
        detail = doc.get("integrationDetail")
        default = detail.get("default") if isinstance(detail, dict) else None
        registered = default.get("registered", []) if isinstance(default, dict) else []
        if not isinstance(registered, list):
            raise CxError(
                "coralogix_bad_response", "Coralogix sent deployed integrations cxslack cannot read"
            )
        return [_instance(item) for item in registered if isinstance(item, dict) and item.get("id")]


def _instance(item: dict[str, Any]) -> RemoteIntegration:
    status_doc = _dict(item.get("integrationStatus"))
    raw = str(status_doc.get("connectionStatus") or "STATUS_UNKNOWN").upper().removeprefix(_STATUS_PREFIX)
    messages = status_doc.get("messages")
    messages = messages if isinstance(messages, list) else []
    details = _dict(status_doc.get("details"))
    return RemoteIntegration(
        id=str(item["id"]),
        version=str(item.get("definitionVersion") or ""),
        status=raw if raw in STATUSES else "STATUS_UNKNOWN",
        messages=tuple(str(m) for m in messages),
        details={str(k): str(v) for k, v in details.items()},
        last_updated=str(item.get("lastUpdated") or ""),
        testing=bool(item.get("isTesting", False)),
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
