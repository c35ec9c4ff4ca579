"""The Events API over HTTP: `POST /slack/events` (Bolt's default path) and `GET /healthz`.

Every request to /slack/events must carry Slack's signature (slack-sdk's SignatureVerifier:
v0 HMAC of `v0:{timestamp}:{body}`, timestamp within 5 minutes); anything else is 401 and nothing
is stored. `url_verification` is answered with its challenge. An `event_callback` is written to
the inbox and answered 200 at once, well inside Slack's 3 s; processing happens on the worker.
A disk that cannot take the event answers 500, so Slack retries. Request lines, headers and
bodies are never logged.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.signature import SignatureVerifier

from cxslack.errors import UsageError
from cxslack.json_input import parse_json
from cxslack.state.interface import EventInbox, InvalidEnvelope

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
MAX_BODY = 1 << 20  # Slack's event payloads are a few KB


class EventsServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # Slack can open many connections at once after an outage

    def __init__(
        self,
        host: str,
        port: int,
        signing_secret: str,
        inbox: EventInbox,
        health: Callable[[], dict[str, Any]],
    ):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.verifier = SignatureVerifier(signing_secret)
        self.inbox = inbox
        self.health = health
        self.accepting = True
        self.retries_received = 0  # requests with X-Slack-Retry-Num: Slack thought an answer was lost
        self._in_flight = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _EventsHandler)

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

    def track(self, delta: int) -> None:
        with self._idle:
            self._in_flight += delta
            self._idle.notify_all()


class _EventsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # Slack keeps connections alive
    server_version = "cxslack-listen"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    timeout = 60  # an idle kept-alive connection frees its thread eventually
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
        routes = {EVENTS_PATH: ("POST", self._events), HEALTH_PATH: ("GET", self._health)}
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
        self._reply(200, self.server.health())

    def _events(self) -> None:
        server = self.server
        if not server.accepting:
            self.close_connection = True
            self._reply(503, {"error": "shutting_down"})
            return
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True  # the body, if any, is left unread
            self._reply(413 if length > MAX_BODY else 411, {"error": "bad_content_length"})
            return
        body = self.rfile.read(length)
        if not self._signed(body):
            self._reply(401, {"error": "invalid_signature"})
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
        if envelope.get("type") != "event_callback":  # app_rate_limited and the like: nothing to do
            self._reply(200, None)
            return
        if self.headers.get("X-Slack-Retry-Num"):
            server.retries_received += 1
        try:
            server.inbox.accept(envelope, body)
        except InvalidEnvelope:
            self._reply(400, {"error": "invalid_event"})
            return
        except OSError:
            self._reply(500, {"error": "inbox_unavailable"})  # Slack retries: nothing is lost
            return
        self._reply(200, None)

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
