"""Coralogix on the sandbox: the Cases API, log ingestion, and admin routes to play Coralogix's side.

Served on the Slack sandbox's port: point CXSLACK_CORALOGIX_API_URL and
CXSLACK_CORALOGIX_INGRESS_URL at `sandbox.url`, with CX_API_KEY=CORALOGIX_API_KEY and
CX_SEND_KEY=CORALOGIX_SEND_KEY. Every call passes through the sandbox's traffic layer under a
method name (`coralogix.cases.get`, …), so the usual fault injection reaches it:
`POST /_sandbox/faults {"kind": "status", "method": "coralogix.cases.get", "status": 503, "count": 2}`.

Shapes are the published OpenAPI v5's (../shared/reference/coralogix-openapi-v5/cases.yaml): a
Case has `assignee` as `cases.v1.UserDetails {userId}`, `labels` as `v1.KeyValue [{key, value}]`,
`priority`/`status` as `CASE_PRIORITY_P1…P5`/`CASE_STATUS_…`; timeline events are `CaseEvent
{eventId, actor, createTime, eventTime, eventData: {comment | statusChanged | …}}`; a comment's
text is `eventData.comment.unsafeText`, and comments are changed and removed with
`PUT`/`DELETE /cases/events/v1/{event_id}/comments`. Errors are Coralogix's gRPC-gateway answers
(`{"code": <gRPC code>, "message", "details"}`). RULES lists what is enforced and where it is written.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from cxslack.sandbox.wire import (
    ADMIN_PREFIX,
    AdminError,
    BadRequest,
    Body,
    Request,
    Response,
    Router,
    json_route,
)

if TYPE_CHECKING:
    from cxslack.sandbox.server import SlackSandbox

CORALOGIX_API_KEY = "sandbox-coralogix-api-key"
CORALOGIX_READONLY_API_KEY = "sandbox-coralogix-readonly-key"  # case:Read only: 403 on writes
CORALOGIX_SEND_KEY = "sandbox-send-key"
# EventActorApiKey: what the timeline shows for changes made with the sandbox's API key
API_KEY_ACTOR = {"apiKey": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, CORALOGIX_API_KEY)), "name": "sandbox"}}
CASES_PREFIX = "/mgmt/openapi/5/cases/cases/v1"
EVENTS_PREFIX = "/mgmt/openapi/5/cases/events/v1"
CASES_YAML = "coralogix-openapi-v5/cases.yaml"
CORALOGIX_ADMIN_PREFIX = ADMIN_PREFIX + "coralogix/"
# Coralogix's REST API /singles (a JSON array of entries) and /bulk (one object with logEntries)
INGEST_ROUTES = {"/logs/v1/singles": "coralogix.logs.singles", "/logs/v1/bulk": "coralogix.logs.bulk"}
MAX_INGEST_BYTES = 2_000_000  # Coralogix's "keep a request under 2 MB", read strictly

CASE_STATUSES = (
    "CASE_STATUS_PENDING_ACTIVATION",
    "CASE_STATUS_ACTIVE",
    "CASE_STATUS_ACKNOWLEDGED",
    "CASE_STATUS_RESOLVED",
    "CASE_STATUS_CLOSED",
)
CASE_PRIORITIES = tuple(f"CASE_PRIORITY_P{n}" for n in range(1, 6))
# (title, CASE_STATUS_…, CASE_PRIORITY_…, labels as key:value, assignee: a team member's username,
# which is the email of one of the Slack sandbox's people)
SEED_CASES: tuple[tuple[str, str, str, tuple[str, ...], str | None], ...] = (
    ("CPU above 90% on checkout-api", "ACTIVE", "P1", ("env:prod", "service:checkout"), "alice@example.com"),
    (
        "Error rate spike in payments",
        "ACKNOWLEDGED",
        "P2",
        ("env:prod", "service:payments"),
        "bob@example.com",
    ),
    ("Disk usage above 80% on db-3", "PENDING_ACTIVATION", "P3", ("team:infra",), None),
    ("Slow queries on search", "RESOLVED", "P4", ("service:search",), "carol@example.com"),
    ("TLS certificate expires in 7 days", "CLOSED", "P5", (), "dave@example.com"),
)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# cases.yaml's pattern and maxLength of every Case id parameter (case_id, id, ids)
CASE_ID = re.compile(UUID.pattern + r"|[A-Z]+-[0-9]+")
CASE_ID_MAX = 64
# gRPC status codes, which Coralogix's REST answers carry in `code`
INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED = 3, 5, 7, 16


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def case_uuid(number: int) -> str:
    """Seeded Cases keep the same UUID across runs, so tests and docs can name them."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://sandbox.cxslack.invalid/cases/{number}"))


