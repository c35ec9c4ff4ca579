"""Coralogix Notification Center and Integrations on the sandbox, in the published v5 shapes.

Served on the sandbox's port under `/mgmt/openapi/5`, next to the Cases API (coralogix.py), with
the same keys (CX_API_KEY=CORALOGIX_API_KEY) and the same traffic layer, so latency and faults
reach these calls too (`coralogix.nc.connectors.replace`, … see the handlers' method names).

The rules it enforces, each with its source:

| rule | source |
|---|---|
| bodies are `{"connector": {…}}`; PUT carries the id in the body and replaces the whole connector | notification-center.yaml (Create/Replace Connector Request); reference: "PUT replaces the whole object" |
| connector id 1–128 chars `^[a-zA-Z0-9][a-zA-Z0-9_-]*$`, name 1–200, description ≤ 5000 | reference (coralogix-notification-center.md); yaml `maxLength` |
| `type` is a ConnectorType, `entityType` an EntityType (plus the newer OLLY_SCHEDULED_TASKS); both accepted bare or prefixed (CONNECTOR_TYPE_SLACK), answered bare | yaml enums; reference: "accept both on input" |
| a Slack connector has `integrationId`, `channel` and `fallbackChannel`; `channel` is the only field an override may set, by `template` | reference ("fallbackChannel: required", "the only field that may be overridden") |
| `integrationId` names a deployed Slack integration | product page: the connector's Integration field selects an integration |
| `createTime`, `updateTime`, `teamId` are the server's: ignored on input, `updateTime` moves on every write | yaml (output fields); reference: "compare updateTime before replacing" |
| fields outside this excerpt are kept as sent (a newer Coralogix knows fields the excerpt does not) | reference: "newer: OLLY_SCHEDULED_TASKS" |
| unknown connector or router → 404, an id that exists on POST → 409 | gRPC-gateway NOT_FOUND / ALREADY_EXISTS |
| `GET /connectors/all/list` takes `connector_ids` repeated in the query and answers `{"connectors": {id: Connector}, "notFoundIds": […]}` | yaml BatchGetConnectors |
| `GET /connectors` takes `connector_type` and `supported_by_entity_type`, `GET /routers` takes `entity_type` (a router of that type, or with a rule of it); each an enum value, bare or prefixed, anything else a 400 | yaml ListConnectors / ListGlobalRouters query parameters |
| `connectors:test` / `:testConfig` answer `{"result": {"success": {"metadata"}}}` or `{"result": {"failure": {"message", "statusCode"}}}`; delivery goes to `channel`, then `fallbackChannel` | yaml TestResult; reference (delivery rule) |
| the Integrations list names definitions; `…/v1/{id}` lists deployed instances with `integrationStatus.connectionStatus` PENDING/ACTIVE/FAILING/STATUS_UNKNOWN; `…/v1/deployed/{integration_id}` answers one instance (`{"integration": DeployedIntegrationInformation}`), 404 for an unknown one | alerts-integrations.yaml (GetIntegrations, GetIntegrationDetails, GetDeployedIntegration) |
| removing an integration removes its connectors (router rules that targeted them dangle) | product page ("Manage your integrations"); reference ("silently stops every rule") |
| the read-only key has `case:Read` only, the NC read-only key the three `…:ReadConfig` permissions: 403 otherwise | Coralogix permissions (Notification Center → Permissions; product page prerequisites) |

Admin routes under `/_sandbox/coralogix/`: `integrations` (GET list, POST deploy one),
`integrations/status`, `integrations/remove`, `nc/connectors` (GET all, POST save one as a
person in the UI would), `nc/routers` (POST save one), `nc/test-failures` (the next
`connectors:test` of a connector fails), `nc/log` (every write and test call: `create`, `replace`, `delete`, `test`, `testConfig`
through the API, `ui-save` through the admin route), `nc/reset`.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cxslack.sandbox.coralogix import (
    CORALOGIX_ADMIN_PREFIX,
    CORALOGIX_API_KEY,
    CORALOGIX_READONLY_API_KEY,
    NOT_FOUND,
    READONLY_PERMISSIONS,
    Grants,
    admit,
    grpc_error,
    invalid_argument,
    rfc3339,
)
from cxslack.sandbox.wire import AdminError, BadRequest, Body, Request, Response, Router, json_route
from cxslack.sandbox.workspace import BOT_ID, BOT_USER_ID, Message

if TYPE_CHECKING:
    from cxslack.sandbox.server import SlackSandbox

NC_PREFIX = "/mgmt/openapi/5/notifications/notification-center/v1"
INTEGRATIONS_PREFIX = "/mgmt/openapi/5/integrations/integrations/v1"
CORALOGIX_NC_READONLY_KEY = "sandbox-coralogix-nc-readonly-key"
ALREADY_EXISTS = 6  # gRPC status code
TEAM_ID = 4711
SLACK_DEFINITION_ID = "slack-app"  # Coralogix's to choose; cxslack finds it by name

CONNECTORS_READ = "notification-center-connectors:ReadConfig"
CONNECTORS_WRITE = "notification-center-connectors:UpdateConfig"
ROUTERS_READ = "notification-center-routers:ReadConfig"
INTEGRATIONS_READ = "integrations:ReadConfig"
KEY_PERMISSIONS: Grants = {
    CORALOGIX_API_KEY: None,  # every permission
    CORALOGIX_READONLY_API_KEY: READONLY_PERMISSIONS,
    CORALOGIX_NC_READONLY_KEY: frozenset({CONNECTORS_READ, ROUTERS_READ, INTEGRATIONS_READ}),
}

CONNECTOR_TYPES = ("SLACK", "GENERIC_HTTPS", "PAGERDUTY", "IBM_EVENT_NOTIFICATIONS", "SERVICE_NOW", "EMAIL",
                   "PAGERDUTY_INCIDENTS")  # fmt: skip
ENTITY_TYPES = ("ALERTS", "TEST_NOTIFICATIONS", "CASES", "OLLY_SCHEDULED_TASKS")
DELIVERY = ("DELIVERY_UNSPECIFIED", "DISABLED", "ERRORS_ONLY")
CONNECTION_STATUSES = ("PENDING", "ACTIVE", "FAILING", "STATUS_UNKNOWN")
SLACK_FIELDS = ("integrationId", "channel", "fallbackChannel")
SERVER_FIELDS = ("createTime", "updateTime", "teamId")
_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")
_VERSION = re.compile(r"\d{1,4}\.\d{1,4}\.\d{1,4}")
# Integration definitions the account can deploy; Slack is found by name, not by this id.
DEFINITIONS = (
    ("aws-sqs", "AWS SQS", ["1.0.0"]),
    ("generic-webhook", "Generic Webhook", ["1.0.0"]),
    (SLACK_DEFINITION_ID, "Slack", ["0.0.8", "0.0.9", "0.1.0"]),
    ("pagerduty", "PagerDuty", ["1.2.0"]),
)


def _enum(value: Any, prefix: str, allowed: tuple[str, ...], what: str) -> str:
    bare = value.removeprefix(prefix) if isinstance(value, str) else None
    if bare not in allowed:
        raise BadRequest("invalid_argument", f"{what} {value!r} is not one of {', '.join(allowed)}")
    return bare


@dataclass(frozen=True)
class Route:
    method: str  # the traffic-layer name faults target
    permission: str
    handle: Callable[[Request, str | None], Response]


class NotificationCenterApi:
    """Connectors, routers and deployed Slack integrations, behind one lock."""

    def __init__(self, sandbox: SlackSandbox):
        self.sandbox = sandbox
        self.lock = threading.Lock()
        # (verb, resource, has an id) → route; resource is what follows the NC prefix
        self.nc_routes: dict[tuple[str, str, bool], Route] = {
            ("GET", "connectors", False): Route("coralogix.nc.connectors.list", CONNECTORS_READ, self._list),
            ("POST", "connectors", False): Route("coralogix.nc.connectors.create", CONNECTORS_WRITE, self._create),
            ("PUT", "connectors", False): Route("coralogix.nc.connectors.replace", CONNECTORS_WRITE, self._replace),
            ("GET", "connectors", True): Route("coralogix.nc.connectors.get", CONNECTORS_READ, self._get),
            ("DELETE", "connectors", True): Route("coralogix.nc.connectors.delete", CONNECTORS_WRITE, self._delete),
            ("POST", "connectors:test", False): Route("coralogix.nc.connectors.test", CONNECTORS_READ, self._test),
            ("POST", "connectors:testConfig", False): Route("coralogix.nc.connectors.test_config", CONNECTORS_READ,
                                                            self._test_config),
            ("GET", "routers", False): Route("coralogix.nc.routers.list", ROUTERS_READ, self._routers),
            ("GET", "routers", True): Route("coralogix.nc.routers.get", ROUTERS_READ, self._router),
        }  # fmt: skip
        self.integration_routes: dict[bool, Route] = {
            False: Route("coralogix.integrations.list", INTEGRATIONS_READ, self._definitions),
            True: Route("coralogix.integrations.get", INTEGRATIONS_READ, self._definition),
        }
        self.batch_route = Route("coralogix.nc.connectors.batch_get", CONNECTORS_READ, self._batch_get)
        self.deployed_route = Route("coralogix.integrations.deployed", INTEGRATIONS_READ, self._deployed)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.connectors: dict[str, dict[str, Any]] = {}
            self.routers: dict[str, dict[str, Any]] = {}
            self.instances: dict[str, dict[str, Any]] = {}
            self.log: list[dict[str, Any]] = []
            self.test_failures: dict[
                str, dict[str, Any]
            ] = {}  # connector → its next connectors:test's failure
            self._last_stamp = 0.0

    def register(self, router: Router) -> None:
        for verb in ("GET", "POST", "PUT", "DELETE"):
            router.add(verb, NC_PREFIX, self._nc)
        router.add("GET", INTEGRATIONS_PREFIX, self._integrations)
        admin: list[tuple[str, str, Callable[[Body], Body]]] = [
            ("GET", "integrations", lambda body: {"integrations": self._copy(list(self.instances.values()))}),
            ("POST", "integrations", self.admin_deploy),
            ("POST", "integrations/status", self.admin_status),
            ("POST", "integrations/remove", self.admin_remove),
            ("GET", "nc/connectors", lambda body: {"connectors": self._copy(list(self.connectors.values()))}),
            ("POST", "nc/connectors", self.admin_save_connector),
            ("POST", "nc/routers", self.admin_save_router),
            ("POST", "nc/test-failures", self.admin_test_failure),
            ("GET", "nc/log", lambda body: {"log": self._copy(self.log)}),
            ("POST", "nc/reset", self.admin_reset),
        ]
        for verb, name, action in admin:
            router.add(verb, CORALOGIX_ADMIN_PREFIX + name, json_route(verb, action))

    # -- plumbing ---------------------------------------------------------------------------
    def _copy(self, value: Any) -> Any:
        with self.lock:
            return copy.deepcopy(value)

    def _serve(self, route: Route, request: Request, ident: str | None) -> Response:
        refused = admit(self.sandbox, request, route.method, route.permission, KEY_PERMISSIONS)
        if refused is not None:
            return refused
        with self.lock:
            try:
                return route.handle(request, ident)
            except BadRequest as exc:
                return invalid_argument(exc)

    def _nc(self, request: Request) -> Response:
        rest = request.path.removeprefix(NC_PREFIX).strip("/")
        if (request.verb, rest) == ("GET", "connectors/all/list"):
            return self._serve(self.batch_route, request, None)
        resource, _, ident = rest.partition("/")
        route = self.nc_routes.get((request.verb, resource, bool(ident)))
        if route is None or "/" in ident:
            return grpc_error(404, NOT_FOUND, f"no such endpoint: {request.verb} {request.path}")
        return self._serve(route, request, ident or None)

    def _integrations(self, request: Request) -> Response:
        ident = request.path.removeprefix(INTEGRATIONS_PREFIX).strip("/")
        deployed = ident.startswith("deployed/")
        if deployed:
            ident = ident.removeprefix("deployed/")
        if "/" in ident or (deployed and not ident):
            return grpc_error(404, NOT_FOUND, f"no such endpoint: {request.verb} {request.path}")
        route = self.deployed_route if deployed else self.integration_routes[bool(ident)]
        return self._serve(route, request, ident or None)

    def _deployed(self, request: Request, ident: str | None) -> Response:
        """GetDeployedIntegration: one instance as DeployedIntegrationInformation."""
        found = self.instances.get(ident or "")
        if found is None:
            return grpc_error(404, NOT_FOUND, f"deployed integration {ident} not found")
        info = {"id": found["id"], "definitionKey": SLACK_DEFINITION_ID, "definitionVersion": found["definitionVersion"],
                "integrationStatus": copy.deepcopy(found["integrationStatus"]), "parameters": list(found["parameters"])}  # fmt: skip
        return Response.json(200, {"integration": info})

    def _stamp(self) -> str:
        """A new updateTime: the sandbox clock, always later than the previous one (ms)."""
        now = max(self.sandbox.clock.time(), self._last_stamp + 0.001)
        self._last_stamp = now
        return rfc3339(now)

    # -- connectors -------------------------------------------------------------------------
    def _list(self, request: Request, _: str | None) -> Response:
        query = request.query_params()
        wanted = query.get("connector_type")
        kind = _enum(wanted, "CONNECTOR_TYPE_", CONNECTOR_TYPES, "connector_type") if wanted else None
        if query.get("supported_by_entity_type"):  # every connector type serves every entity type here
            _enum(query["supported_by_entity_type"], "ENTITY_TYPE_", ENTITY_TYPES, "supported_by_entity_type")
        found = [c for c in self.connectors.values() if kind is None or c["type"] == kind]
        return Response.json(200, {"connectors": found})

    def _batch_get(self, request: Request, _: str | None) -> Response:
        """BatchGetConnectors: `connector_ids` repeated in the query → {connectors: {id: Connector},
        notFoundIds}."""
        wanted = request.query_list("connector_ids")
        found = {i: self.connectors[i] for i in wanted if i in self.connectors}
        missing = list(dict.fromkeys(i for i in wanted if i not in self.connectors))
        return Response.json(200, {"connectors": found, "notFoundIds": missing})

    def _get(self, request: Request, ident: str | None) -> Response:
        found = self.connectors.get(ident or "")
        if found is None:
            return grpc_error(404, NOT_FOUND, f"connector {ident} not found")
        return Response.json(200, {"connector": found})

    def _create(self, request: Request, _: str | None) -> Response:
        body = self._checked(request.json_object(), id_required=False)
        if body["id"] in self.connectors:
            return grpc_error(409, ALREADY_EXISTS, f"connector {body['id']} already exists")
        return Response.json(200, {"connector": self._save(body, "create")})

    def _replace(self, request: Request, _: str | None) -> Response:
        body = self._checked(request.json_object(), id_required=True)
        if body["id"] not in self.connectors:
            return grpc_error(404, NOT_FOUND, f"connector {body['id']} not found")
        return Response.json(200, {"connector": self._save(body, "replace")})

    def _delete(self, request: Request, ident: str | None) -> Response:
        before = self.connectors.pop(ident or "", None)
        if before is None:
            return grpc_error(404, NOT_FOUND, f"connector {ident} not found")
        self.log.append({"call": "delete", "connectorId": ident, "before": before, "after": None})
        return Response.json(200, {})

    def _save(self, body: dict[str, Any], call: str) -> dict[str, Any]:
        before = self.connectors.get(body["id"])
        stamp = self._stamp()
        body["createTime"] = before["createTime"] if before else stamp
        body["updateTime"] = stamp
        body["teamId"] = TEAM_ID
        self.connectors[body["id"]] = body
        self.log.append({"call": call, "connectorId": body["id"], "before": copy.deepcopy(before),
                         "after": copy.deepcopy(body)})  # fmt: skip
        return body

    def _checked(self, doc: dict[str, Any], *, id_required: bool) -> dict[str, Any]:
        """The connector of a create/replace request, validated, enums made bare."""
        body = doc.get("connector")
        if not isinstance(body, dict):
            raise BadRequest("invalid_argument", 'the body must be {"connector": {...}}')
        body = {k: copy.deepcopy(v) for k, v in body.items() if k not in SERVER_FIELDS}
        ident = body.get("id")
        if ident is None and not id_required:
            ident = body["id"] = str(uuid.uuid4())
        if not isinstance(ident, str) or not _ID.fullmatch(ident) or len(ident) > 128:
            raise BadRequest("invalid_argument", "connector.id must be 1-128 characters of [a-zA-Z0-9_-], "
                             "starting with a letter or digit")  # fmt: skip
        name, description = body.get("name"), body.get("description", "")
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise BadRequest("invalid_argument", "connector.name must be 1-200 characters")
        if not isinstance(description, str) or len(description) > 5000:
            raise BadRequest("invalid_argument", "connector.description must be at most 5000 characters")
        body["type"] = _enum(body.get("type"), "CONNECTOR_TYPE_", CONNECTOR_TYPES, "connector.type")
        fields = _config_fields(body)
        overrides = body.get("configOverrides", [])
        if not isinstance(overrides, list) or not all(isinstance(o, dict) for o in overrides):
            raise BadRequest("invalid_argument", "connector.configOverrides must be a list of objects")
        for override in overrides:
            override["entityType"] = _enum(override.get("entityType"), "ENTITY_TYPE_", ENTITY_TYPES,
                                           "configOverrides.entityType")  # fmt: skip
            items = override.get("fields", [])
            if not isinstance(items, list) or not all(
                isinstance(f, dict)
                and isinstance(f.get("fieldName"), str)
                and isinstance(f.get("template"), str)
                for f in items
            ):
                raise BadRequest(
                    "invalid_argument", "configOverrides.fields are {fieldName, template} strings"
                )
            if body["type"] == "SLACK" and any(f["fieldName"] != "channel" for f in items):
                raise BadRequest("invalid_argument", "a Slack connector may only override channel")
        diagnostics = body.get("diagnostics")
        if diagnostics is not None and (
            not isinstance(diagnostics, dict) or diagnostics.get("delivery", DELIVERY[0]) not in DELIVERY
        ):
            raise BadRequest("invalid_argument", f"diagnostics.delivery must be one of {', '.join(DELIVERY)}")
        if body["type"] == "SLACK":
            missing = [f for f in SLACK_FIELDS if not fields.get(f)]
            if missing:
                raise BadRequest("invalid_argument", f"a Slack connector needs {', '.join(missing)}")
            if fields["integrationId"] not in self.instances:
                raise BadRequest("invalid_argument",
                                 f"integrationId {fields['integrationId']} is no deployed Slack integration")  # fmt: skip
        return body

    # -- test notifications -----------------------------------------------------------------
    def _test(self, request: Request, _: str | None) -> Response:
        doc = request.json_object()
        ident = doc.get("connectorId")
        connector = self.connectors.get(ident) if isinstance(ident, str) else None
        if connector is None:
            return grpc_error(404, NOT_FOUND, f"connector {ident} not found")
        fields = _config_fields(connector)
        failure = self.test_failures.pop(str(ident), None)
        result = (
            {"failure": failure}
            if failure
            else self._deliver(fields, f"connector {connector['name']} ({ident})")
        )
        self.log.append({"call": "test", "connectorId": ident, "result": result})
        return Response.json(200, {"result": result})

    def _test_config(self, request: Request, _: str | None) -> Response:
        doc = request.json_object()
        _enum(doc.get("type"), "CONNECTOR_TYPE_", ("SLACK",), "type")
        if "entityType" in doc:
            _enum(doc["entityType"], "ENTITY_TYPE_", ENTITY_TYPES, "entityType")
        fields = _config_fields({"connectorConfig": {"fields": doc.get("fields", [])}})
        missing = [f for f in SLACK_FIELDS if not fields.get(f)]
        if missing:
            raise BadRequest("invalid_argument", f"a Slack configuration needs {', '.join(missing)}")
        result = self._deliver(fields, "an unsaved connector configuration")
        self.log.append({"call": "testConfig", "fields": fields, "result": result})
        return Response.json(200, {"result": result})

    def _deliver(self, fields: dict[str, str], what: str) -> dict[str, Any]:
        """Post a test notification through the integration: `channel`, else `fallbackChannel`."""
        instance = self.instances.get(fields.get("integrationId", ""))
        if instance is None:
            return {
                "failure": {
                    "message": f"integration {fields.get('integrationId')} not found",
                    "statusCode": 404,
                }
            }
        status = instance["integrationStatus"]
        if status["connectionStatus"] != "ACTIVE":
            reason = "; ".join(status.get("messages") or []) or status["connectionStatus"].lower()
            return {"failure": {"message": f"the Slack integration is {status['connectionStatus']}: {reason}",
                                "statusCode": 401}}  # fmt: skip
        ws = self.sandbox.workspace
        problems = []
        with ws.lock:
            for role in ("channel", "fallbackChannel"):
                channel = ws.channel(fields.get(role))
                problem = (
                    "channel_not_found" if channel is None
                    else "is_archived" if channel.is_archived
                    else "not_in_channel" if channel.is_private and not channel.bot_member
                    else None
                )  # fmt: skip
                if problem is not None:
                    problems.append(f"{role} {fields.get(role)}: {problem}")
                    continue
                assert channel is not None
                text = f"Test notification from Coralogix Notification Center: {what}"
                message = Message(ts=ws.next_ts(), text=text, user=BOT_USER_ID, bot_id=BOT_ID)
                ws.add_message(channel, message)
                metadata = {"channel": channel.name, "channelId": channel.id, "ts": message.ts,
                            "fallbackUsed": str(role == "fallbackChannel").lower()}  # fmt: skip
                return {"success": {"metadata": metadata}}
        return {"failure": {"message": "; ".join(problems), "statusCode": 404}}

    # -- routers ----------------------------------------------------------------------------
    def _routers(self, request: Request, _: str | None) -> Response:
        wanted = request.query_params().get("entity_type")
        kind = _enum(wanted, "ENTITY_TYPE_", ENTITY_TYPES, "entity_type") if wanted else None

        def of_kind(router: dict[str, Any]) -> bool:
            types = [router.get("entityType"), *(r.get("entityType") for r in router.get("rules") or [])]
            return any(isinstance(t, str) and t.removeprefix("ENTITY_TYPE_") == kind for t in types)

        found = [r for r in self.routers.values() if kind is None or of_kind(r)]
        return Response.json(200, {"routers": found})

    def _router(self, request: Request, ident: str | None) -> Response:
        found = self.routers.get(ident or "")
        if found is None:
            return grpc_error(404, NOT_FOUND, f"router {ident} not found")
        return Response.json(200, {"router": found})

    # -- integrations -----------------------------------------------------------------------
    def _definitions(self, request: Request, _: str | None) -> Response:
        slack = [i for i in self.instances.values() if not i["isTesting"]]
        entries = [
            {"integration": _definition(ident, name, versions),
             "amountIntegrations": len(slack) if ident == SLACK_DEFINITION_ID else 0,
             "errors": [], "isDeprecated": False, "isNew": ident == SLACK_DEFINITION_ID,
             "upgradeAvailable": False}
            for ident, name, versions in DEFINITIONS
        ]  # fmt: skip
        return Response.json(200, {"integrations": entries})

    def _definition(self, request: Request, ident: str | None) -> Response:
        found = next((d for d in DEFINITIONS if d[0] == ident), None)
        if found is None:
            return grpc_error(404, NOT_FOUND, f"integration {ident} not found")
        registered = list(self.instances.values()) if ident == SLACK_DEFINITION_ID else []
        detail = {
            "integration": _definition(*found),
            "local": {"changes": [{"version": v, "descriptionMd": ""} for v in found[2]]},
            "default": {"registered": registered},
            "docs": [],
            "extensions": [],
        }
        return Response.json(200, {"integrationDetail": detail})

    # -- admin: Coralogix's side ------------------------------------------------------------
    def admin_reset(self, body: Body) -> Body:
        """No connectors, routers or deployed integrations (the Cases side has its own reset)."""
        self.reset()
        return {}

    def admin_deploy(self, body: Body) -> Body:
        """Deploy a Slack integration instance: `version`, optional `id`, `status`, `messages`."""
        version, ident = body.get("version", "0.1.0"), body.get("id") or str(uuid.uuid4())
        if not isinstance(version, str) or not _VERSION.fullmatch(version) or not isinstance(ident, str):
            raise AdminError(400, "invalid_arguments", "version is like 0.1.0; id is a string")
        with self.lock:
            if ident in self.instances:
                raise AdminError(409, "exists", f"integration {ident} exists")
            self.instances[ident] = {
                "id": ident, "definitionVersion": version, "isTesting": False, "parameters": [], "empty": {},
                "integrationStatus": {"connectionStatus": "ACTIVE", "details": {}, "messages": []},
                "lastUpdated": self._stamp(),
            }  # fmt: skip
            self._set_status(ident, body)
            return {"integration": copy.deepcopy(self.instances[ident])}

    def admin_status(self, body: Body) -> Body:
        """Change an instance's connection status (`id`, `status`, optional `messages`)."""
        with self.lock:
            if body.get("id") not in self.instances:
                raise AdminError(404, "integration_not_found", f"no integration {body.get('id')!r}")
            self._set_status(str(body["id"]), body)
            return {"integration": copy.deepcopy(self.instances[str(body["id"])])}

    def _set_status(self, ident: str, body: Body) -> None:
        status, messages = body.get("status", "ACTIVE"), body.get("messages", [])
        if status not in CONNECTION_STATUSES or not isinstance(messages, list):
            raise AdminError(400, "invalid_arguments", f"status is one of {', '.join(CONNECTION_STATUSES)}")
        instance = self.instances[ident]
        instance["integrationStatus"] = {
            "connectionStatus": status,
            "details": {},
            "messages": [str(m) for m in messages],
        }
        instance["lastUpdated"] = self._stamp()

    def admin_remove(self, body: Body) -> Body:
        """Remove an instance and, as Coralogix does, every connector that references it."""
        with self.lock:
            ident = body.get("id")
            if self.instances.pop(str(ident), None) is None:
                raise AdminError(404, "integration_not_found", f"no integration {ident!r}")
            gone = [
                c for c, doc in self.connectors.items() if _config_fields(doc).get("integrationId") == ident
            ]
            for connector in gone:
                self.log.append({"call": "delete", "connectorId": connector, "before": self.connectors.pop(connector),
                                 "after": None})  # fmt: skip
            return {"removed_connectors": gone}

    def admin_save_connector(self, body: Body) -> Body:
        """Save a connector as a person in Coralogix's UI would: create it or replace it whole."""
        with self.lock:
            try:
                checked = self._checked(body, id_required=False)
            except BadRequest as exc:
                raise AdminError(400, "invalid_arguments", exc.detail) from None
            return {"connector": copy.deepcopy(self._save(checked, "ui-save"))}

    def admin_test_failure(self, body: Body) -> Body:
        """The next `connectors:test` of `connectorId` fails with `message` (a problem only a real
        delivery finds, such as Slack refusing the new app in that channel)."""
        ident, message = body.get("connectorId"), body.get("message", "channel_not_found")
        if not isinstance(ident, str) or not isinstance(message, str):
            raise AdminError(400, "invalid_arguments", "connectorId and message are strings")
        with self.lock:
            self.test_failures[ident] = {"message": message, "statusCode": int(body.get("statusCode", 404))}
        return {}

    def admin_save_router(self, body: Body) -> Body:
        """Save a global router `{"router": {id?, name, rules: [{name, targets: [{connectorId}]}]}}`."""
        router = body.get("router")
        if not isinstance(router, dict) or not isinstance(router.get("name"), str):
            raise AdminError(400, "invalid_arguments", 'expected {"router": {"name": …, "rules": […]}}')
        rules = router.get("rules", [])
        targets = [t for r in rules if isinstance(r, dict) for t in r.get("targets", [])]
        if not isinstance(rules, list) or not all(isinstance(t, dict) and isinstance(t.get("connectorId"), str)
                                                  for t in targets):  # fmt: skip
            raise AdminError(400, "invalid_arguments", "rules[].targets[] are {connectorId, presetId}")
        with self.lock:
            router = copy.deepcopy(router)
            router.setdefault("id", str(uuid.uuid4()))
            before = self.routers.get(router["id"])
            stamp = self._stamp()
            router.update(createTime=before["createTime"] if before else stamp, updateTime=stamp)
            self.routers[router["id"]] = router
            return {"router": copy.deepcopy(router)}


def _config_fields(body: dict[str, Any]) -> dict[str, str]:
    """connectorConfig.fields as {fieldName: value}; a malformed list is a 400."""
    config = body.get("connectorConfig", {})
    items = config.get("fields", []) if isinstance(config, dict) else None
    if not isinstance(items, list) or not all(
        isinstance(f, dict) and isinstance(f.get("fieldName"), str) and isinstance(f.get("value", ""), str)
        for f in items
    ):
        raise BadRequest("invalid_argument", "connectorConfig.fields are {fieldName, value} strings")
    return {f["fieldName"]: f.get("value", "") for f in items}


def _definition(ident: str, name: str, versions: list[str]) -> dict[str, Any]:
    return {"id": ident, "name": name, "description": f"{name} integration", "icon": "", "darkIcon": "",
            "tags": [], "versions": versions, "integrationType": {"untracked": {}},
            "revisions": [{"version": v, "lifecycle": "REVISION_LIFECYCLE_GA"} for v in versions]}  # fmt: skip
