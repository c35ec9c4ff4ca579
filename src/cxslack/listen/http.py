"""Slack over HTTP: the Events API at `POST /slack/events` (Bolt's default path), button clicks at
`POST /slack/interactivity`, and `GET /healthz`.

Every request to either must carry Slack's signature (slack-sdk's SignatureVerifier: v0 HMAC of
`v0:{timestamp}:{body}`, timestamp within 5 minutes); anything else is 401 and nothing is stored.
`url_verification` is answered with its challenge. An `event_callback`, or a click
(`block_actions`, form-encoded in `payload`), is written to the inbox and answered 200 at once,
well inside Slack's 3 s; processing happens on the worker.
A disk or database that cannot take it answers 500, so Slack retries (through a load balancer,
perhaps at another replica): nothing is acked that was not stored. /healthz answers 503 while the
event store cannot be reached. Request lines, headers and bodies are never logged.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.signature import SignatureVerifier

from cxslack.errors import UsageError
from cxslack.json_input import parse_json
from cxslack.listen.interactivity import INTERACTIVITY_PATH, NotAClick, click_envelope, payload_from_form
from cxslack.state.interface import EventInbox, InvalidEnvelope

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
MAX_BODY = 1 << 20  # Slack's event payloads are a few KB


# Connections are served by a fixed pool, not a thread each: 300 slow clients cost 32 threads,
# not 300. Up to MAX_WAITING more wait their turn; beyond that a connection is closed at once
# (Slack retries an event it got no answer for, and the inbox makes the retry harmless).
POOL_SIZE = 32
MAX_WAITING = 512
IDLE_TIMEOUT = 15  # seconds a kept-alive or slow connection may hold a pool thread without a byte


class EventsServer(HTTPServer):
    request_queue_size = 128  # Slack can open many connections at once after an outage

    def __init__(
        self,
        host: str,
        port: int,
        signing_secret: str,
        inbox: EventInbox,
        health: Callable[[], dict[str, Any]],
        log: Callable[[str], None] = lambda line: None,
    ):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.verifier = SignatureVerifier(signing_secret)
        self.inbox = inbox
        self.health = health
        self.log = log
        self.accepting = True
        self.retries_received = 0  # requests with X-Slack-Retry-Num: Slack thought an answer was lost
        self.clicks_received = 0
        self.rate_limited_notices = 0  # app_rate_limited: Slack dropped a minute of this app's events
        self.dropped = 0  # connections that broke off mid-request, or were turned away
        self._in_flight = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()  # connections being served or waiting for a pool thread
        self._open_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="cxslack-listen-conn")
        super().__init__((host, port), _EventsHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to the pool (TCPServer would serve it on the accepting thread)."""
        with self._open_lock:
            full = len(self._open) >= POOL_SIZE + MAX_WAITING
            if not full:
                self._open.add(request)
        if full:
            self.shutdown_request(request)
            self._dropped(client_address, f"turned away: {POOL_SIZE + MAX_WAITING} connections are open")
            return
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception as exc:
            self._dropped(client_address, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        finally:
            self.shutdown_request(request)
            with self._open_lock:
                self._open.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Never a traceback per client: _serve logs one line instead."""

    def _dropped(self, client_address: Any, why: str) -> None:
        self.dropped += 1
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        host = client_address[0] if isinstance(client_address, tuple) and client_address else "?"
        self.log(f"{when} connection from {host} dropped ({why})")

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN: a DNS round trip nobody needs here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="cxslack-listen-http", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """No new connections, 503 on kept-alive ones, and wait for the requests in progress."""
        self.accepting = False
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout)
        self.server_close()
        with self._open_lock:  # idle kept-alive connections end now, not after IDLE_TIMEOUT
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._pool.shutdown(wait=True)

    def track(self, delta: int) -> None:
        with self._idle:
            self._in_flight += delta
            self._idle.notify_all()


class _EventsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # Slack keeps connections alive
    server_version = "cxslack-listen"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    timeout = IDLE_TIMEOUT  # an idle kept-alive (or trickling) connection frees its pool thread
    server: EventsServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the worker logs one line per event; request lines and headers stay private."""

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, verb: str) -> None:
        path = urlsplit(self.path).path
        routes = {
            EVENTS_PATH: ("POST", self._events),
            INTERACTIVITY_PATH: ("POST", self._interactivity),
            HEALTH_PATH: ("GET", self._health),
        }
        if path not in routes:
            self._reply(404, {"error": "not_found"})
        elif routes[path][0] != verb:
            self._reply(405, {"error": "method_not_allowed"}, {"Allow": routes[path][0]})
        else:
            self.server.track(1)
            try:
                routes[path][1]()
            finally:
                self.server.track(-1)

    def _health(self) -> None:
        health = self.server.health()
        self._reply(503 if health.get("status") == "unavailable" else 200, health)

    def _signed_body(self) -> bytes | None:
        """The request body when it is Slack's, signed; None once the answer was sent."""
        if not self.server.accepting:
            self.close_connection = True
            self._reply(503, {"error": "shutting_down"})
            return None
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True  # the body, if any, is left unread
            self._reply(413 if length > MAX_BODY else 411, {"error": "bad_content_length"})
            return None
        body = self.rfile.read(length)
        if not self._signed(body):
            self._reply(401, {"error": "invalid_signature"})
            return None
        return body

    def _store(self, envelope: dict[str, Any], raw: bytes | None) -> None:
        """Into the inbox, then 200; 500 when the disk or database cannot take it (Slack tries again,
        perhaps at another replica)."""
        try:
            self.server.inbox.accept(envelope, raw)
        except InvalidEnvelope:
            self._reply(400, {"error": "invalid_event"})
            return
        except OSError:
            self._reply(500, {"error": "inbox_unavailable"})  # Slack retries: nothing is lost
            return
        self._reply(200, None)

    def _interactivity(self) -> None:
        body = self._signed_body()
        if body is None:
            return
        try:
            envelope = click_envelope(payload_from_form(body))
        except NotAClick:
            self._reply(400, {"error": "invalid_payload"})
            return
        if envelope is None:  # shortcuts, modals and the like: not cxslack's to answer
            self._reply(200, None)
            return
        self.server.clicks_received += 1
        self._store(envelope, None)

    def _events(self) -> None:
        server = self.server
        body = self._signed_body()
        if body is None:
            return
        try:
            envelope = parse_json(body, "the request body")
        except UsageError:  # not JSON, not UTF-8, or nested absurdly deep
            envelope = None
        if not isinstance(envelope, dict):
            self._reply(400, {"error": "invalid_json"})
            return
        if envelope.get("type") == "url_verification":
            self._reply(200, {"challenge": envelope.get("challenge")})
            return
        if envelope.get("type") == "app_rate_limited":
            # Slack stopped delivering this app's events for a minute (over 30,000 per workspace
            # an hour: docs.slack.dev/apis/events-api, "Rate limiting"): what it dropped is gone,
            # and the operator should know — `cxslack sync` polls the Case threads for what was missed
            server.rate_limited_notices += 1
            when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            team = str(envelope.get("team_id") or "?")[:32]
            server.log(f"{when} Slack rate-limited this app's events (app_rate_limited, team {team}): "
                       "events of that minute were not delivered; run `cxslack sync` to catch up replies")  # fmt: skip
        if envelope.get("type") != "event_callback":  # nothing else is for cxslack; Slack wants a 200
            self._reply(200, None)
            return
        if self.headers.get("X-Slack-Retry-Num"):
            server.retries_received += 1
        self._store(envelope, body)

    def _signed(self, body: bytes) -> bool:
        timestamp = self.headers.get("X-Slack-Request-Timestamp")
        signature = self.headers.get("X-Slack-Signature")
        try:
            return self.server.verifier.is_valid(body, timestamp, signature)
        except ValueError:  # a timestamp that is not a number
            return False

    def _reply(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        body = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