def member_id(username: str) -> str:
    """A team member's userId; seeded members keep the same one across runs, so tests and docs can
    name them (team-members.yaml rbac.v2.User.userId, the id cases.v1.UserDetails carries)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://sandbox.cxslack.invalid/users/{username.lower()}"))


def grpc_error(status: int, code: int, message: str) -> Response:
    """Coralogix's gRPC-gateway error answer."""
    return Response.json(status, {"code": code, "message": message, "details": []})


# the gRPC code grpc-gateway answers with each HTTP status (its runtime.HTTPStatusFromCode, read backwards)
_GRPC_OF_HTTP = {400: INVALID_ARGUMENT, 401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 404: NOT_FOUND,
                 409: 6, 412: 9, 429: 8, 499: 1, 500: 13, 501: 12, 503: 14, 504: 4}  # fmt: skip


def as_grpc_error(response: Response) -> Response:
    """An injected fault on a Coralogix route answered as Coralogix would: the same status and headers
    (Retry-After), with the gRPC-gateway body `{code, message, details}` instead of Slack's."""
    if response.drop or response.status < 400:
        return response
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = f"HTTP {response.status}"
    body = {"code": _GRPC_OF_HTTP.get(response.status, 2), "message": phrase, "details": []}
    return Response.json(response.status, body, response.headers)


