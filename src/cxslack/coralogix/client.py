"""The one way cxslack talks to Coralogix: the management API (Cases, Notification Center,
Integrations) and log ingestion.

`CoralogixClient` sends `Authorization: Bearer <key>` with JSON bodies and timeouts, retries a
bounded number of times (429 waits out `Retry-After`, capped; 5xx and connection errors back off
exponentially), and turns every failure into a `CxError` that names what the call needed, such
as the `case:Read` permission. Keys are registered with the redactor and never put in a message.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from cxslack import __version__
from cxslack.coralogix.config import KEY_HINT, SEND_KEY_HINT, CoralogixSettings
from cxslack.errors import EXIT_PARTIAL, AuthError, CxError, NotFoundError, UsageError
from cxslack.redact import redact, register_secret

API_PATH = "/mgmt/openapi/5"
CASES_PATH = f"{API_PATH}/cases/cases/v1"
INGEST_PATH = "/logs/v1/singles"
# Coralogix asks to keep an ingestion request under 2 MB; the decimal reading is the safe one.
MAX_REQUEST_BYTES = 2_000_000
# Coralogix says how long to wait after a 429; beyond this cxslack waits no longer per attempt.
MAX_RETRY_AFTER = 30.0
_READABLE_ID = re.compile(r"[A-Z]+-[0-9]+", re.I)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
# A POST that may already have been applied is only retried when the server certainly did not
# act on it: it was never sent, or Coralogix said "not now" (429, 503). Otherwise a retry could
# post a Case comment twice.
_SAFE_RETRY_STATUSES = frozenset({429, 503})
# Call.permission for a management API whose published spec names no permission (team members).
NO_NAMED_PERMISSION = ""
# The Cases API's single-Case resolve takes a reason of 1 to 500 characters (cases.yaml).
RESOLVE_REASON_MAX = 500


def check_case_id(case_id: str) -> str:
    """A Case's UUID or readable id (`CASE-123`); anything else is a usage error."""
    value = case_id.strip()
    if not (_READABLE_ID.fullmatch(value) or _UUID.fullmatch(value)):
        raise UsageError(
            "invalid_case_id",
            f"{value[:80]!r} is not a Case id",
            "Use the Case's readable id (such as CASE-123) or its UUID.",
        )
    # readable ids are upper case and UUIDs lower case, whatever was typed
    return value.upper() if _READABLE_ID.fullmatch(value) else value.lower()


@dataclass(frozen=True)
class Call:
    """What a request does, for its error messages: `action` reads "… to <action>"."""

    action: str
    # the permission it needs (`case:Read`); None for ingestion (Send-Your-Data key);
    # NO_NAMED_PERMISSION where Coralogix's spec names none
    permission: str | None
    missing: str  # the 404 message
    idempotent: bool = True


@dataclass(frozen=True)
class CasePage:
    cases: list[dict[str, Any]]
    next_page_token: str | None


@dataclass(frozen=True)
class SendResult:
    entries: int
    batches: int
    bytes: int


