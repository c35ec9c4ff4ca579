"""HTTP plumbing shared by every sandbox route: requests, responses, the route registry, and the
admin API's JSON routes (Slack's side and Coralogix's side both register theirs through `json_route`).

Kept free of Slack semantics so later routes (Coralogix API, ingestion) plug into the same
server with `Router.add(verb, prefix, handler)`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl


class BadRequest(Exception):
    """A body the route cannot read; answered with `error` (and HTTP 200 on Slack routes)."""

    def __init__(self, error: str, detail: str = ""):
        super().__init__(detail or error)
        self.error = error
        self.detail = detail


@dataclass
class Request:
    verb: str
    path: str
    query: str
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def content_type(self) -> str:
        return self.header("Content-Type").split(";", 1)[0].strip().lower()

    def query_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def query_list(self, name: str) -> list[str]:
        """Every value of a repeated query parameter (`?ids=a&ids=b`), in order."""
        return [value for key, value in parse_qsl(self.query, keep_blank_values=True) if key == name]

    def params(self) -> dict[str, Any]:
        """Query parameters overlaid with the body: form-encoded, multipart (slack_sdk) or JSON."""
        params: dict[str, Any] = self.query_params()
        if not self.body:
            return params
        if self.content_type == "application/json":
            params.update(self.json_object())
        elif self.content_type == "multipart/form-data":
            params.update(_multipart_fields(self.header("Content-Type"), self.body))
        else:
            params.update(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        return params

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body is an empty object."""
        if not self.body:
            return {}
        try:
            doc = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("invalid_json", str(exc)) from None
        if not isinstance(doc, dict):
            raise BadRequest("invalid_json", "the body must be a JSON object")
        return doc

    def bearer_token(self) -> str | None:
        scheme, _, value = self.header("Authorization").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return value.strip() or None

    def body_token(self) -> str | None:
        """A token sent as a POST parameter: a form field (url-encoded or multipart), the one
        alternative to the Authorization header Slack documents ("Tokens should be passed as an
        HTTP Authorization header or alternatively, as a POST parameter": every method's page).
        Never from the query string (docs.slack.dev/changelog/2020-11-no-more-tokens-in-
        querystrings-for-newly-created-apps: apps created after 2021-02-24, as every app cxslack's
        manifest makes is, "may no longer send tokens as query parameters"), and never from a JSON
        body (docs.slack.dev/apis/web-api, JSON-encoded bodies: the token goes in the
        Authorization header; a `token` attribute in the JSON is not read)."""
        if not self.body or self.content_type == "application/json":
            return None
        if self.content_type == "multipart/form-data":
            fields = _multipart_fields(self.header("Content-Type"), self.body)
        else:
            fields = dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        return str(fields.get("token") or "") or None

    def basic_auth(self) -> tuple[str, str] | None:
        """(client_id, client_secret) from `Authorization: Basic …`, as slack_sdk sends them."""
        scheme, _, value = self.header("Authorization").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = (
                base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None


def _multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode("utf-8", "replace")
    return fields


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering (a fault)

    @classmethod
    def json(cls, status: int, doc: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(doc, separators=(",", ":")).encode(), headers=dict(headers or {}))

    @classmethod
    def html(cls, status: int, page: str, headers: dict[str, str] | None = None) -> Response:
        return cls(status, page.encode(), "text/html; charset=utf-8", dict(headers or {}))

    @classmethod
    def redirect(cls, location: str) -> Response:
        return cls(302, b"", "text/plain; charset=utf-8", {"Location": location})

    @classmethod
    def dropped(cls) -> Response:
        return cls(0, drop=True)


Handler = Callable[[Request], Response]
# The admin API (tests, benchmarks, the demo playing the other side) lives under this; not Slack's.
# `GET /_sandbox/` lists its routes.
ADMIN_PREFIX = "/_sandbox/"


class Router:
    """(verb, path prefix) → handler; the longest matching prefix wins. An `exact` route answers
    its own path only."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, str, Handler, bool]] = []
        self.add("GET", ADMIN_PREFIX, self._admin_index, exact=True)

    def add(self, verb: str, prefix: str, handler: Handler, *, exact: bool = False) -> None:
        self._routes.append((verb.upper(), prefix, handler, exact))
        self._routes.sort(key=lambda route: len(route[1]), reverse=True)

    def admin_routes(self) -> list[str]:
        """`VERB /_sandbox/name` for every admin route (what `sandbox serve --help` documents)."""
        return sorted(f"{verb} {prefix}" for verb, prefix, _, exact in self._routes
                      if prefix.startswith(ADMIN_PREFIX) and not exact)  # fmt: skip

    def _admin_index(self, request: Request) -> Response:
        return Response.json(200, {"ok": True, "routes": self.admin_routes()})

    def dispatch(self, request: Request) -> Response:
        matching = [
            (verb, handler)
            for verb, prefix, handler, exact in self._routes
            if (request.path == prefix if exact else _under(request.path, prefix))
        ]
        for verb, handler in matching:
            if verb == request.verb:
                return handler(request)
        if matching:
            allowed = ", ".join(sorted({verb for verb, _ in matching}))
            return Response.json(405, {"ok": False, "error": "method_not_allowed"}, {"Allow": allowed})
        return Response.json(404, {"ok": False, "error": "not_found"})


def _under(path: str, prefix: str) -> bool:
    """`/api/` covers `/api/auth.test`; `/_sandbox/kick` covers itself but not `/_sandbox/kickoff`."""
    return path.startswith(prefix) and (
        prefix.endswith("/") or len(path) == len(prefix) or path[len(prefix)] == "/"
    )


# -- the admin API's JSON routes ---------------------------------------------------------------
Body = dict[str, Any]


class AdminError(Exception):
    def __init__(self, status: int, error: str, detail: str = ""):
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail


def json_route(verb: str, action: Callable[[Body], Body]) -> Callable[[Request], Response]:
    """Adapt `action(body) → result` to HTTP: the body is the JSON object (POST) or the query (GET)."""

    def handle(request: Request) -> Response:
        try:
            body = request.query_params() if verb == "GET" else request.json_object()
            return Response.json(200, {"ok": True, **action(body)})
        except BadRequest as exc:
            return Response.json(400, {"ok": False, "error": exc.error, "detail": exc.detail})
        except AdminError as exc:
            return Response.json(exc.status, {"ok": False, "error": exc.error, "detail": exc.detail})

    return handle


def text_field(body: Body, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise AdminError(400, "invalid_arguments", f"{name} must be a non-empty string")
    return value
