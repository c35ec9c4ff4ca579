"""`cxslack listen`: receive Slack events and hand them to cxslack's event handlers."""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cxslack.cli.common import StateUrlOpt, single_command
from cxslack.cli.render import say
from cxslack.errors import CxError, UsageError
from cxslack.redact import register_secret

if TYPE_CHECKING:
    from cxslack.listen import Listener
    from cxslack.state.interface import EventInbox

DEFAULT_HTTP = "127.0.0.1:3000"
SIGNING_SECRET_ENV = "CXSLACK_SLACK_SIGNING_SECRET"
APP_TOKEN_ENV = "CXSLACK_SLACK_APP_TOKEN"

app = single_command()


@app.command()
def listen(
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            metavar="HOST:PORT",
            help="Serve the Events API at http://HOST:PORT/slack/events and button clicks at "
            f"/slack/interactivity, with /healthz (default {DEFAULT_HTTP}).",
            show_default=False,
        ),
    ] = None,
    socket_mode: Annotated[
        bool,
        typer.Option(
            "--socket-mode",
            help=f"Connect out to Slack over Socket Mode instead (behind a firewall); needs {APP_TOKEN_ENV}.",
        ),
    ] = False,
    once: Annotated[
        bool, typer.Option("--once", help="Exit after the first event is processed (tests and smoke checks).")
    ] = False,
    signing_secret_stdin: Annotated[
        bool,
        typer.Option(
            "--signing-secret-stdin", help=f"Read the signing secret from stdin, not {SIGNING_SECRET_ENV}."
        ),
    ] = False,
    state_url: StateUrlOpt = None,
) -> None:
    """Receive Slack events and clicks on Case buttons, and process them until Ctrl-C or SIGTERM.

    Each event or click is stored before Slack gets its answer, then processed once and in arrival
    order; a click acts in Coralogix as the person who clicked (see `cxslack coralogix configure
    --team-id`).

    Slack's retries are recognised by event id; a Slack or Coralogix outage is retried until it ends.

    With --state-url, any number of replicas share one PostgreSQL database: each event is stored
    and handled once whichever replica Slack reaches, and a replica that dies leaves its work to
    the others.
    """
    from cxslack.listen import Listener
    from cxslack.slack.client import api_url
    from cxslack.state import open_state

    if socket_mode and (http is not None or signing_secret_stdin):
        raise UsageError(
            "conflicting_options",
            "--socket-mode receives events over a WebSocket: --http and --signing-secret-stdin do not apply",
        )
    if socket_mode:
        app_token, signing_secret, address = _app_token(), None, None
    else:
        app_token, signing_secret, address = None, _signing_secret(signing_secret_stdin), _address(http)

    from cxslack.events import make_handler  # the event handlers load only when something listens
    from cxslack.registry import Registry

    registry = Registry()
    listener = Listener(
        make_handler(registry),
        open_state(registry.store).open_inbox(),
        signing_secret=signing_secret,
        app_token=app_token,
        api_url=api_url(),
        once=once,
        log=say,
    )
    storage = listener.inbox.storage()
    if storage.get("backend") == "postgresql":
        say(f"Events and shared state in {storage.get('database')}, with any other replica using it.")
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: listener.done.set()) for sig in stop_signals}
    try:
        waiting = listener.inbox.depth
        _start(listener, address)
        if waiting:
            say(f"{waiting} event(s) from an earlier run are waiting: processing them first.")
        listener.done.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        finished = listener.stop()
    if not finished:
        say("The handler did not finish in time: its event is processed again on the next start.")
    inbox = listener.inbox
    say(
        f"Stopped: {inbox.processed} handled, {inbox.dead_lettered} dead-lettered, {_waiting(inbox)} waiting for the next start."
    )


def _waiting(inbox: EventInbox) -> str:
    """How many events wait, for the last line: a database gone by now must not turn a clean stop
    into an error (what waits is kept there either way)."""
    try:
        return str(inbox.depth)
    except OSError:
        return "an unknown number of"


def _start(listener: Listener, address: tuple[str, int] | None) -> None:
    if address is None:
        listener.serve_socket_mode()
        say("Connected to Slack over Socket Mode; waiting for events (Ctrl-C to stop).")
        return
    host, port = address
    try:
        port = listener.serve_http(host, port)
    except OSError as exc:
        raise CxError(
            "listen_bind_failed",
            f"cannot listen on {host} port {port}: {exc.strerror or exc}",
            "Pick another --http HOST:PORT (port 0 picks a free one).",
        ) from None
    base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    say(
        f"Listening for Slack events on {base}/slack/events and button clicks on {base}/slack/interactivity "
        f"(health: {base}/healthz); Ctrl-C to stop."
    )


def _address(value: str | None) -> tuple[str, int]:
    """HOST:PORT (`[::1]:3000` for IPv6); a host other than loopback is allowed, with a warning."""
    from cxslack.hosts import is_loopback, is_valid_host

    host, sep, port_text = (DEFAULT_HTTP if value is None else value).rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    port_ok = port_text.isascii() and port_text.isdigit() and int(port_text) <= 65535
    if not sep or not is_valid_host(host) or (":" in host) != bracketed or not port_ok:
        raise UsageError(
            "invalid_address",
            f"--http takes HOST:PORT (a port from 0 to 65535), not {value!r}",
            f"For example: {DEFAULT_HTTP} (the default), or [::1]:3000 for IPv6.",
        )

    if not is_loopback(host):
        say(
            f"Warning: listening on {host}, reachable from other machines. Slack only sends to https:// "
            "request URLs: put a TLS-terminating proxy in front of this port."
        )
    return host, int(port_text)


def _signing_secret(from_stdin: bool) -> str:
    secret = sys.stdin.readline().strip() if from_stdin else os.environ.get(SIGNING_SECRET_ENV, "").strip()
    if not secret:
        where = "nothing was read from stdin" if from_stdin else f"{SIGNING_SECRET_ENV} is not set"
        raise UsageError(
            "missing_signing_secret",
            f"the Events API needs the app's signing secret to verify Slack's requests: {where}",
            f"Copy it from the app's Basic Information page into {SIGNING_SECRET_ENV}, or pass "
            "--signing-secret-stdin.",
        )
    register_secret(secret)
    return secret


def _app_token() -> str:
    token = os.environ.get(APP_TOKEN_ENV, "").strip()
    register_secret(token)
    if not token.startswith("xapp-"):
        problem = "is not set" if not token else "is not an app-level token (xapp-…)"
        raise UsageError(
            "missing_app_token",
            f"Socket Mode needs an app-level token: {APP_TOKEN_ENV} {problem}",
            "Create one with the connections:write scope on the app's Basic Information page.",
        )
    return token
