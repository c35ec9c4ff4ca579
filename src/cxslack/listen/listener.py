"""Listener: the inbox, its worker and one transport, started and stopped together.

    with Listener(handler, open_state(store).open_inbox(), signing_secret=secret) as listener:
        port = listener.serve_http("127.0.0.1", 0)
        ...                          # events posted to http://127.0.0.1:{port}/slack/events
        listener.drain(timeout=5)    # wait until every accepted event is processed

`stop()` is the graceful shutdown: the transport stops taking events, the handler in progress
finishes, the rest stay on disk and are processed first on the next start.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from cxslack.listen.http import EventsServer
from cxslack.listen.socket_mode import SocketModeTransport
from cxslack.listen.worker import EventHandler, Log, Worker
from cxslack.state.interface import EventInbox


def _quiet(line: str) -> None:
    """No log unless the caller wants one: `cxslack listen` passes its renderer's."""


class Listener:
    def __init__(
        self,
        handler: EventHandler,
        inbox: EventInbox,
        *,
        signing_secret: str | None = None,
        app_token: str | None = None,
        api_url: str = "https://slack.com/api/",
        once: bool = False,
        log: Log = _quiet,
        backoff: float = 0.5,
        backoff_cap: float = 5.0,
    ):
        self.signing_secret, self.app_token, self.api_url = signing_secret, app_token, api_url
        self.once = once
        self.log = log
        self.inbox = inbox
        self.worker = Worker(
            self.inbox, handler, log, backoff=backoff, backoff_cap=backoff_cap, on_finished=self._finished
        )
        # Set by stop(), by --once after the first event, or by whoever runs the listener (signals).
        self.done = threading.Event()
        self.transport = ""
        self._http: EventsServer | None = None
        self._socket: SocketModeTransport | None = None
        self._started = time.monotonic()
        self._stopped = False

    # -- transports ------------------------------------------------------------------------------
    def serve_http(self, host: str, port: int) -> int:
        """Serve the Events API on host:port (0 picks a free port); returns the bound port."""
        if not self.signing_secret:
            raise ValueError("serving the Events API over HTTP needs the signing secret")
        self._http = EventsServer(host, port, self.signing_secret, self.inbox, self.health, self.log)
        self.transport = "http"
        self._http.start()
        self.worker.start()
        return self._http.port

    def serve_socket_mode(self) -> None:
        """Connect to Slack over Socket Mode with the app-level token; raises CxError if it cannot."""
        if not self.app_token:
            raise ValueError("Socket Mode needs an app-level (xapp-) token")
        self._socket = SocketModeTransport(self.app_token, self.api_url, self.inbox, self.log)
        self._socket.start()
        self.transport = "socket-mode"
        self.worker.start()

    # -- running ---------------------------------------------------------------------------------
    def _finished(self) -> None:
        if self.once:
            self.done.set()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every accepted event is processed (tests, benchmarks); False on timeout."""
        return self.inbox.drain(timeout)

    def health(self) -> dict[str, Any]:
        """What /healthz answers: counts and times, never a secret or event content. `status` is
        "unavailable" (and /healthz 503) while the event store cannot be reached: a load balancer
        then sends Slack's deliveries to a replica that can store them."""
        inbox = self.inbox
        storage = inbox.storage()
        last = inbox.last_done_at
        if not storage.get("ok"):
            status = "unavailable"
        else:
            status = "retrying" if self.worker.failed_attempts else "ok"
        depth: int | None = None
        if storage.get("ok"):
            try:
                depth = inbox.depth
            except OSError:  # gone between the two questions
                status = "unavailable"
        return {
            "status": status,
            "transport": self.transport,
            "uptime_seconds": round(time.monotonic() - self._started, 1),
            "storage": storage,
            "inbox_depth": depth,
            "processed": inbox.processed,
            "dead_lettered": inbox.dead_lettered,
            "duplicates": inbox.duplicates,
            "retries_received": self._http.retries_received if self._http else 0,
            "clicks_received": self._http.clicks_received if self._http else 0,
            "rate_limited_notices": self._http.rate_limited_notices if self._http else 0,
            "failed_attempts": self.worker.failed_attempts,
            "last_event_at": datetime.fromtimestamp(last, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if last
            else None,
        }

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop taking events, let the handler in progress finish (up to `timeout`), close the inbox.
        False when the handler was still busy: its event is processed again on the next start."""
        if self._stopped:
            return True
        self._stopped = True
        if self._http is not None:
            self._http.stop()
        if self._socket is not None:
            self._socket.stop()
        finished = self.worker.stop(timeout)
        self.inbox.close()
        self.done.set()
        return finished

    def __enter__(self) -> Listener:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