class Refused(Exception):
    """A Coralogix-side refusal, answered with `response`."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.response = grpc_error(status, code, message)


def invalid_argument(exc: BadRequest) -> Response:
    return grpc_error(400, INVALID_ARGUMENT, exc.detail or exc.error)


# The keys one API accepts → the permissions of each key's role (None: every permission).
Grants = Mapping[str, Collection[str] | None]
READONLY_PERMISSIONS = frozenset({"case:Read"})
KEY_GRANTS: Grants = {CORALOGIX_API_KEY: None, CORALOGIX_READONLY_API_KEY: READONLY_PERMISSIONS}


def admit(sandbox: SlackSandbox, request: Request, method: str, permission: str | None,
          grants: Grants) -> Response | None:  # fmt: skip
    """The traffic layer (faults, latency), then the API key: 401 UNAUTHENTICATED for a key the
    API does not know, 403 PERMISSION_DENIED when its role lacks `permission` (None: any known
    key will do). Returns the answer that stops the call, if any."""
    stopped = sandbox.traffic.gate(method)
    if stopped is not None:
        return as_grpc_error(stopped)
    key = request.bearer_token()
    if key is None or key not in grants:
        return grpc_error(401, UNAUTHENTICATED, "missing or invalid API key")
    granted = grants[key]
    if permission is not None and granted is not None and permission not in granted:
        return grpc_error(403, PERMISSION_DENIED, f"the API key lacks permission {permission}")
    return None


@dataclass(frozen=True)
class Rule:
    what: str
    source: str


# What the Cases and Case events endpoints refuse, and where Coralogix's published API says so.
RULES: tuple[Rule, ...] = (
    Rule("a missing or unknown API key: 401 UNAUTHENTICATED", f"{CASES_YAML}: 401 Unauthorized request"),
    Rule("every error, injected faults (429, 5xx) included, has the gRPC-gateway body {code, message, details}",
         f"{CASES_YAML}: error responses; Coralogix's REST API is gRPC-gateway (google.rpc.Status)"),
    Rule("writing (comments) with a key whose role lacks case:Comment, reading without case:Read: 403 "
         "PERMISSION_DENIED (the role is what /_sandbox/coralogix/permissions set)",
         f"{CASES_YAML}: x-coralogixPermissions case:Comment of CreateComment, UpdateComment, DeleteComment; "
         "case:Read of GetCase, ListCases, ListEvents, GetEvent, GetCaseDeepLinks"),
    Rule("a Case id that is neither a UUID nor a readable id, or over 64 characters: 400 INVALID_ARGUMENT",
         f"{CASES_YAML}: the case_id/id pattern ^(uuid|[A-Z]+-[0-9]+)$ and maxLength 64"),
    Rule("a Case that does not exist: 404 NOT_FOUND", f"{CASES_YAML}: 404 Case not found"),
    Rule("a comment without `text`: 400", f"{CASES_YAML}: Create/Update comment event request, required: text"),
    Rule("an attachment that is not exactly one of customWidget/file/log with that variant's required fields: 400",
         f"{CASES_YAML}: CommentAttachment oneOf (CustomDashboardWidgetAttachment, FileAttachment, LogAttachment)"),
    Rule("an event that does not exist: 404 Event not found", f"{CASES_YAML}: GetEvent, UpdateComment, DeleteComment 404"),
    Rule("updating or deleting an event that is not a comment: 400",
         f"{CASES_YAML}: UpdateComment 'modify the content of an existing comment event'"),
    Rule("pagination.pageSize outside 1..1000, skip outside 0..1000000 (int64: a JSON number or a decimal "
         "string, as protobuf JSON reads it) or an unknown pageToken: 400", f"{CASES_YAML}: cases.v1.PaginationRequest"),
    Rule("ListCases filters statuses/priorities/categories (CaseStatus, CasePriority, CaseCategory values: any other "
         "is a 400), labels ([{key, values}]) and textSearch, each narrowing the list; filters it does not know are "
         "ignored", f"{CASES_YAML}: ListCases request `filters` (CaseFilters, FilterGroup)"),
)  # fmt: skip


@dataclass
class Case:
    id: str
    readable_id: str
    title: str
    status: str
    priority: str
    labels: list[tuple[str, str]]  # v1.KeyValue pairs
    assignee: str | None  # the assigned team member's username (the API shows their userId)
    create_time: str
    update_time: str
    events: list[dict[str, Any]] = field(default_factory=list)
    indicators: list[dict[str, Any]] = field(default_factory=list)  # AlertIndicator (sandbox/alerts.py)

    def to_api(self) -> dict[str, Any]:
        """components.schemas.Case, with its required fields."""
        doc: dict[str, Any] = {
            "id": self.id,
            "readableId": self.readable_id,
            "title": self.title,
            "status": self.status,
            "priority": self.priority,
            "priorityDetails": {"system": self.priority},
            "category": "CASE_CATEGORY_AVAILABILITY",
            "labels": [{"key": k, "value": v} for k, v in self.labels],
            "groupings": [],
            "impactedEntities": [],
            "createTime": self.create_time,
            "updateTime": self.update_time,
        }
        if self.assignee:
            doc["assignee"] = {"userId": member_id(self.assignee)}
        if self.indicators:
            doc["caseIndicators"] = {"alertIndicators": list(self.indicators)}
        doc.update(self._lifecycle())
        return doc

    def _lifecycle(self) -> dict[str, Any]:
        """acknowledgeTime and resolutionDetails {resolveTime, reason, resolvedBy}, read off the
        timeline (Case, ResolutionDetails, CaseResolver in cases.yaml): present once they apply."""
        out: dict[str, Any] = {}
        resolved: dict[str, Any] | None = None
        for event in self.events:
            data = event["eventData"]
            new = (data.get("statusChanged") or {}).get("newStatus")
            if new == "CASE_STATUS_ACKNOWLEDGED":
                out["acknowledgeTime"] = event["createTime"]
            elif new == "CASE_STATUS_RESOLVED":
                # CaseResolver: the variant's key with an empty marker object ({"apiKey": {}}, …)
                by = next(iter(event.get("actor") or {"system": {}}), "system")
                resolved = {"resolveTime": event["createTime"],
                            "resolvedBy": {{"user": "cxUser"}.get(by, by): {}}}  # fmt: skip
            elif new in ("CASE_STATUS_ACTIVE", "CASE_STATUS_PENDING_ACTIVATION"):
                resolved = None
                out.pop("acknowledgeTime", None)
            reason = (data.get("resolutionReasonChangedEvent") or {}).get("to")
            if resolved is not None and reason:
                resolved["reason"] = reason
        if resolved is not None and self.status in ("CASE_STATUS_RESOLVED", "CASE_STATUS_CLOSED"):
            out["resolutionDetails"] = resolved
        return out


@dataclass(frozen=True)
class Route:
    method: str  # the traffic-layer name faults target
    write: bool  # needs case:Comment (the read-only key gets 403)
    handle: Callable[[Request, Case | None], Response]


class CoralogixApi:
    """Seeded Cases and their timelines, received logs and sync requests, behind one lock."""

    def __init__(self, sandbox: SlackSandbox):
        self.sandbox = sandbox
        self.lock = threading.Lock()
        # (verb, what follows the Case id: "" for the Case itself, None for the collection) → route
        self.routes: dict[tuple[str, str | None], Route] = {
            ("POST", None): Route("coralogix.cases.list", False, self._list),
            ("GET", ""): Route("coralogix.cases.get", False, self._get),
            ("GET", "deep-links"): Route("coralogix.cases.deep_links", False, self._deep_links),
            ("GET", "events"): Route("coralogix.cases.events", False, self._events),
            ("POST", "comments"): Route("coralogix.cases.comment", True, self._comment),
            ("POST", "sync-external-thread-comments"): Route("coralogix.cases.sync", True, self._sync),
        }
        self.on_reset: list[Callable[[], None]] = []  # what else seeds Cases (alert indicators)
        # /cases/events/v1/{event_id}[/comments]: (verb, suffix) → (traffic name, write, handler)
        self.event_routes: dict[tuple[str, str], tuple[str, bool, Callable[[Request, Case, dict[str, Any]], Response]]] = {
            ("GET", ""): ("coralogix.events.get", False, self._get_event),
            ("PUT", "comments"): ("coralogix.events.update_comment", True, self._update_comment),
            ("DELETE", "comments"): ("coralogix.events.delete_comment", True, self._delete_comment),
        }  # fmt: skip
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.cases: dict[str, Case] = {}
            self.logs: list[dict[str, Any]] = []
            self.syncs: list[dict[str, Any]] = []
            now = self.sandbox.clock.time()
            for title, status, priority, labels, assignee in SEED_CASES:
                self._create(
                    title,
                    f"CASE_STATUS_{status}",
                    f"CASE_PRIORITY_{priority}",
                    key_values(list(labels)),
                    assignee,
                    created=now - 3600,
                )
        for seed in self.on_reset:
            seed()

    def register(self, router: Router) -> None:
        for verb in ("GET", "POST"):
            router.add(verb, CASES_PREFIX, self._cases_api)
        for verb in ("GET", "PUT", "DELETE"):
            router.add(verb, EVENTS_PREFIX, self._events_api)
        for path in INGEST_ROUTES:
            router.add("POST", path, self._ingest)
        admin: list[tuple[str, str, Callable[[Body], Body]]] = [
            ("GET", "cases", lambda body: {"cases": self._all_cases()}),
            ("POST", "cases", self.admin_create),
            ("POST", "cases/update", self.admin_update),
            ("GET", "comments", self.admin_comments),
            ("GET", "logs", lambda body: {"logs": self._copy(self.logs)}),
            ("GET", "syncs", lambda body: {"syncs": self._copy(self.syncs)}),
            ("POST", "reset", self.admin_reset),
        ]
        for verb, name, action in admin:
            router.add(verb, CORALOGIX_ADMIN_PREFIX + name, json_route(verb, action))

    # -- state (callers hold the lock) ------------------------------------------------------
    def _create(
        self, title: str, status: str, priority: str, labels: list[tuple[str, str]], assignee: str | None,
        created: float,
    ) -> Case:  # fmt: skip
        number = len(self.cases) + 1
        stamp = rfc3339(created)
        case = Case(
            case_uuid(number), f"CASE-{number}", title, status, priority, labels, assignee, stamp, stamp
        )
        case.events.append(self._event({"created": {"priority": priority}}, at=stamp))
        self.cases[case.id] = case
        return case

    def _event(self, data: dict[str, Any], *, actor: Any = None, at: str | None = None) -> dict[str, Any]:
        """A CaseEvent: `data` is its eventData (one key: comment, statusChanged, assigned, …)."""
        stamp = at or rfc3339(self.sandbox.clock.time())
        return {
            "eventId": str(uuid.uuid4()),
            "actor": actor or {"system": {}},
            "createTime": stamp,
            "eventTime": stamp,
            "eventData": data,
        }

    def record(self, case: Case, data: dict[str, Any], actor: Any = None) -> dict[str, Any]:
        """Append an event to the Case's timeline (callers hold the lock)."""
        event = self._event(data, actor=actor)
        case.events.append(event)
        case.update_time = event["createTime"]
        return event

    def change(self, case: Case, name: str, value: Any, actor: Any) -> None:
        """Set one Case field and record the change on the Case's timeline (callers hold the lock)."""
        old = getattr(case, name)
        if old != value:
            setattr(case, name, value)
            data = change_event(name, old, value)
            if data is not None:
                self.record(case, data, actor)

    def _find_event(self, event_id: str) -> tuple[Case, dict[str, Any]] | None:
        for case in self.cases.values():
            for event in case.events:
                if event["eventId"] == event_id:
                    return case, event
        return None

    def _find(self, ref: str) -> Case | None:
        if UUID.fullmatch(ref):
            return self.cases.get(ref)
        return next((c for c in self.cases.values() if c.readable_id == ref), None)

    def case(self, ref: str) -> Case:
        """The Case a Case id parameter names (callers hold the lock); Refused: 400 for an id outside
        the published pattern, 404 for one that does not exist."""
        if len(ref) > CASE_ID_MAX or not CASE_ID.fullmatch(ref):
            raise Refused(400, INVALID_ARGUMENT, f"invalid case id {ref!r}")
        case = self._find(ref)
        if case is None:
            raise Refused(404, NOT_FOUND, f"case {ref} not found")
        return case

    def _all_cases(self) -> list[dict[str, Any]]:
        with self.lock:
            return [case.to_api() for case in self.cases.values()]

    def _copy(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self.lock:
            return json.loads(json.dumps(items))

    # -- the Cases API ----------------------------------------------------------------------
    def _admit(self, request: Request, method: str, write: bool) -> Response | None:
        """case:Read to read, case:Comment to write (cases.yaml x-coralogixPermissions), checked
        against the sandbox key's role as `/_sandbox/coralogix/permissions` last set it."""
        return admit(self.sandbox, request, method, "case:Comment" if write else "case:Read", self._grants())

    def _grants(self) -> Grants:
        actions = getattr(self.sandbox, "case_actions", None)  # the role's permissions live there
        if actions is None:
            return KEY_GRANTS
        with actions.lock:
            role = frozenset(actions.permissions)
        return {**KEY_GRANTS, CORALOGIX_API_KEY: role}

    def _cases_api(self, request: Request) -> Response:
        parts = [p for p in request.path.removeprefix(CASES_PREFIX).split("/") if p]
        ref = parts[0] if parts else None
        action = "/".join(parts[1:]) if ref else None
        route = self.routes.get((request.verb, action))
        if route is None:
            return grpc_error(404, NOT_FOUND, f"no such endpoint: {request.verb} {request.path}")
        refused = self._admit(request, route.method, route.write)
        if refused is not None:
            return refused
        with self.lock:
            try:
                return route.handle(request, None if ref is None else self.case(ref))
            except Refused as exc:
                return exc.response
            except BadRequest as exc:
                return invalid_argument(exc)

    def _list(self, request: Request, _: Case | None) -> Response:
        body = request.json_object()
        pagination = body.get("pagination") or {}
        if not isinstance(pagination, dict):
            raise BadRequest("invalid_argument", "pagination must be an object")
        size = _int64(pagination.get("pageSize", 50), "pagination.pageSize", 1, 1000)
        skip = _int64(pagination.get("skip", 0), "pagination.skip", 0, 1_000_000)
        token = pagination.get("pageToken") or "0"
        if not isinstance(token, str) or not token.isdigit():
            raise BadRequest("invalid_argument", "invalid pagination.pageToken")
        cases = [c for c in self.cases.values() if _matches(c, body.get("filters") or {})][skip:]
        start = int(token)
        page: dict[str, Any] = {}
        if start + size < len(cases):
            page["nextPageToken"] = str(start + size)
        return Response.json(
            200, {"cases": [c.to_api() for c in cases[start : start + size]], "pagination": page}
        )

    def _get(self, request: Request, case: Case | None) -> Response:
        assert case is not None
        return Response.json(200, {"case": case.to_api()})

    def _deep_links(self, request: Request, case: Case | None) -> Response:
        assert case is not None
        return Response.json(200, {"deepLinks": {"detail": f"{self.sandbox.url}/#/cases/{case.id}"}})

    def _events(self, request: Request, case: Case | None) -> Response:
        assert case is not None
        return Response.json(200, {"events": case.events})

    def _comment(self, request: Request, case: Case | None) -> Response:
        assert case is not None
        body = request.json_object()
        text, attachments = body.get("text"), body.get("attachments", [])
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("invalid_argument", "text must be a non-empty string")
        _check_attachments(attachments)
        comment = {"comment": {"unsafeText": text, "attachments": attachments}}
        return Response.json(200, {"event": self.record(case, comment, API_KEY_ACTOR)})

    def _sync(self, request: Request, case: Case | None) -> Response:
        assert case is not None
        self.syncs.append({"caseId": case.id, "request": request.json_object()})
        return Response.json(200, {"syncRegistered": True})

    # -- Case events: /cases/events/v1/{event_id}[/comments] --------------------------------
    def _events_api(self, request: Request) -> Response:
        parts = [p for p in request.path.removeprefix(EVENTS_PREFIX).split("/") if p]
        route = self.event_routes.get((request.verb, "/".join(parts[1:]))) if parts else None
        if route is None:
            return grpc_error(404, NOT_FOUND, f"no such endpoint: {request.verb} {request.path}")
        method, write, handle = route
        refused = self._admit(request, method, write)
        if refused is not None:
            return refused
        with self.lock:
            found = self._find_event(parts[0])
            if found is None:
                return grpc_error(404, NOT_FOUND, f"event {parts[0]} not found")
            case, event = found
            if write and "comment" not in event["eventData"]:
                return grpc_error(400, INVALID_ARGUMENT, f"event {parts[0]} is not a comment")
            try:
                return handle(request, case, event)
            except BadRequest as exc:
                return invalid_argument(exc)

    def _get_event(self, request: Request, case: Case, event: dict[str, Any]) -> Response:
        return Response.json(200, {"event": event})

    def _update_comment(self, request: Request, case: Case, event: dict[str, Any]) -> Response:
        body = request.json_object()
        text, attachments = body.get("text"), body.get("attachments")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("invalid_argument", "text must be a non-empty string")
        if attachments is not None:
            _check_attachments(attachments)
        comment = event["eventData"]["comment"]
        comment["unsafeText"] = text
        if isinstance(attachments, list):
            comment["attachments"] = attachments
        event["updateTime"] = rfc3339(self.sandbox.clock.time())
        case.update_time = event["updateTime"]
        return Response.json(200, {"event": event})

    def _delete_comment(self, request: Request, case: Case, event: dict[str, Any]) -> Response:
        case.events.remove(event)
        case.update_time = rfc3339(self.sandbox.clock.time())
        return Response.json(200, {})

    # -- log ingestion ----------------------------------------------------------------------
    def _ingest(self, request: Request) -> Response:
        stopped = self.sandbox.traffic.gate(INGEST_ROUTES[request.path])
        if stopped is not None:
            return stopped
        if request.bearer_token() != CORALOGIX_SEND_KEY:
            return grpc_error(401, UNAUTHENTICATED, "missing or invalid Send-Your-Data key")
        if len(request.body) > MAX_INGEST_BYTES:
            return grpc_error(413, INVALID_ARGUMENT, f"request larger than {MAX_INGEST_BYTES} bytes")
        try:
            entries = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            entries = None
        if request.path == "/logs/v1/bulk":  # {applicationName, subsystemName, computerName?, logEntries}
            entries, problem = _bulk_entries(entries)
        else:  # a JSON array of entries, each with its applicationName and subsystemName
            problem = _log_problem(entries)
        if problem:
            return grpc_error(400, INVALID_ARGUMENT, problem)
        with self.lock:
            self.logs.extend(entries)
        return Response.json(200, {})

    # -- admin ------------------------------------------------------------------------------
    def admin_create(self, body: Body) -> Body:
        """A new Case (`title`; optional status, priority, labels, assignee), as an alert would open one."""
        fields = _case_fields(body, required=("title",))
        with self.lock:
            case = self._create(
                fields["title"],
                fields.get("status", "CASE_STATUS_ACTIVE"),
                fields.get("priority", "CASE_PRIORITY_P3"),
                key_values(fields.get("labels", [])),
                fields.get("assignee"),
                self.sandbox.clock.time(),
            )
            return {"case": case.to_api()}

    def admin_update(self, body: Body) -> Body:
        """Change a Case as a person in Coralogix would: `id`, then any of status, priority, assignee,
        title and labels. The change is recorded on the Case's timeline."""
        ref = body.get("id")
        changes = _case_fields({k: v for k, v in body.items() if k != "id"}, required=())
        if "labels" in changes:
            changes["labels"] = key_values(changes["labels"])
        with self.lock:
            case = self._find(ref) if isinstance(ref, str) else None
            if case is None:
                raise AdminError(404, "case_not_found", f"no Case {ref!r}")
            person = {"user": {"id": member_id("admin@example.com")}}
            for name, value in changes.items():
                self.change(case, name, value, person)
            case.update_time = rfc3339(self.sandbox.clock.time())
            return {"case": case.to_api()}

    def admin_reset(self, body: Body) -> Body:
        """Back to the seeded Cases, no logs, no sync requests (the Slack side has its own reset)."""
        self.reset()
        return {}

    def admin_comments(self, body: Body) -> Body:
        """Comment events, of one Case (`case`) or of all."""
        with self.lock:
            cases = list(self.cases.values())
            if body.get("case"):
                found = self._find(body["case"])
                if found is None:
                    raise AdminError(404, "case_not_found", f"no Case {body['case']!r}")
                cases = [found]
            return {"comments": [e for c in cases for e in c.events if "comment" in e["eventData"]]}


# CommentAttachment (cases.yaml): one of these keys, with the object's required fields
ATTACHMENT_FIELDS = {
    "customWidget": ("customDashboardId", "widgetId", "widgetScreenshot"),
    "file": ("fileId", "fileName", "isDeleted"),
    "log": ("logId", "logTimestamp", "logContent"),
}


def _check_attachments(attachments: Any) -> None:
    """A comment's attachments are CommentAttachment objects: exactly one of customWidget, file or
    log, carrying that variant's required fields."""
    if not isinstance(attachments, list):
        raise BadRequest("invalid_argument", "attachments must be a list")
    for i, item in enumerate(attachments, 1):
        kinds = [k for k in ATTACHMENT_FIELDS if isinstance(item, dict) and k in item]
        if not isinstance(item, dict) or len(kinds) != 1 or not isinstance(item[kinds[0]], dict):
            raise BadRequest(
                "invalid_argument", f"attachment {i} must be one of {{customWidget | file | log}}"
            )
        missing = [f for f in ATTACHMENT_FIELDS[kinds[0]] if f not in item[kinds[0]]]
        if missing:
            raise BadRequest("invalid_argument", f"attachment {i} ({kinds[0]}) lacks {', '.join(missing)}")


def _int64(value: Any, name: str, low: int, high: int) -> int:
    """An int64 field of a request: protobuf JSON takes a number or a decimal string."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest("invalid_argument", f"{name} must be {low} to {high}")
    return value


CASE_CATEGORIES = ("CASE_CATEGORY_UNSPECIFIED", "CASE_CATEGORY_SECURITY", "CASE_CATEGORY_AVAILABILITY")


def _matches(case: Case, filters: Any) -> bool:
    """Does the Case pass ListCases' CaseFilters? (statuses, priorities, categories, labels, textSearch)"""
    if not isinstance(filters, dict):
        raise BadRequest("invalid_argument", "filters must be an object")
    api = case.to_api()
    for name, field_, allowed in (("statuses", "status", ("CASE_STATUS_UNSPECIFIED", *CASE_STATUSES)),
                                  ("priorities", "priority", ("CASE_PRIORITY_UNSPECIFIED", *CASE_PRIORITIES)),
                                  ("categories", "category", CASE_CATEGORIES)):  # fmt: skip
        wanted = filters.get(name) or []
        if not isinstance(wanted, list) or any(v not in allowed for v in wanted):
            raise BadRequest("invalid_argument", f"filters.{name} are {', '.join(allowed)}")
        if wanted and api[field_] not in wanted:
            return False
    groups = filters.get("labels") or []
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and isinstance(g.get("key"), str) and isinstance(g.get("values"), list)
        for g in groups
    ):
        raise BadRequest("invalid_argument", "filters.labels are [{key, values}] (FilterGroup)")
    for group in groups:
        if not any(k == group["key"] and v in group["values"] for k, v in case.labels):
            return False
    text = filters.get("textSearch")
    if text is not None and not isinstance(text, str):
        raise BadRequest("invalid_argument", "filters.textSearch must be a string")
    return not text or text.casefold() in case.title.casefold()


