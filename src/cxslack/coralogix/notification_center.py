"""Coralogix Notification Center over its REST API (OpenAPI v5): connectors, their tests, routers.

Shapes are the published ones (`notification-center.yaml`): every connector call carries
`{"connector": {…}}`, `PUT /connectors` replaces the whole object (id in the body), and the
test calls answer `{"result": {"success": {"metadata"}}}` or `{"result": {"failure": {"message",
"statusCode"}}}`. Connector bodies pass through untouched: what cxslack does not model is the
caller's to keep (see `cxslack.remote.shape`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from cxslack.coralogix.client import Call, CoralogixClient
from cxslack.errors import CxError

NC_PATH = "/notifications/notification-center/v1"
# Coralogix's Notification Center permissions (docs: Notification Center → Permissions).
CONNECTORS_READ = "notification-center-connectors:ReadConfig"
CONNECTORS_WRITE = "notification-center-connectors:UpdateConfig"
ROUTERS_READ = "notification-center-routers:ReadConfig"
SLACK = "SLACK"
# Enum values come bare in the spec (`SLACK`, `CASES`) and prefixed in some clients
# (`CONNECTOR_TYPE_SLACK`, `ENTITY_TYPE_CASES`): accept both, send bare.
CONNECTOR_TYPE_PREFIX = "CONNECTOR_TYPE_"
ENTITY_TYPE_PREFIX = "ENTITY_TYPE_"


def bare(value: Any, prefix: str) -> Any:
    """An enum value without its protobuf prefix: CONNECTOR_TYPE_SLACK → SLACK."""
    return value.removeprefix(prefix) if isinstance(value, str) else value


@dataclass(frozen=True)
class TestOutcome:
    """What a `connectors:test` or `connectors:testConfig` call reported."""

    ok: bool
    message: str = ""
    status_code: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def error(self, what: str) -> CxError:
        code = f" (status {self.status_code})" if self.status_code is not None else ""
        return CxError(
            "test_notification_failed",
            f"{what} failed in Coralogix: {self.message or 'no reason given'}{code}",
            "Check the channel, and the integration's status: cxslack integrations list --remote",
        )

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "status_code": self.status_code,
                "metadata": self.metadata}  # fmt: skip


class NotificationCenter:
    """The Notification Center endpoints cxslack uses, on one CoralogixClient."""

    def __init__(self, client: CoralogixClient):
        self.client = client

    def _call(self, verb: str, path: str, call: Call, body: Any = None,
              params: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        return self.client.management(verb, NC_PATH + path, call, body, params)

    # -- connectors -------------------------------------------------------------------------
    def list_connectors(self, connector_type: str | None = SLACK) -> list[dict[str, Any]]:
        """Every connector (of the type), in one call: the v5 list is not paginated."""
        call = Call("list Notification Center connectors", CONNECTORS_READ, "no Notification Center API here")
        params = {"connector_type": connector_type} if connector_type else None
        doc = self._call("GET", "/connectors", call, params=params)
        return _objects(doc.get("connectors", []), "connectors")

    def get_connector(self, connector_id: str) -> dict[str, Any]:
        call = Call(f"read connector {connector_id}", CONNECTORS_READ,
                    f"no connector {connector_id} in Notification Center")  # fmt: skip
        return _connector(self._call("GET", f"/connectors/{_seg(connector_id)}", call))

    def create_connector(self, body: dict[str, Any]) -> dict[str, Any]:
        what = body.get("id") or body.get("name")
        call = Call(f"create connector {what}", CONNECTORS_WRITE, "no Notification Center API here",
                    idempotent=False)  # fmt: skip
        return _connector(self._call("POST", "/connectors", call, {"connector": body}))

    def replace_connector(self, body: dict[str, Any]) -> dict[str, Any]:
        """PUT: the whole connector is replaced by `body` (a full replace is safe to retry)."""
        ident = body.get("id")
        call = Call(
            f"replace connector {ident}", CONNECTORS_WRITE, f"no connector {ident} in Notification Center"
        )
        return _connector(self._call("PUT", "/connectors", call, {"connector": body}))

    def delete_connector(self, connector_id: str) -> None:
        call = Call(f"delete connector {connector_id}", CONNECTORS_WRITE,
                    f"no connector {connector_id} in Notification Center")  # fmt: skip
        self._call("DELETE", f"/connectors/{_seg(connector_id)}", call)

    # -- tests: each sends a real notification, so none is ever retried after it was sent ----
    def test_connector(self, connector_id: str, payload_type: str = "default") -> TestOutcome:
        call = Call(f"send a test notification through connector {connector_id}", CONNECTORS_READ,
                    f"no connector {connector_id} in Notification Center", idempotent=False)  # fmt: skip
        body = {"connectorId": connector_id, "payloadType": payload_type}
        return _outcome(self._call("POST", "/connectors:test", call, body))

    def test_config(self, fields: Sequence[dict[str, Any]], *, entity_type: str = "TEST_NOTIFICATIONS",
                    payload_type: str = "default") -> TestOutcome:  # fmt: skip
        """Test a Slack configuration that is not saved (the migration's pre-test)."""
        call = Call("test a connector configuration", CONNECTORS_READ, "no Notification Center API here",
                    idempotent=False)  # fmt: skip
        body = {"type": SLACK, "entityType": entity_type, "fields": list(fields), "payloadType": payload_type}
        return _outcome(self._call("POST", "/connectors:testConfig", call, body))

    # -- global routers ---------------------------------------------------------------------
    def list_routers(self) -> list[dict[str, Any]]:
        call = Call("list Notification Center routers", ROUTERS_READ, "no Notification Center API here")
        return _objects(self._call("GET", "/routers", call).get("routers", []), "routers")


def _seg(value: str) -> str:
    return quote(value, safe="")


def _bad(what: str) -> CxError:
    return CxError("coralogix_bad_response", f"Coralogix sent {what} cxslack cannot read")


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _bad(f"a list of {what}")
    return value


def _connector(doc: dict[str, Any]) -> dict[str, Any]:
    body = doc.get("connector")
    if not isinstance(body, dict):
        raise _bad("no connector")
    return body


def _outcome(doc: dict[str, Any]) -> TestOutcome:
    result = doc.get("result")
    if isinstance(result, dict) and isinstance(result.get("success"), dict):
        metadata = result["success"].get("metadata")
        return TestOutcome(True, metadata=metadata if isinstance(metadata, dict) else {})
    if isinstance(result, dict) and isinstance(result.get("failure"), dict):
        failure = result["failure"]
        code = failure.get("statusCode")
        try:  # int64 travels as a string in protobuf JSON
            status = int(code) if code is not None else None
        except (TypeError, ValueError):
            status = None
        return TestOutcome(False, str(failure.get("message") or ""), status)
    raise _bad("a test result that is neither success nor failure")
