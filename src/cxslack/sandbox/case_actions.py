"""Coralogix on the sandbox, continued: acting on Cases, and the team's members.

What Case buttons in Slack call, in the published v5 shapes (cases.yaml, team-members.yaml):

    POST /mgmt/openapi/5/cases/acknowledged/v1          {ids, actor}       case:Acknowledge
    PUT  /mgmt/openapi/5/cases/acknowledged/v1/{id}     (no body)          case:Acknowledge
    POST /mgmt/openapi/5/cases/assigned/v1/{id}         {assignee}         case:Assign
    PUT  /mgmt/openapi/5/cases/resolved/v1/{id}         {reason?}          case:Close
    POST /mgmt/openapi/5/cases/closed/v1/{id}           (no body)          case:Close
    GET  /mgmt/openapi/5/aaa/teams/v2/{team_id}/search  ?username&status&page_size&page_token

Each answers the Case afterwards (`{"cases": [...]}` for the bulk acknowledge, `{"case": …}`
otherwise) and records the change on the Case's timeline, with the actor when the request named
one and the API key otherwise. RULES lists what is enforced and where Coralogix says so; the
Cases themselves live in coralogix.py's CoralogixApi. Errors have Coralogix's gRPC-gateway shape.

Admin routes (JSON, not Coralogix's API):
  GET  /_sandbox/coralogix/actions           every action request: path, body, answer
  GET  /_sandbox/coralogix/team/members      the team's members
  POST /_sandbox/coralogix/team/members      add or change one {username, first_name?, last_name?, status?}
  POST /_sandbox/coralogix/team/remove       {username}: no longer a member
  GET/POST /_sandbox/coralogix/permissions   the sandbox API key's case:* permissions {"permissions": [...]}
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cxslack.sandbox.coralogix import (
    API_KEY_ACTOR,
    CASES_YAML,
    CORALOGIX_ADMIN_PREFIX,
    CORALOGIX_API_KEY,
    CORALOGIX_READONLY_API_KEY,
    INVALID_ARGUMENT,
    KEY_GRANTS,
    NOT_FOUND,
    READONLY_PERMISSIONS,
    UUID,
    Refused,
    Rule,
    admit,
    assigned_event,
    grpc_error,
    invalid_argument,
    member_id,
)
from cxslack.sandbox.wire import (
    AdminError,
    BadRequest,
    Body,
    Request,
    Response,
    Router,
    json_route,
    text_field,
)

if TYPE_CHECKING:
    from cxslack.sandbox.server import SlackSandbox

API = "/mgmt/openapi/5"
TEAM_YAML = "coralogix-openapi-v5/team-members.yaml"
CORALOGIX_TEAM_ID = 4242  # the sandbox's one team (`cxslack coralogix configure --team-id 4242`)
CASE_PERMISSIONS = (
    "case:Read",
    "case:Comment",
    "case:Acknowledge",
    "case:Assign",
    "case:Close",
    "case:Update",
)
USER_STATUSES = ("USER_STATUS_UNSPECIFIED", "USER_STATUS_ACTIVE", "USER_STATUS_INACTIVE")
# (username, first name, last name, status): the Slack sandbox's people by email, and two who
# show why a search's partial match is never taken for the person (jimbob@…, bob@….au).
SEED_MEMBERS: tuple[tuple[str, str, str, str], ...] = (
    ("alice@example.com", "Alice", "Anderson", "USER_STATUS_ACTIVE"),
    ("bob@example.com", "Bob", "Brown", "USER_STATUS_ACTIVE"),
    ("carol@example.com", "Carol", "Chen", "USER_STATUS_ACTIVE"),
    ("dave@example.com", "Dave", "Diaz", "USER_STATUS_INACTIVE"),
    ("erin@partner.example", "Erin", "External", "USER_STATUS_ACTIVE"),
    ("jimbob@example.com", "Jim", "Bob", "USER_STATUS_ACTIVE"),
    ("bob@example.com.au", "Bob", "Barker", "USER_STATUS_ACTIVE"),
)


# What the sandbox refuses, and where Coralogix's published API says so.
RULES: tuple[Rule, ...] = (
    Rule("a missing or unknown API key: 401 UNAUTHENTICATED", f"{CASES_YAML} and {TEAM_YAML}: 401 Unauthorized request"),
    Rule("an action the key's role lacks the permission for: 403 PERMISSION_DENIED",
         f"{CASES_YAML}: x-coralogixPermissions of each operation (case:Acknowledge, case:Assign, case:Close)"),
    Rule("a Case id that is neither a UUID nor a readable id, over 64 characters: 400 INVALID_ARGUMENT",
         f"{CASES_YAML}: the `id`/`ids` pattern and maxLength"),
    Rule("bulk acknowledge without `ids` (1 to 1000) or without `actor`: 400", f"{CASES_YAML}: Bulk acknowledge request, required: ids, actor"),
    Rule("assign without `assignee`: 400", f"{CASES_YAML}: Assign case request, required: assignee"),
    Rule("a UserDetails.userId that is not a UUID: 400", f"{CASES_YAML}: cases.v1.UserDetails.userId pattern"),
    Rule("a user id who is not a member of the team: 400", f"{CASES_YAML}: UserDetails is a 'unique user identifier' of a Coralogix user"),
    Rule("a resolve reason that is empty or over 500 characters: 400", f"{CASES_YAML}: Resolve case request, reason minLength 1, maxLength 500"),
    Rule("a Case that does not exist: 404 NOT_FOUND", "Coralogix's gRPC-gateway answers NOT_FOUND with 404 (as the Cases API's other routes do)"),
    Rule("a team id other than the sandbox's: 404 Team not found", f"{TEAM_YAML}: search, 404 Team not found"),
    Rule("page_size, page_token not integers; status not a UserStatus: 400", f"{TEAM_YAML}: search parameters (int64, UserStatus enum)"),
)  # fmt: skip


@dataclass
class Member:
    username: str
    first_name: str
    last_name: str
    status: str
    account_id: int

    @property
    def user_id(self) -> str:
        return member_id(self.username)

    def to_api(self) -> dict[str, Any]:
        """rbac.v2.User."""
        return {
            "userId": self.user_id,
            "username": self.username,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "status": self.status,
            "userAccountId": self.account_id,
        }


@dataclass(frozen=True)
class _Action:
    method: str  # the traffic layer's name (faults target it)
    permission: str
    handle: Callable[[Request, str | None], dict[str, Any]]


class CaseActionsApi:
    """The action endpoints and the team directory; Cases are CoralogixApi's, under its lock."""

    def __init__(self, sandbox: SlackSandbox):
        self.sandbox = sandbox
        self.cases = sandbox.coralogix
        self.lock = threading.Lock()  # the members, permissions and the action log
        # (verb, path under /mgmt/openapi/5 without the Case id) → action
        self.actions: dict[tuple[str, str], _Action] = {
            ("POST", "/cases/acknowledged/v1"): _Action("coralogix.cases.acknowledge", "case:Acknowledge", self._acknowledge),
            ("PUT", "/cases/acknowledged/v1"): _Action("coralogix.cases.acknowledge_one", "case:Acknowledge", self._acknowledge_one),
            ("POST", "/cases/assigned/v1"): _Action("coralogix.cases.assign", "case:Assign", self._assign),
            ("PUT", "/cases/resolved/v1"): _Action("coralogix.cases.resolve", "case:Close", self._resolve),
            ("POST", "/cases/closed/v1"): _Action("coralogix.cases.close", "case:Close", self._close),
        }  # fmt: skip
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.members: dict[str, Member] = {}
            for username, first, last, status in SEED_MEMBERS:
                self._put_member(username, first, last, status)
            self.permissions: set[str] = set(CASE_PERMISSIONS)
            self.log: list[dict[str, Any]] = []

    def _put_member(self, username: str, first: str, last: str, status: str) -> Member:
        current = self.members.get(username.lower())
        account = current.account_id if current else 1000 + len(self.members)
        member = Member(username, first, last, status, account)
        self.members[username.lower()] = member
        return member

    def register(self, router: Router) -> None:
        for verb, path in self.actions:
            router.add(verb, API + path, self._serve_action)
        router.add("GET", f"{API}/aaa/teams/v2", self._search)
        admin: list[tuple[str, str, Callable[[Body], Body]]] = [
            ("GET", "actions", lambda body: {"actions": self._copy_log()}),
            ("GET", "team/members", lambda body: {"team_id": CORALOGIX_TEAM_ID, "members": self._all_members()}),
            ("POST", "team/members", self.admin_member),
            ("POST", "team/remove", self.admin_remove_member),
            ("GET", "permissions", lambda body: {"permissions": sorted(self.permissions)}),
            ("POST", "permissions", self.admin_permissions),
        ]  # fmt: skip
        for verb, name, action in admin:
            router.add(verb, CORALOGIX_ADMIN_PREFIX + name, json_route(verb, action))

    # -- the action endpoints ---------------------------------------------------------------
    def _serve_action(self, request: Request) -> Response:
        path = request.path.removeprefix(API)
        base, _, rest = path.partition("/v1")
        ref = rest.strip("/") or None
        action = self.actions.get((request.verb, base + "/v1"))
        bulk = (request.verb, base) == ("POST", "/cases/acknowledged")  # the one route without an id
        if action is None or (ref is None) != bulk:
            return grpc_error(404, NOT_FOUND, f"no such endpoint: {request.verb} {request.path}")
        with self.lock:  # the sandbox key's role is what admin_permissions set
            grants = {
                CORALOGIX_API_KEY: set(self.permissions),
                CORALOGIX_READONLY_API_KEY: READONLY_PERMISSIONS,
            }
        # an injected fault or a refused key is logged too, with what it answered
        response = admit(self.sandbox, request, action.method, action.permission, grants)
        if response is None:
            try:
                response = Response.json(200, action.handle(request, ref))
            except Refused as exc:
                response = exc.response
            except BadRequest as exc:
                response = invalid_argument(exc)
        self._record(request, response)
        return response

    def _record(self, request: Request, response: Response) -> None:
        try:
            body: Any = json.loads(request.body) if request.body else None
        except ValueError:
            body = request.body.decode("utf-8", "replace")
        with self.lock:
            self.log.append({"verb": request.verb, "path": request.path.removeprefix(API), "body": body,
                             "status": response.status, "at": round(time.time(), 3)})  # fmt: skip

    def _user(self, body: Body, field: str) -> Member:
        details = body.get(field)
        if not isinstance(details, dict):
            raise Refused(400, INVALID_ARGUMENT, f"{field} is required (cases.v1.UserDetails)")
        user_id = details.get("userId")
        if not isinstance(user_id, str) or not UUID.fullmatch(user_id):
            raise Refused(400, INVALID_ARGUMENT, f"{field}.userId must be a user's UUID")
        with self.lock:
            member = next((m for m in self.members.values() if m.user_id == user_id), None)
        if member is None:
            raise Refused(400, INVALID_ARGUMENT, f"{field}.userId {user_id} is not a member of the team")
        return member

    def _acknowledge(self, request: Request, ref: str | None) -> dict[str, Any]:
        body = request.json_object()
        ids = body.get("ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 1000 or not all(isinstance(i, str) for i in ids):
            raise Refused(400, INVALID_ARGUMENT, "ids must list 1 to 1000 case ids")
        actor = self._user(body, "actor")
        with self.cases.lock:
            cases = [self.cases.case(i) for i in ids]  # every id is checked before any Case changes
            for case in cases:
                self.cases.change(case, "status", "CASE_STATUS_ACKNOWLEDGED", {"user": {"id": actor.user_id}})
            return {"cases": [c.to_api() for c in cases]}

    def _acknowledge_one(self, request: Request, ref: str | None) -> dict[str, Any]:
        """PUT /cases/acknowledged/v1/{id}: no body and no actor, so it is the API key's doing."""
        assert ref is not None
        with self.cases.lock:
            case = self.cases.case(ref)
            self.cases.change(case, "status", "CASE_STATUS_ACKNOWLEDGED", API_KEY_ACTOR)
            return {"case": case.to_api()}

    def _assign(self, request: Request, ref: str | None) -> dict[str, Any]:
        assert ref is not None
        assignee = self._user(request.json_object(), "assignee")
        with self.cases.lock:
            case = self.cases.case(ref)
            previous, case.assignee = case.assignee, assignee.username
            self.cases.record(case, assigned_event(previous, assignee.username), API_KEY_ACTOR)
            return {"case": case.to_api()}

    def _resolve(self, request: Request, ref: str | None) -> dict[str, Any]:
        assert ref is not None
        reason = request.json_object().get("reason")
        if reason is not None and (not isinstance(reason, str) or not 1 <= len(reason) <= 500):
            raise Refused(400, INVALID_ARGUMENT, "reason must be 1 to 500 characters")
        with self.cases.lock:
            case = self.cases.case(ref)
            self.cases.change(case, "status", "CASE_STATUS_RESOLVED", API_KEY_ACTOR)
            if reason:
                self.cases.record(case, {"resolutionReasonChangedEvent": {"to": reason}}, API_KEY_ACTOR)
            return {"case": case.to_api()}

    def _close(self, request: Request, ref: str | None) -> dict[str, Any]:
        assert ref is not None
        with self.cases.lock:
            case = self.cases.case(ref)
            self.cases.change(case, "status", "CASE_STATUS_CLOSED", API_KEY_ACTOR)
            return {"case": case.to_api()}

    # -- team members -----------------------------------------------------------------------
    def _search(self, request: Request) -> Response:
        refused = admit(self.sandbox, request, "coralogix.team.search", None, KEY_GRANTS)
        if refused is not None:
            return refused
        parts = request.path.removeprefix(f"{API}/aaa/teams/v2/").split("/")
        if len(parts) != 2 or parts[1] != "search":
            return grpc_error(404, NOT_FOUND, f"no such endpoint: {request.verb} {request.path}")
        if not parts[0].isdigit():
            return grpc_error(400, INVALID_ARGUMENT, "team_id must be an integer")
        if int(parts[0]) != CORALOGIX_TEAM_ID:
            return grpc_error(404, NOT_FOUND, f"team {parts[0]} not found")
        query = request.query_params()
        for name in ("page_size", "page_token"):
            if name in query and not query[name].isdigit():
                return grpc_error(400, INVALID_ARGUMENT, f"{name} must be an integer")
        status = query.get("status")
        if status is not None and status not in USER_STATUSES:
            return grpc_error(400, INVALID_ARGUMENT, f"status must be one of {', '.join(USER_STATUSES)}")
        wanted = query.get("username", "").casefold()
        with self.lock:
            found = [m for m in self.members.values()
                     if wanted in m.username.casefold() and (status in (None, "USER_STATUS_UNSPECIFIED") or m.status == status)]  # fmt: skip
        size = int(query.get("page_size") or 20) or 20
        start = int(query.get("page_token") or 0)
        page: dict[str, Any] = {
            "users": [m.to_api() for m in found[start : start + size]],
            "totalCount": len(found),
        }
        if start + size < len(found):
            page["nextPageToken"] = start + size
        return Response.json(200, page)

    def _all_members(self) -> list[dict[str, Any]]:
        with self.lock:
            return [m.to_api() for m in self.members.values()]

    def _copy_log(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(entry) for entry in self.log]

    # -- admin ------------------------------------------------------------------------------
    def admin_member(self, body: Body) -> Body:
        """Add or change a member: `username` (their email), optional names and status."""
        username = text_field(body, "username")
        status = body.get("status", "USER_STATUS_ACTIVE")
        names = [body.get(k, "") for k in ("first_name", "last_name")]
        if status not in USER_STATUSES or not all(isinstance(n, str) for n in names):
            raise AdminError(400, "invalid_arguments", "status is a USER_STATUS_…; names are strings")
        with self.lock:
            return {"member": self._put_member(username, str(names[0]), str(names[1]), status).to_api()}

    def admin_remove_member(self, body: Body) -> Body:
        username = text_field(body, "username")
        with self.lock:
            if self.members.pop(username.lower(), None) is None:
                raise AdminError(404, "member_not_found", f"no member {username!r}")
        return {}

    def admin_permissions(self, body: Body) -> Body:
        """Set the sandbox API key's case:* permissions (its role in Coralogix)."""
        wanted = body.get("permissions")
        if not isinstance(wanted, list) or not set(wanted) <= set(CASE_PERMISSIONS):
            raise AdminError(
                400, "invalid_arguments", f"permissions: a list of {', '.join(CASE_PERMISSIONS)}"
            )
        with self.lock:
            self.permissions = set(wanted)
            return {"permissions": sorted(self.permissions)}