def _case_fields(body: Body, required: tuple[str, ...]) -> dict[str, Any]:
    """Validated Case fields from an admin body, by their Case attribute names."""
    checks: dict[str, Callable[[Any], bool]] = {
        "title": lambda v: isinstance(v, str) and bool(v.strip()),
        "status": lambda v: v in CASE_STATUSES,
        "priority": lambda v: v in CASE_PRIORITIES,
        "assignee": lambda v: v is None or isinstance(v, str),
        "labels": lambda v: isinstance(v, list) and all(_is_label(x) for x in v),
    }
    problems = {
        "unknown": sorted(set(body) - set(checks)),
        "missing": [name for name in required if name not in body],
        "invalid": [name for name, value in body.items() if name in checks and not checks[name](value)],
    }
    if any(problems.values()):
        found = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in problems.items() if names)
        raise AdminError(
            400, "invalid_arguments", f"{found} (status is CASE_STATUS_…, priority CASE_PRIORITY_P1…P5)"
        )
    return dict(body)


def _is_label(item: Any) -> bool:
    if isinstance(item, dict):
        return isinstance(item.get("key"), str) and isinstance(item.get("value", ""), str)
    return isinstance(item, str)


def key_values(labels: list[Any]) -> list[tuple[str, str]]:
    """Admin labels — `{key, value}` objects or "key:value" strings — as v1.KeyValue pairs."""
    pairs = []
    for item in labels:
        if isinstance(item, dict):
            pairs.append((str(item["key"]), str(item.get("value", ""))))
        else:
            key, _, value = str(item).partition(":")
            pairs.append((key, value))
    return pairs


