"""Socket Mode: events over a WebSocket that cxslack opens, for hosts Slack cannot reach.

slack-sdk's built-in client does the protocol: `apps.connections.open` with the app-level
(`xapp-`) token against CXSLACK_SLACK_API_URL, the WebSocket, pings, and reconnecting when Slack
asks or the connection drops. Each `events_api` envelope, and each `interactive` one holding a
button click (`block_actions`), is written to the inbox first and acked after; an envelope the
inbox could not take is not acked, so Slack sends it again.
"""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from typing import Any
from urllib.parse import urlsplit

from cxslack.errors import AuthError, CxError
from cxslack.listen.interactivity import click_envelope
from cxslack.redact import redact
from cxslack.state.interface import EventInbox, InvalidEnvelope

# What apps.connections.open answers when the token is not a working app-level token.
_TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "not_allowed_token_type", "token_revoked"})


# Why Slack sends `disconnect`, and what it means for the operator.
DISCONNECT_REASONS = {
    "warning": "it will close in about 10 seconds; reconnecting",
    "refresh_requested": "a routine refresh; reconnecting",
    "link_disabled": (
        "Socket Mode was turned off in the Slack app's settings, so events now go to its Request "
        "URL: turn Socket Mode back on, or run `cxslack listen --http` behind that URL"
    ),
}


class _LogLines(logging.Handler):
    """The SDK's warnings and errors as redacted lines through the listener's log."""

    def __init__(self, log: Callable[[str], None]):
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log(redact(f"Socket Mode: {record.getMessage()}"))


class SocketModeTransport:
    def __init__(self, app_token: str, api_url: str, inbox: EventInbox, log: Callable[[str], None]):
        from slack_sdk.socket_mode.builtin import SocketModeClient
        from slack_sdk.web import WebClient

        logger = logging.Logger("cxslack.listen.socket_mode", logging.WARNING)  # private: not in the tree
        logger.addHandler(_LogLines(log))
        self.inbox = inbox
        self.log = log
        # One message worker: envelopes reach the inbox in the order Slack sent them.
        self.client = SocketModeClient(
            app_token=app_token, web_client=WebClient(base_url=api_url), logger=logger, concurrency=1
        )
        host = urlsplit(api_url).hostname or ""
        if self.client.proxy and urllib.request.proxy_bypass(host):  # the SDK reads HTTPS_PROXY, not NO_PROXY
            self.client.proxy = None
        self.client.socket_mode_request_listeners.append(self._on_request)
        self.client.on_message_listeners.append(self._on_raw)  # the SDK acts on `disconnect` itself

    def start(self) -> None:
        from slack_sdk.errors import SlackApiError

        try:
            self.client.connect()
        except SlackApiError as exc:
            self.stop()
            error = str(exc.response.get("error") or "unknown_error")
            if error in _TOKEN_ERRORS:
                raise AuthError(
                    "app_token_invalid",
                    f"Slack refused the app-level token ({error})",
                    "Create an app-level token with the connections:write scope on the app's Basic "
                    "Information page and set CXSLACK_SLACK_APP_TOKEN to it.",
                ) from None
            raise CxError("socket_mode_failed", f"apps.connections.open failed: {error}") from None
        except OSError as exc:
            self.stop()
            raise CxError(
                "slack_unreachable",
                f"cannot reach Slack's Web API for Socket Mode: {exc}",
                "Check the network, or CXSLACK_SLACK_API_URL when using the sandbox.",
            ) from None
        if not self.client.is_connected():
            self.stop()
            raise CxError(
                "socket_mode_failed", "the Socket Mode WebSocket did not open (see the lines above)"
            )

    def stop(self) -> None:
        # close() joins threads blocked for up to 3 s (a recv() holding the receive lock) and 1 s
        # (a queue get): shut the socket down and wake the queue first (reconnecting is off by then).
        client = self.client
        client.auto_reconnect_enabled = False
        client.current_session_state.terminated = True
        session = client.current_session
        if session is not None and session.sock is not None:
            with suppress(OSError):
                session.sock.shutdown(socket.SHUT_RDWR)
        client.closed = True
        client.message_queue.put(None)
        client.close()

    def _on_raw(self, message: str) -> None:
        """Say why Slack closes the connection (docs.slack.dev/apis/events-api/using-socket-mode,
        "Disconnect events"); slack-sdk reconnects by itself. `link_disabled` means Socket Mode was
        turned off in the app's settings: reconnecting cannot help, events now go to a Request URL."""
        import json

        if '"disconnect"' not in message[:64]:
            return
        try:
            reason = str(json.loads(message).get("reason") or "unknown")
        except (ValueError, AttributeError):
            return
        why = DISCONNECT_REASONS.get(reason, "reconnecting")
        self.log(f"Socket Mode: Slack is closing the connection ({reason[:40]}): {why}")

    def _on_request(self, client: Any, request: Any) -> None:
        from slack_sdk.socket_mode.response import SocketModeResponse

        envelope = None
        if request.type == "events_api":
            envelope = request.payload
        elif request.type == "interactive" and isinstance(request.payload, dict):
            envelope = click_envelope(request.payload)  # None: not a click (shortcuts, modals)
        if envelope is not None:
            try:
                self.inbox.accept(envelope)
            except InvalidEnvelope:
                self.log("Socket Mode: an events_api envelope without a valid event_id was acked and dropped")
            except OSError as exc:
                self.log(redact(f"Socket Mode: cannot store an event ({exc}); Slack will send it again"))
                return
        # Acked whatever its type: slash commands and other interactions are not cxslack's to answer.
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
