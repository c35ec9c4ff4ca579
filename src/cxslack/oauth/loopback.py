"""The one-shot loopback listener that receives Slack's OAuth redirect, and `--paste`.

RFC 8252 practice: listen on the loopback IP literal only, for the duration of one flow, answer
one exact path, and accept exactly one callback whose `state` matches. A callback with a wrong
state ends the flow (it is a forgery or a stale tab, and waiting for a "better" one would let an
attacker keep trying); so does Slack reporting an error. Requests for other paths (favicon,
probes) get a 404 and change nothing.

Each connection is served on its own daemon thread, so a browser's idle preconnect or a TLS
handshake the browser abandons over an untrusted certificate cannot hold up the real callback.
The waiting thread sleeps in select() on the listening sockets and a wake-up socket: no polling.

The browser's page for the callback waits for the flow's verdict (`finish()`): it says Slack is
connected only once the code exchange and install succeeded, and shows the error otherwise.
A `localhost` redirect is served on ::1 as well as 127.0.0.1 (browsers may resolve it either
way), on the same port, when the caller says the certificate covers it.
"""

from __future__ import annotations

import contextlib
import errno
import queue
import selectors
import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from cxslack.errors import AuthError, CxError, UsageError
from cxslack.oauth import pages
from cxslack.oauth.pkce import states_match
from cxslack.oauth.redirect import RedirectTarget

CONNECTION_TIMEOUT = 10.0  # seconds a browser connection may sit idle before it is dropped
VERDICT_TIMEOUT = 120.0  # the longest the callback page waits for the exchange (Slack retries included)
PAGE_TIMEOUT = 5.0  # how long finish() waits for the page to reach the browser
_RETRY_HINT = "Run the same `cxslack integrations authorize` command again."


@dataclass(frozen=True)
class CallbackResult:
    code: str = field(repr=False)  # exchanged once for tokens; never shown