def assigned_event(old: str | None, new: str) -> dict[str, Any]:
    """The `assigned` CaseEventData: the new assignee's userId and the previous one's, if any."""
    assigned = {"assigneeUserId": member_id(new)}
    return {"assigned": {**assigned, "previousAssigneeUserId": member_id(old)} if old else assigned}


def change_event(name: str, old: Any, new: Any) -> dict[str, Any] | None:
    """The CaseEventData a change of one Case field makes (labels have no event type)."""
    if name == "status":
        return {"statusChanged": {"oldStatus": old, "newStatus": new}}
    if name == "priority":
        return {"priorityDetailsChanged": {"from": {"system": old}, "to": {"system": new}}}
    if name == "title":
        return {"titleChangedEvent": {"from": old, "to": new}}
    if name == "assignee" and new:
        return assigned_event(old, new)
    if name == "assignee":
        return {"unassigned": {"previousAssigneeUserId": member_id(old)}}
    return None


def _bulk_entries(doc: Any) -> tuple[Any, str | None]:
    """A /logs/v1/bulk body as the entries it stands for (each with the shared names), or the
    problem: Coralogix's REST API /bulk takes one object whose `logEntries` need `severity` and `text`."""
    if not isinstance(doc, dict):
        return None, "the body must be a JSON object {applicationName, subsystemName, logEntries}"
    items = doc.get("logEntries")
    if not isinstance(items, list) or not items or not all(isinstance(e, dict) for e in items):
        return None, "logEntries must be a non-empty array of log entries"
    missing = next((i for i, e in enumerate(items, 1) if "severity" not in e), None)
    if missing is not None:
        return None, f"entry {missing}: severity is required"
    shared = {k: doc[k] for k in ("applicationName", "subsystemName", "computerName") if k in doc}
    entries = [{**shared, **entry} for entry in items]
    return entries, _log_problem(entries)


def _log_problem(entries: Any) -> str | None:
    """What is wrong with an ingestion body (a JSON array of log entries), if anything."""
    if not isinstance(entries, list) or not entries:
        return "the body must be a non-empty JSON array of log entries"
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            return f"entry {i} is not an object"
        for name in ("applicationName", "subsystemName", "text"):
            if not isinstance(entry.get(name), str) or not entry[name]:
                return f"entry {i}: {name} must be a non-empty string"
        severity = entry.get("severity", 3)
        if not isinstance(severity, int) or isinstance(severity, bool) or not 1 <= severity <= 6:
            return f"entry {i}: severity must be 1 to 6"
        if not isinstance(entry.get("timestamp", 0), int | float):
            return f"entry {i}: timestamp must be milliseconds since the epoch"
    return None