class CoralogixClient:
    """Calls Coralogix's management API (Cases) and ingress (logs) with cxslack's retry and error policies."""

    def __init__(
        self,
        settings: CoralogixSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        backoff: float = 0.5,
        max_retries: int = 3,
        timeout: float = 15,
        max_retry_after: float = MAX_RETRY_AFTER,
        sleep: Callable[[float], None] = time.sleep,
    ):
        register_secret(settings.api_key)
        register_secret(settings.send_key)
        self.settings = settings
        self.backoff = backoff
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self._sleep = sleep  # injectable so tests neither sleep nor guess how long a wait was
        self._http = httpx.Client(
            transport=transport,
            timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": f"cxslack/{__version__}"},
        )

    def __repr__(self) -> str:
        return (
            f"CoralogixClient(api_url={self.settings.api_url!r}, ingress_url={self.settings.ingress_url!r})"
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CoralogixClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- Cases ------------------------------------------------------------------------------
    def get_case(self, case_id: str) -> dict[str, Any]:
        """The Case (the `case` object of the answer)."""
        case_id = check_case_id(case_id)
        doc = self._cases("GET", f"/{case_id}", _read(case_id, "read"))
        return _expect(doc, "case", dict, f"Case {case_id}")

    def case_deep_link(self, case_id: str) -> str | None:
        """The Case's absolute URL in the Coralogix UI (`deepLinks.detail`); None when Coralogix
        gives none (CaseDeepLinks.detail is optional in cases.yaml)."""
        case_id = check_case_id(case_id)
        doc = self._cases("GET", f"/{case_id}/deep-links", _read(case_id, "get the link of"))
        links = _expect(doc, "deepLinks", dict, f"Case {case_id}'s deep links", default={})
        detail = links.get("detail")
        return detail if isinstance(detail, str) and detail else None

    def list_cases(self, page_size: int = 50, page_token: str | None = None) -> CasePage:
        """One page of Cases; pass `next_page_token` back for the next one."""
        if page_size < 1:
            raise UsageError("invalid_page_size", "page size must be at least 1")
        pagination: dict[str, Any] = {"pageSize": page_size}
        if page_token:
            pagination["pageToken"] = page_token
        call = Call("list Cases", "case:Read", f"no Cases API at {self.settings.api_url}")
        doc = self._cases("POST", "", call, {"filters": {}, "pagination": pagination})
        # Coralogix (protobuf JSON) leaves out empty lists and fields
        cases = _expect(doc, "cases", list, "the Case list", default=[])
        page = doc.get("pagination")
        token = page.get("nextPageToken") if isinstance(page, dict) else doc.get("nextPageToken")
        return CasePage(cases=cases, next_page_token=token if isinstance(token, str) and token else None)

    def add_comment(
        self, case_id: str, text: str, attachments: Sequence[Mapping[str, Any]] = ()
    ) -> dict[str, Any]:
        """Post a comment on the Case's timeline; returns the new event."""
        case_id = check_case_id(case_id)
        if not text.strip():
            raise UsageError("invalid_comment", "a Case comment needs some text")
        call = Call(f"comment on Case {case_id}", "case:Comment", f"no Case {case_id}", idempotent=False)
        body = {"text": text, "attachments": [dict(a) for a in attachments]}
        doc = self._cases("POST", f"/{case_id}/comments", call, body)
        return _expect(doc, "event", dict, f"the comment on Case {case_id}")

    def get_event(self, event_id: str) -> dict[str, Any]:
        """One timeline event (`GET /cases/events/v1/{event_id}`)."""
        event_id = _check_event_id(event_id)
        call = Call(f"read Case event {event_id}", "case:Read", f"no Case event {event_id}")
        doc = self.management("GET", f"/cases/events/v1/{event_id}", call)
        return _expect(doc, "event", dict, f"Case event {event_id}")

    def update_comment(
        self, event_id: str, text: str, attachments: Sequence[Mapping[str, Any]] = ()
    ) -> dict[str, Any]:
        """Replace a comment's text (`PUT /cases/events/v1/{event_id}/comments`); the event after."""
        event_id = _check_event_id(event_id)
        if not text.strip():
            raise UsageError("invalid_comment", "a Case comment needs some text")
        call = Call(f"update Case comment {event_id}", "case:Comment", f"no Case comment {event_id}")
        body = {"text": text, "attachments": [dict(a) for a in attachments]}
        doc = self.management("PUT", f"/cases/events/v1/{event_id}/comments", call, body)
        return _expect(doc, "event", dict, f"the updated comment {event_id}")

    def delete_comment(self, event_id: str) -> None:
        """Remove a comment from its Case's timeline (`DELETE /cases/events/v1/{event_id}/comments`)."""
        event_id = _check_event_id(event_id)
        call = Call(f"delete Case comment {event_id}", "case:Comment", f"no Case comment {event_id}")
        self.management("DELETE", f"/cases/events/v1/{event_id}/comments", call)

    def list_events(self, case_id: str) -> list[dict[str, Any]]:
        """The Case's timeline events."""
        case_id = check_case_id(case_id)
        doc = self._cases("GET", f"/{case_id}/events", _read(case_id, "read the timeline of"))
        return _expect(doc, "events", list, f"Case {case_id}'s timeline", default=[])

    # -- acting on a Case (Case buttons in Slack) --------------------------------------------
    # Each answers the Case as it is afterwards. None is retried once it may have reached
    # Coralogix (idempotent=False): the caller settles an outcome in doubt by reading the Case.
    def acknowledge_case(self, case_id: str, actor_user_id: str) -> dict[str, Any]:
        """Acknowledge as a Coralogix user: `POST /cases/acknowledged/v1` with `ids` and `actor`
        (the single-Case PUT takes no actor, so it could only ever be the API key's doing)."""
        case_id = check_case_id(case_id)
        call = Call(f"acknowledge Case {case_id}", "case:Acknowledge", f"no Case {case_id}", idempotent=False)
        body = {"ids": [case_id], "actor": user_details(actor_user_id)}
        doc = self.management("POST", "/cases/acknowledged/v1", call, body)
        cases = _expect(doc, "cases", list, f"acknowledged Case {case_id}")
        if len(cases) != 1 or not isinstance(cases[0], dict):
            raise CxError(
                "coralogix_bad_response", f"Coralogix answered {len(cases)} Cases to acknowledging {case_id}"
            )
        return dict(cases[0])

    def assign_case(self, case_id: str, assignee_user_id: str) -> dict[str, Any]:
        """`POST /cases/assigned/v1/{id}` with `assignee` (UserDetails)."""
        case_id = check_case_id(case_id)
        call = Call(f"assign Case {case_id}", "case:Assign", f"no Case {case_id}", idempotent=False)
        doc = self.management("POST", f"/cases/assigned/v1/{case_id}", call,
                              {"assignee": user_details(assignee_user_id)})  # fmt: skip
        return dict(_expect(doc, "case", dict, f"assigned Case {case_id}"))

    def resolve_case(self, case_id: str, reason: str) -> dict[str, Any]:
        """`PUT /cases/resolved/v1/{id}` with a `reason` (1 to 500 characters); it takes no actor."""
        case_id = check_case_id(case_id)
        reason = reason.strip()
        if not 0 < len(reason) <= RESOLVE_REASON_MAX:
            raise UsageError(
                "invalid_reason", f"a resolution reason has 1 to {RESOLVE_REASON_MAX} characters"
            )
        call = Call(f"resolve Case {case_id}", "case:Close", f"no Case {case_id}", idempotent=False)
        doc = self.management("PUT", f"/cases/resolved/v1/{case_id}", call, {"reason": reason})
        return dict(_expect(doc, "case", dict, f"resolved Case {case_id}"))

    def close_case(self, case_id: str) -> dict[str, Any]:
        """`POST /cases/closed/v1/{id}` (no body; it takes no actor)."""
        case_id = check_case_id(case_id)
        call = Call(f"close Case {case_id}", "case:Close", f"no Case {case_id}", idempotent=False)
        doc = self.management("POST", f"/cases/closed/v1/{case_id}", call)
        return dict(_expect(doc, "case", dict, f"closed Case {case_id}"))

    def _cases(self, verb: str, path: str, call: Call, body: Any = None) -> dict[str, Any]:
        return self.management(verb, CASES_PATH.removeprefix(API_PATH) + path, call, body)

    # -- any management API -----------------------------------------------------------------
    def management(
        self, verb: str, path: str, call: Call, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """One management API call (`path` under /mgmt/openapi/5); the answer's JSON object.

        `params` become the query string (a list value repeats its key, as the API expects)."""
        return _json_object(self.data_api(verb, API_PATH + path, call, params=params, body=body), call)

    def data_api(self, verb: str, path: str, call: Call, *, params: Mapping[str, Any] | None = None,
                 body: Any = None) -> httpx.Response:  # fmt: skip
        """One call to an API on the management API's host and key — `management` (JSON under
        /mgmt/openapi/5), or a data API beside it (the Prometheus-compatible `/metrics/api/v1/…`,
        DataPrime's `/api/v1/dataprime/query`): the raw answer, whose format (JSON, NDJSON) is
        the caller's to read."""
        base, key = self.settings.management()
        content = None if body is None else json.dumps(body).encode()
        query = f"?{urlencode(params, doseq=True)}" if params else ""
        return self._request(call, verb, f"{base}{path}{query}", key, content)

    # -- log ingestion ----------------------------------------------------------------------
    def send_logs(
        self, entries: Iterable[Mapping[str, Any]], *, application: str, subsystem: str
    ) -> SendResult:
        """Send log entries in as many requests as it takes to keep each under 2 MB.

        Missing fields get defaults (this host, now, severity 3 info); `text` that is not a
        string is sent as JSON text, which Coralogix parses.
        """
        base, key = self.settings.ingestion()
        defaults = {
            "applicationName": application,
            "subsystemName": subsystem,
            "computerName": socket.gethostname(),
            "timestamp": int(time.time() * 1000),
            "severity": 3,
        }
        encoded = [_encode_entry({**defaults, **entry}, i) for i, entry in enumerate(entries)]
        total = len(encoded)
        call = Call("send logs", None, f"no log ingestion endpoint at {base}", idempotent=False)
        sent = batches = size = 0
        for batch, count in _batches(encoded, MAX_REQUEST_BYTES):
            try:
                self._request(call, "POST", f"{base}{INGEST_PATH}", key, batch)
            except CxError as exc:
                if not sent:
                    raise
                # a partial success: earlier batches arrived and cannot be taken back
                message = f"{exc.message} ({sent} of {total} entries were sent)"
                raise CxError(exc.code, message, exc.hint, exit_code=EXIT_PARTIAL) from None
            sent += count
            batches += 1
            size += len(batch)
        return SendResult(entries=sent, batches=batches, bytes=size)

    # -- HTTP -------------------------------------------------------------------------------
    def _request(self, call: Call, verb: str, url: str, key: str, content: bytes | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            try:
                response = self._http.request(verb, url, content=content, headers=headers)
            except httpx.TransportError as exc:
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if attempt < self.max_retries and (call.idempotent or never_sent):
                    self._sleep(self.backoff * 2**attempt)
                    attempt += 1
                    continue
                host = urlsplit(url).netloc
                raise CxError(
                    "coralogix_unreachable",
                    f"could not reach Coralogix at {host} to {call.action} ({type(exc).__name__})",
                    "Check the network and the region (cxslack coralogix show).",
                ) from None
            status = response.status_code
            retryable = status in _SAFE_RETRY_STATUSES or (status >= 500 and call.idempotent)
            if not retryable or attempt >= self.max_retries:
                break
            self._sleep(self._wait(response, attempt))
            attempt += 1
        if response.is_success:
            return response
        raise self._error(call, response, attempt + 1)

    def _wait(self, response: httpx.Response, attempt: int) -> float:
        """Retry-After when the server sent one (capped), else exponential backoff."""
        try:
            return min(max(0.0, float(response.headers["Retry-After"])), self.max_retry_after)
        except (KeyError, ValueError):
            return self.backoff * 2**attempt

    def _error(self, call: Call, response: httpx.Response, attempts: int) -> CxError:
        status = response.status_code
        if status in (401, 403):
            return self._auth_error(call, status)
        if status == 404:
            return NotFoundError(
                "coralogix_not_found",
                call.missing,
                "Check the id and the region (cxslack coralogix show): a key sees only its own account.",
            )
        said = _coralogix_message(response)
        if status == 409:
            return CxError(
                "coralogix_conflict", f"Coralogix refused to {call.action}: {said or 'it already exists'}"
            )
        if status == 400:
            return UsageError(
                "coralogix_bad_request", f"Coralogix refused to {call.action}: {said or 'HTTP 400'}"
            )
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        return CxError(
            "coralogix_unavailable",
            f"Coralogix answered HTTP {status} to {call.action}{tried}" + (f": {said}" if said else ""),
            "Coralogix may be busy or having an incident; try again shortly.",
        )

    def _auth_error(self, call: Call, status: int) -> AuthError:
        if call.permission is None:
            return AuthError(
                "coralogix_unauthorized",
                f"Coralogix did not accept the Send-Your-Data key to {call.action} (HTTP {status})",
                f"Check the key and the region (ingress {self.settings.ingress_url}): {SEND_KEY_HINT}",
            )
        if status == 401:
            needs = f" with the {call.permission} permission" if call.permission else ""
            return AuthError(
                "coralogix_unauthorized",
                f"Coralogix did not accept the API key to {call.action} (HTTP 401); "
                f"the call needs a valid key{needs}",
                f"Check the key and the region (API {self.settings.api_url}): {KEY_HINT}",
            )
        if not call.permission:
            return AuthError(
                "coralogix_forbidden",
                f"Coralogix does not let the API key {call.action} (HTTP 403)",
                "Use a key whose role may read the team's members in Coralogix (Settings → API Keys).",
            )
        return AuthError(
            "coralogix_forbidden",
            f"the Coralogix API key lacks the {call.permission} permission needed to {call.action} "
            "(HTTP 403)",
            f"Add {call.permission} to the key's role in Coralogix (Settings → API Keys), "
            "or use a key that has it.",
        )


def user_details(user_id: str) -> dict[str, str]:
    """cases.v1.UserDetails: `{"userId": <the Coralogix user's UUID>}`."""
    if not _UUID.fullmatch(user_id.strip()):
        raise UsageError("invalid_user_id", f"{user_id[:80]!r} is not a Coralogix user id (a UUID)")
    return {"userId": user_id.strip().lower()}


def _check_event_id(event_id: str) -> str:
    """An event id goes into a URL path: nothing that could leave its segment."""
    value = event_id.strip()
    if not value or len(value) > 128 or not re.fullmatch(r"[A-Za-z0-9_.:-]+", value):
        raise UsageError("invalid_event_id", f"{value[:80]!r} is not a Case event id")
    return value


def _read(case_id: str, verb: str) -> Call:
    return Call(f"{verb} Case {case_id}", "case:Read", f"no Case {case_id}")


def _coralogix_message(response: httpx.Response) -> str:
    """Coralogix's own explanation (`message`, as gRPC-gateway answers carry it), shortened."""
    try:
        doc = response.json()
    except ValueError:
        doc = None
    text = (doc.get("message") or doc.get("error")) if isinstance(doc, dict) else response.text
    return redact(" ".join(str(text or "").split())[:300])


def _json_object(response: httpx.Response, call: Call) -> dict[str, Any]:
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise CxError(
            "coralogix_bad_response", f"Coralogix sent an answer cxslack cannot read to {call.action}"
        )
    return doc


def _expect(doc: Mapping[str, Any], key: str, kind: type, what: str, default: Any = None) -> Any:
    value = doc.get(key, default)
    if not isinstance(value, kind):
        raise CxError("coralogix_bad_response", f"Coralogix sent no {what} ({key} missing or malformed)")
    return value


def _encode_entry(entry: dict[str, Any], index: int) -> bytes:
    text = entry.get("text")
    if text is None or text == "":
        raise UsageError("invalid_log_entry", f"log entry {index + 1} has no text")
    if not isinstance(text, str):
        entry["text"] = json.dumps(text, ensure_ascii=False)
    severity = entry.get("severity")
    if not isinstance(severity, int) or isinstance(severity, bool) or not 1 <= severity <= 6:
        raise UsageError(
            "invalid_log_entry", f"log entry {index + 1}: severity must be 1 (debug) to 6 (critical)"
        )
    data = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()
    if len(data) + 2 > MAX_REQUEST_BYTES:
        raise UsageError(
            "invalid_log_entry",
            f"log entry {index + 1} is {len(data)} bytes; a request must stay under {MAX_REQUEST_BYTES}",
        )
    return data


def _batches(encoded: Sequence[bytes], limit: int) -> Iterator[tuple[bytes, int]]:
    """JSON arrays of whole entries, each at most `limit` bytes as sent."""
    batch: list[bytes] = []
    size = 2  # the brackets
    for data in encoded:
        extra = len(data) + (1 if batch else 0)  # the comma
        if batch and size + extra > limit:
            yield b"[" + b",".join(batch) + b"]", len(batch)
            batch, size, extra = [], 2, len(data)
        batch.append(data)
        size += extra
    if batch:
        yield b"[" + b",".join(batch) + b"]", len(batch)