def parse_pasted_redirect(pasted: str, target: RedirectTarget, expected_state: str) -> CallbackResult:
    """The `--paste` path: the final URL copied from the browser's address bar on a headless box."""
    parts = urlsplit(pasted.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    expected = {"scheme": target.scheme, "host": target.host, "port": target.port, "path": target.path}
    got = {"scheme": parts.scheme, "host": parts.hostname, "port": port, "path": parts.path or "/"}
    differ = [name for name in expected if expected[name] != got[name]]
    if differ:
        # never echo the pasted URL: it carries the code
        raise UsageError(
            "pasted_url_mismatch",
            f"the pasted URL is not the redirect URI {target.uri} (its {', '.join(differ)} differ)",
            "After approving in Slack, copy the whole address from the browser's address bar; "
            f"it starts with {target.uri}?code=",
        )
    return _evaluate(parts.query, expected_state)


def _evaluate(query: str, expected_state: str) -> CallbackResult:
    """Judge a callback's query string: the code, or the AuthError that ends the flow."""
    params = parse_qs(query, keep_blank_values=True)

    def single(name: str) -> str | None:
        values = params.get(name, [])
        return values[0] if len(values) == 1 else None  # a repeated parameter is as good as none

    # state first: only a callback for this very request may say anything, error included
    if not states_match(expected_state, single("state")):
        raise AuthError(
            "state_mismatch",
            "the OAuth callback's state does not match this authorization request (a forged or stale link)",
            f"Nothing was accepted. {_RETRY_HINT}",
        )
    error = single("error")
    if error == "access_denied":
        raise AuthError(
            "authorization_declined",
            "authorization was declined in Slack",
            f"{_RETRY_HINT} Then choose Allow; a workspace admin may need to approve the app first.",
        )
    if error is not None:
        description = _printable(single("error_description") or "")
        detail = f" ({description})" if description else ""
        raise AuthError(
            "authorization_failed", f"Slack returned an error: {_printable(error)}{detail}", _RETRY_HINT
        )
    code = single("code")
    if not code:
        raise AuthError("missing_code", "the OAuth callback carried no authorization code", _RETRY_HINT)
    return CallbackResult(code=code)


def _printable(text: str, limit: int = 200) -> str:
    """Slack's error text, safe for a terminal: no escape sequences, no walls of text."""
    return "".join(ch for ch in text if ch.isprintable())[:limit]


class LoopbackCallback:
    """Listen for one OAuth callback on the target's loopback address.

    Binds in the constructor, so a busy port is reported before the browser is opened. Use as a
    context manager (or call `close()`); `wait()` closes the listener itself when it returns.
    """

    def __init__(self, target: RedirectTarget, *, expected_state: str, ssl_context: ssl.SSLContext | None = None,
                 ipv6_too: bool = False):  # fmt: skip
        if target.tls != (ssl_context is not None):
            raise ValueError("an https redirect URI needs an ssl_context, and an http one must not have one")
        try:
            self._server = _CallbackServer(target, expected_state, ssl_context)
        except OSError as exc:
            raise _bind_error(target, exc) from None
        self.target = target.with_port(self._server.server_address[1])
        self._extra: list[socket.socket] = []
        if ipv6_too and target.bind_ip != "::1":
            self._extra += _also_listen("::1", self.port)

    @property
    def addresses(self) -> list[str]:
        """Where it listens: `127.0.0.1:8976`, and `[::1]:8976` when serving IPv6 too."""
        return [self.target.bind_address] + [f"[::1]:{self.port}" for _ in self._extra]

    @property
    def port(self) -> int:
        return self.target.port

    @property
    def redirect_uri(self) -> str:
        return self.target.uri

    def wait(self, timeout: float) -> CallbackResult:
        """Block until one callback arrives on the exact path, then stop listening (call it once).

        A callback that ended the flow (declined, forged) has had its page; a good one waits for
        `finish()` to say how the exchange went."""
        deadline = time.monotonic() + timeout
        server = self._server
        try:
            with selectors.DefaultSelector() as selector:
                for listening in (server.socket, *self._extra):
                    selector.register(listening, selectors.EVENT_READ)
                selector.register(server.wake_r, selectors.EVENT_READ)
                while (remaining := deadline - time.monotonic()) > 0:
                    for key, _ in selector.select(remaining):
                        if key.fileobj is server.wake_r:
                            outcome = server.outcomes.get_nowait()
                            if isinstance(outcome, AuthError):
                                raise outcome
                            return outcome
                        server.accept(cast(socket.socket, key.fileobj))
        finally:
            self._stop_listening()
        raise AuthError(
            "callback_timeout",
            f"no OAuth callback arrived on {self.redirect_uri} within {timeout:g} s",
            "Finish in the browser sooner or allow more time with --timeout; on a machine whose browser "
            "cannot reach this one, use --paste and paste the final URL from the browser's address bar. "
            + unregistered_redirect_hint(self.redirect_uri),
        )

    def finish(self, error: CxError | None) -> None:
        """The flow's verdict for the browser's page: connected (None), or `error`. Returns once
        the page is sent (or after PAGE_TIMEOUT)."""
        self._server.give_verdict(error)

    def _stop_listening(self) -> None:
        self._server.stop_accepting()
        for listening in self._extra:
            listening.close()

    def close(self) -> None:
        """Stop listening; a callback page still waiting is told cxslack stopped before finishing."""
        self._stop_listening()
        self._server.give_verdict(
            CxError("flow_stopped", "cxslack stopped before the installation finished", _RETRY_HINT)
        )
        self._server.close()

    def __enter__(self) -> LoopbackCallback:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def unregistered_redirect_hint(redirect_uri: str) -> str:
    """What to do when Slack refused the redirect URI (it then shows its own error page and never
    comes back): Slack sends codes only to a Redirect URL registered in the app, matched exactly."""
    return (
        f"If Slack said the redirect_uri did not match any configured URIs, register {redirect_uri} "
        "exactly (scheme, port and path) as a Redirect URL in your Slack app's OAuth & Permissions "
        "settings, or pass a registered one with --redirect-uri."
    )


def _bind_error(target: RedirectTarget, exc: OSError) -> CxError:
    if exc.errno == errno.EADDRINUSE:
        return CxError(
            "port_in_use",
            f"port {target.port} on {target.bind_ip} is already in use by another program",
            "Stop that program, or pass --redirect-uri with another port (and register that URL under "
            "Redirect URLs in the Slack app).",
        )
    return CxError(
        "listen_failed",
        f"cannot listen on {target.bind_address}: {exc.strerror or exc}",
        "Pass --redirect-uri with another loopback address or port (e.g. https://localhost:8976/...).",
    )


def _also_listen(ip: str, port: int) -> list[socket.socket]:
    """A second listening socket on `ip` (the same port), or none when this machine cannot."""
    try:
        extra = socket.create_server((ip, port), family=socket.AF_INET6, reuse_port=False)
    except OSError:  # no IPv6 loopback here, or the port is taken on it: 127.0.0.1 still works
        return []
    extra.setblocking(False)
    return [extra]


_Outcome = CallbackResult | AuthError


class _CallbackServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True  # a stalled browser connection must never keep cxslack alive
    block_on_close = False
    allow_reuse_address = True  # a rerun right after the last one must not trip over TIME_WAIT

    def __init__(self, target: RedirectTarget, expected_state: str, ssl_context: ssl.SSLContext | None):
        self.address_family = socket.AF_INET6 if ":" in target.bind_ip else socket.AF_INET
        super().__init__((target.bind_ip, target.port), _CallbackHandler)
        self.socket.setblocking(False)  # a client that vanishes between select() and accept() must not block
        self.path = target.path
        self.expected_state = expected_state
        self.ssl_context = ssl_context
        self.outcomes: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        self.wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._accepting = True  # until the first callback on the path, or close()
        self._verdict: list[CxError | None] = []  # the flow's verdict, once given
        self._verdict_given = threading.Event()
        self._page_pending = False  # a good callback's page waits for the verdict
        self._page_sent = threading.Event()

    def accept(self, listening: socket.socket) -> None:
        try:
            request, client_address = listening.accept()
        except OSError:
            return
        self.process_request(request, client_address)  # ThreadingMixIn: on its own thread

    def stop_accepting(self) -> None:
        """No new connections (the listening socket closes); accepted ones carry on."""
        with contextlib.suppress(OSError):
            self.socket.close()

    def give_verdict(self, error: CxError | None) -> None:
        with self._lock:
            if self._verdict_given.is_set():
                return
            self._verdict.append(error)
            pending = self._page_pending
        self._verdict_given.set()
        if pending:
            self._page_sent.wait(PAGE_TIMEOUT)

    def verdict_page(self) -> tuple[HTTPStatus, str]:
        """The good callback's page, once the flow says how the exchange went."""
        if not self._verdict_given.wait(VERDICT_TIMEOUT):
            return HTTPStatus.ACCEPTED, pages.still_working_page()
        error = self._verdict[0]
        return (
            (HTTPStatus.OK, pages.success_page())
            if error is None
            else (HTTPStatus.BAD_GATEWAY, pages.error_page(error))
        )

    def page_sent(self) -> None:
        self._page_sent.set()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(CONNECTION_TIMEOUT)
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except OSError:  # the browser refused the certificate (it retries once the user accepts it)
            return
        with conn:
            super().finish_request(conn, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that breaks never matters to the flow, and its traceback would be noise."""

    def answer(self, path: str, query: str) -> tuple[HTTPStatus, str, _Outcome | None]:
        """(status, page, outcome to hand to wait() once the page is sent) for one GET."""
        if path != self.path:
            return HTTPStatus.NOT_FOUND, pages.not_found_page(), None
        with self._lock:
            if not self._accepting:
                return HTTPStatus.BAD_REQUEST, pages.already_used_page(), None
            self._accepting = False
        try:
            result = _evaluate(query, self.expected_state)
        except AuthError as err:
            return HTTPStatus.BAD_REQUEST, pages.error_page(err), err
        with self._lock:
            self._page_pending = True
        return HTTPStatus.OK, "", result  # the page comes from verdict_page()

    def deliver(self, outcome: _Outcome) -> None:
        self.outcomes.put(outcome)
        with contextlib.suppress(OSError):  # wait() has already given up (timeout, Ctrl-C)
            self._wake_w.send(b"\0")

    def close(self) -> None:
        with self._lock:
            self._accepting = False  # connections already accepted now get "already used"
        self.server_close()
        self.wake_r.close()
        self._wake_w.close()


class _CallbackHandler(BaseHTTPRequestHandler):
    server_version = "cxslack"
    sys_version = ""
    timeout = CONNECTION_TIMEOUT

    def do_GET(self) -> None:
        server = cast(_CallbackServer, self.server)
        path, _, query = self.path.partition("?")
        status, page, outcome = server.answer(path, query)
        if isinstance(outcome, CallbackResult):
            server.deliver(outcome)  # the flow exchanges the code while the browser waits
            status, page = server.verdict_page()
            try:
                self._send(status, page)
            finally:
                server.page_sent()
            return
        try:
            self._send(status, page)
        finally:
            # after the page is out, so the browser shows it even if cxslack exits right away
            if outcome is not None:
                server.deliver(outcome)

    def _send(self, status: HTTPStatus, page: str) -> None:
        body = page.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in pages.SECURITY_HEADERS:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        """Never log: the request line carries the authorization code."""
