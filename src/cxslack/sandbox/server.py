"""SlackSandbox: a local Slack Web API server speaking the real wire protocol.

Like stripe-mock or moto: point `slack_sdk.WebClient(base_url=sandbox.api_url)` (or cxslack, via
CXSLACK_SLACK_API_URL) at it and the same code paths run as against slack.com. Routes:
`/api/<method>` (GET and POST), `/oauth/v2/authorize` (the browser page) and the admin API under
`/_sandbox/` (admin.py). More routes plug in with `sandbox.router.add(verb, prefix, handler)`.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import sys
import threading
import time
import traceback
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from cxslack.redact import redact
from cxslack.sandbox import authorize, redirects, slack_api
from cxslack.sandbox.admin import AdminApi
from cxslack.sandbox.alerts import AlertsApi
from cxslack.sandbox.case_actions import CaseActionsApi
from cxslack.sandbox.coralogix import CoralogixApi
from cxslack.sandbox.events import EventFeed
from cxslack.sandbox.files import FilesApi
from cxslack.sandbox.interactivity import Interactivity
from cxslack.sandbox.notification_center import NotificationCenterApi
from cxslack.sandbox.traffic import Traffic, TrafficSettings
from cxslack.sandbox.wire import BadRequest, Request, Response, Router
from cxslack.sandbox.workspace import AppSettings, Clock, Workspace
from cxslack.scopes import FEATURE_SCOPES

# What issue_token grants by default: every bot scope on the product page (not cxslack's own).
DEFAULT_BOT_SCOPES = [s.name for s in FEATURE_SCOPES if not s.user and not s.own]


class SlackSandbox:
    """The emulator: a Workspace, its Web API, the authorize page and the admin API on one port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, rate_limits: bool = True,
                 latency: float = 0.0, auto_approve: bool = False, redirect_urls: list[str] | None = None,
                 pkce: bool = False):  # fmt: skip
        """`redirect_urls`: the app's registered Redirect URLs (default: cxslack's default redirect
        URI); `pkce`: the app is a PKCE public client. ValueError when Slack would refuse them."""
        self.host = host.strip("[]")
        self.port = port
        self.clock = Clock()
        app = AppSettings(auto_approve=auto_approve, pkce_enabled=pkce)
        if redirect_urls is not None:
            app.redirect_urls = list(redirect_urls)
        problem = redirects.registration_error(app.redirect_urls, pkce=pkce)
        if problem:
            raise ValueError(problem)
        self.workspace = Workspace(self.clock, app)
        self._default_traffic = TrafficSettings(rate_limits=rate_limits, latency=latency)
        self.traffic = Traffic(self.clock, replace(self._default_traffic))
        self.router = Router()
        for verb in ("GET", "POST"):
            self.router.add(verb, "/api/", self._api)
        self.router.add("GET", authorize.PATH, lambda request: authorize.show(self.workspace, request))
        self.router.add("POST", authorize.PATH, lambda request: authorize.decide(self.workspace, request))
        AdminApi(self).register(self.router)
        self.coralogix = CoralogixApi(self)
        self.coralogix.register(self.router)  # Cases API, log ingestion, /_sandbox/coralogix/
        self.alerts = AlertsApi(self)
        self.alerts.register(
            self.router
        )  # alert definitions, metrics query_range, DataPrime; Case indicators
        self.case_actions = CaseActionsApi(self)
        self.case_actions.register(self.router)  # acknowledge, assign, resolve, close; team members
        self.notification_center = NotificationCenterApi(self)
        self.notification_center.register(self.router)  # NC connectors, routers; Integrations
        self.events = EventFeed(self)
        self.events.register(self.router)  # Events API delivery, apps.connections.open, Socket Mode
        self.interactivity = Interactivity(self)
        self.interactivity.register(self.router)  # clicks (block_actions), response_url, chat.postEphemeral
        FilesApi(self).register(self.router)  # the upload URL of files.getUploadURLExternal; /_sandbox/files
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> SlackSandbox:
        """Bind and serve on a background thread; with port 0 the OS picks a free port."""
        self._server = _Server(self.host, self.port, self)
        self.port = self._server.server_address[1]
        self.workspace.public_url = self.url  # upload URLs point back here
        self._thread = threading.Thread(
            target=self._server.serve_until_stopped, name="slack-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop_serving()
        if self._thread is not None:
            self._thread.join()
        self._server.close_connections()
        self._server.server_close()
        self.events.stop()
        self._server = self._thread = None

    def __enter__(self) -> SlackSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Back to the seeded workspace, default settings, no faults, an empty call log, the real time."""
        self.workspace.reset()
        self.coralogix.reset()
        self.case_actions.reset()
        self.notification_center.reset()
        self.events.reset()
        self.interactivity.reset()
        self.traffic.configure(replace(self._default_traffic))
        self.traffic.clear_faults()
        self.traffic.reset_log()
        self.clock.reset()

    # -- addresses --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}{authorize.PATH}"

    # -- shortcuts --------------------------------------------------------------------------
    def issue_token(
        self, scopes: list[str] | None = None, user_scopes: list[str] | None = None
    ) -> dict[str, Any]:
        """Install without the browser: the oauth.v2.access answer for these scopes (tests and admin).

        `scopes` defaults to every bot scope of the product; token rotation follows the settings.
        """
        bot = tuple(DEFAULT_BOT_SCOPES if scopes is None else scopes)
        with self.workspace.lock:
            installation = self.workspace.install(bot, tuple(user_scopes or ()))
            return slack_api.installation_response(self.workspace, installation)

    def register_redirect_url(self, url: str) -> None:
        """Add a Redirect URL to the app's settings, as its admin would (`POST /_sandbox/redirect-urls`)."""
        with self.workspace.lock:
            settings = self.workspace.settings
            problem = redirects.registration_problem(url, pkce=settings.pkce_enabled)
            if problem:
                raise ValueError(problem)
            if url not in settings.redirect_urls:
                settings.redirect_urls = [*settings.redirect_urls, url]

    # -- the Web API route ------------------------------------------------------------------
    def _api(self, request: Request) -> Response:
        method = request.path.removeprefix("/api/")
        try:
            params = request.params()
        except BadRequest as exc:
            return Response.json(200, {"ok": False, "error": exc.error})
        token = request.bearer_token() or request.body_token()
        params.pop("token", None)  # read from where Slack reads it (wire.Request.body_token), nowhere else
        credentials = request.basic_auth()
        if credentials:
            params.setdefault("client_id", credentials[0])
            params.setdefault("client_secret", credentials[1])
        with self.workspace.lock:
            channel = self.workspace.channel(str(params.get("channel") or ""))
        # per-channel limits key on the id, so `#alerts` and its id share one bucket
        admission = self.traffic.admit(method, channel.id if channel else params.get("channel"))
        if admission.delay:
            time.sleep(admission.delay)
        if admission.response is not None:
            return admission.response
        status, body, headers = slack_api.call(self.workspace, method, params, token)
        if admission.lost:  # it happened; the client never hears so
            return Response.dropped()
        if admission.late:  # it happened; the answer comes after the client stopped waiting
            time.sleep(admission.late)
        return Response.json(status, body, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once must not hit SYN retries

    def __init__(self, host: str, port: int, sandbox: SlackSandbox):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake_reader, self._wake_writer = socket.socketpair()
        super().__init__((host, port), _Handler)

    def serve_until_stopped(self) -> None:
        """serve_forever without its 0.5 s polling: stop_serving() wakes the loop at once."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping.is_set():
                if any(key.fileobj is self for key, _ in selector.select()):
                    self.handle_request()  # a connection is waiting: accept it without blocking

    def stop_serving(self) -> None:
        self._stopping.set()
        self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS round trip the sandbox never needs.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive connections too, so a stopped sandbox answers nothing more."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: benchmarks and SDK clients reuse connections
    server_version = "SlackSandbox"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    timeout = 120  # an idle keep-alive connection frees its thread eventually
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:  # no Slack route uses PUT/DELETE; later API routes may
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines can carry tokens (`?token=`), and tests want a quiet stderr."""

    def _serve(self) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            self._send(Response.json(411, {"ok": False, "error": "length_required"}))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(Response.json(400, {"ok": False, "error": "bad_content_length"}))
            return
        path, _, query = self.path.partition("?")
        request = Request(
            verb=self.command,
            path=path,
            query=query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length),
        )
        try:
            response = self.server.sandbox.router.dispatch(request)
        except BadRequest as exc:
            response = Response.json(400, {"ok": False, "error": exc.error, "detail": exc.detail})
        except Exception:  # a sandbox bug: answer 500 and show it, without any token in it
            sys.stderr.write(redact(traceback.format_exc()))
            response = Response.json(500, {"ok": False, "error": "sandbox_internal_error"})
        if response.drop:
            self.close_connection = True
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:  # the client stopped waiting (its timeout, a `late` fault): nobody to answer
            self.close_connection = True
