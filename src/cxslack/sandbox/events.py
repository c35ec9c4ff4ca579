"""Slack's Events API, played by the sandbox: what happens in channels, delivered to the app.

Every message created in a channel (people's posts and replies, the bot's chat.postMessage), every
edit and deletion, and every message with http(s) URLs (`link_shared`) becomes an `event_callback`
envelope with a unique `event_id`. It goes out on a delivery thread, never on the request that
caused it, in one of two ways, as the app is configured:

- over HTTP to a request URL: signed like Slack (`X-Slack-Signature` v0 HMAC of `v0:{ts}:{body}`
  with SIGNING_SECRET, `X-Slack-Request-Timestamp`), retried up to 3 times on a non-2xx answer or
  no answer within 3 s, with `X-Slack-Retry-Num` and `X-Slack-Retry-Reason`;
- over Socket Mode: `apps.connections.open` (app-level `xapp-` token) hands out a WebSocket URL;
  the connection gets `hello`, then `events_api` envelopes that must be acked with their
  `envelope_id`, or they are sent again.

Admin routes (JSON, not Slack's API):
  POST /_sandbox/app-token                an app-level token for Socket Mode: {"token": "xapp-…"}
  POST /_sandbox/events/subscribe         {"url": …, "interactivity_url": …} or {"socket_mode": true}, plus options below
  GET  /_sandbox/events                   every delivery with its attempts and outcome
  POST /_sandbox/events/redeliver         {"event_id", "count"}: send a past event (or click, Ia…) again
  POST /_sandbox/events/disconnect        Socket Mode: ask connections to reconnect, as Slack does
  POST /_sandbox/edit                     {channel, ts, text}: a person edits a message
  POST /_sandbox/delete                   {channel, ts}: a person deletes a message
  POST /_sandbox/compose                  {text, user?}: a person types URLs into the composer

Message events reach the app only from channels its bot is a member of; link_shared from any
channel. Setting a request URL sends a signed `url_verification` first: a URL that does not
answer the challenge is refused (400 url_verification_failed), as Slack refuses to save it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import queue
import secrets
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from slack_sdk.signature import SignatureVerifier

from cxslack.sandbox.wire import (
    ADMIN_PREFIX,
    AdminError,
    Body,
    Request,
    Response,
    Router,
    json_route,
    text_field,
)
from cxslack.sandbox.workspace import (
    APP_ID,
    APP_NAME,
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    URL_PATTERN,
    Channel,
    Message,
    Workspace,
)

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection

    from cxslack.sandbox.server import SlackSandbox

# A documented sandbox constant, not a secret: `cxslack sandbox serve` prints it for export.
SIGNING_SECRET = "sandbox-signing-secret"
MAX_RETRIES = 3  # Slack retries a failed delivery three times
KEPT_DELIVERIES = 10_000  # GET /_sandbox/events shows the most recent ones
Transport = Literal["http", "socket"]
Outcome = Literal["pending", "delivered", "failed"]
# What a delivery carries: an Events API envelope, or an interaction payload (a button click,
# interactivity.py) — over Socket Mode the envelope's `type` says which.
Kind = Literal["events_api", "interactive"]
# Which installation an event is for: the app's bot in the sandbox's one workspace.
# The deprecated verification token every Events API request still carries in `token` (apps are
# to check signatures instead: docs.slack.dev/authentication/verifying-requests-from-slack).
VERIFICATION_TOKEN = "sandbox-verification-token"
_AUTHORIZATION = {
    "enterprise_id": None,
    "team_id": TEAM_ID,
    "user_id": BOT_USER_ID,
    "is_bot": True,
    "is_enterprise_install": False,
}


@dataclass
class Subscription:
    """How the app receives events; `POST /_sandbox/events/subscribe` replaces it whole."""

    url: str | None = None  # the Events API request URL
    interactivity_url: str | None = None  # the Interactivity request URL (button clicks)
    socket_mode: bool = False  # deliver over WebSocket instead (apps.connections.open turns it on)
    signing_secret: str = SIGNING_SECRET  # sign with another secret to play a misconfigured app
    timeout: float = 3.0  # seconds Slack waits for the HTTP answer
    retry_delay: float = 0.5  # Slack waits 1 and 5 minutes between retries; the sandbox is quicker
    ack_timeout: float = 3.0  # Socket Mode: an envelope not acked within this is sent again

    @property
    def transport(self) -> Transport | None:
        if self.socket_mode:
            return "socket"
        return "http" if self.url else None

    def transport_for(self, kind: Kind) -> Transport | None:
        if kind == "events_api":
            return self.transport
        return "socket" if self.socket_mode else "http" if self.interactivity_url else None

    def request_url(self, kind: Kind) -> str | None:
        return self.url if kind == "events_api" else self.interactivity_url


@dataclass
class Delivery:
    """One event and every attempt to deliver it."""

    envelope: dict[str, Any]  # for an interaction, its payload
    transport: Transport
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: bool = False  # some attempt got a 2xx or an ack
    sending: int = 0  # attempts (with their automatic retries) not settled yet
    kind: Kind = "events_api"
    ident: str = ""  # an interaction's id in the sandbox (Slack gives payloads none)

    @property
    def outcome(self) -> Outcome:
        return "delivered" if self.delivered else "pending" if self.sending else "failed"

    @property
    def event_id(self) -> str:
        return self.ident or str(self.envelope["event_id"])

    def body(self) -> tuple[bytes, str]:
        """What goes over HTTP: the envelope as JSON, or the payload form-encoded in `payload`."""
        doc = json.dumps(self.envelope, separators=(",", ":"))
        if self.kind == "interactive":
            return urlencode({"payload": doc}).encode(), "application/x-www-form-urlencoded"
        return doc.encode(), "application/json"

    def to_json(self) -> dict[str, Any]:
        event: dict[str, Any] = self.envelope["event"] if self.kind == "events_api" else self.envelope
        return {
            "event_id": self.event_id,
            "type": event["type"],
            "subtype": event.get("subtype"),
            "transport": self.transport,
            "outcome": self.outcome,
            "attempts": list(self.attempts),
            "envelope": self.envelope,
        }


# -- the events, shaped as Slack sends them ------------------------------------------------
def _channel_type(channel: Channel) -> str:
    return "group" if channel.is_private else "channel"


def _message_event(channel: Channel, message: Message) -> dict[str, Any]:
    event = message.to_api(include_metadata=True)
    event.update(channel=channel.id, event_ts=message.ts, channel_type=_channel_type(channel))
    if message.bot_id:
        event["bot_profile"] = {"id": BOT_ID, "app_id": APP_ID, "name": APP_NAME, "team_id": TEAM_ID}
    if message.is_reply:
        assert message.thread_ts is not None
        event["parent_user_id"] = channel.messages[message.thread_ts].user
    return event


def _message_changed(channel: Channel, message: Message, previous: dict[str, Any]) -> dict[str, Any]:
    ts = (message.edited or {}).get("ts") or message.ts
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": channel.id,
        "message": message.to_api(include_metadata=True),
        "previous_message": previous,
        "event_ts": ts,
        "ts": ts,
        "channel_type": _channel_type(channel),
    }


def _message_deleted(channel: Channel, message: Message, ts: str) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": channel.id,
        "deleted_ts": message.ts,
        "previous_message": message.to_api(include_metadata=True),
        "event_ts": ts,
        "ts": ts,
        "channel_type": _channel_type(channel),
    }


def _link_shared(channel: Channel, message: Message, unfurl_id: str, links: list[str]) -> dict[str, Any]:
    """link_shared as docs.slack.dev/reference/events/link_shared shows it. It is sent whether or
    not the bot is in the channel (`is_bot_user_member` says which)."""
    event: dict[str, Any] = {
        "type": "link_shared",
        "channel": channel.id,
        "is_bot_user_member": channel.bot_member,
        "user": message.user,
        "message_ts": message.ts,
        "unfurl_id": unfurl_id,
        "source": "conversations_history",
        "links": [{"url": url, "domain": urlsplit(url).hostname or ""} for url in links],
        "event_ts": message.ts,
    }
    if message.is_reply:
        event["thread_ts"] = message.thread_ts
    return event


def _composer_link_shared(user: str, unfurl_id: str, links: list[str], event_ts: str) -> dict[str, Any]:
    """A link typed into the message composer, not posted yet: the channel is `COMPOSER`, the
    `message_ts` is not a timestamp, and only unfurl_id + source can unfurl it (api.slack.com/
    changelog/2021-08-changes-to-unfurls)."""
    return {
        "type": "link_shared",
        "channel": "COMPOSER",
        "is_bot_user_member": False,
        "user": user,
        "message_ts": f"{user}-{uuid.uuid4()}",
        "unfurl_id": unfurl_id,
        "source": "composer",
        "links": [{"url": url, "domain": urlsplit(url).hostname or ""} for url in links],
        "event_ts": event_ts,
    }


def signed_headers(
    secret: str,
    body: bytes,
    *,
    retry_num: int = 0,
    reason: str = "http_timeout",
    timestamp: int | None = None,
) -> dict[str, str]:
    """An Events API request's headers as Slack sends them: v0 signature of `v0:{ts}:{body}`, and
    the retry headers from the first retry on. Tests and benchmarks sign with this too."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)),
    }
    if retry_num:
        headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": reason})
    return headers


def _verify_request_url(subscription: Subscription) -> None:
    """Slack saves an Events API request URL only after it answers a signed `url_verification`
    request with its `challenge` (as plain text, JSON or a form), within the timeout
    (docs.slack.dev/reference/events/url_verification)."""
    import httpx

    assert subscription.url is not None
    challenge = secrets.token_urlsafe(24)
    doc = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
    body = json.dumps(doc, separators=(",", ":")).encode()
    headers = signed_headers(subscription.signing_secret, body)
    failed = f"{subscription.url} did not answer Slack's url_verification request with its challenge"
    try:
        with httpx.Client(trust_env=False) as client:
            answer = client.post(
                subscription.url, content=body, headers=headers, timeout=subscription.timeout
            )
    except httpx.HTTPError as exc:
        raise AdminError(400, "url_verification_failed", f"{failed} ({type(exc).__name__})") from None
    echoed = {answer.text.strip()} | set(parse_qs(answer.text).get("challenge", []))
    with contextlib.suppress(ValueError):
        reply = answer.json()
        if isinstance(reply, dict):
            echoed.add(str(reply.get("challenge")))
    if not 200 <= answer.status_code < 300 or challenge not in echoed:
        raise AdminError(400, "url_verification_failed", f"{failed} (HTTP {answer.status_code})")


# -- the feed ------------------------------------------------------------------------------
class EventFeed:
    """Turns workspace changes into envelopes and delivers them; `sandbox.events` in tests."""

    def __init__(self, sandbox: SlackSandbox):
        self.sandbox = sandbox
        self.ws = sandbox.workspace
        self._cond = threading.Condition()
        self._serial = itertools.count(1)
        self._jobs: queue.SimpleQueue[tuple[Delivery, int, str, bool] | None] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._stopping = threading.Event()  # cuts a sender's wait between retries short
        self._gateway: SocketGateway | None = None
        self._clear()
        self.ws.observers.append(self.observe)

    def _clear(self) -> None:
        self.subscription = Subscription()
        self._deliveries: OrderedDict[str, Delivery] = OrderedDict()
        self.app_tokens: set[str] = set()

    def register(self, router: Router) -> None:
        routes: list[tuple[str, str, Any]] = [
            ("POST", "app-token", self.issue_app_token),
            ("POST", "events/subscribe", self.subscribe),
            ("GET", "events", lambda body: {**self._mode(), "events": self.deliveries()}),
            ("POST", "events/redeliver", self.redeliver),
            ("POST", "events/disconnect", self.disconnect),
            ("POST", "edit", self.edit),
            ("POST", "delete", self.delete),
            ("POST", "compose", self.compose),
        ]
        for verb, name, action in routes:
            router.add(verb, ADMIN_PREFIX + name, json_route(verb, action))
        router.add("POST", "/api/apps.connections.open", self.connections_open)

    # -- lifecycle --------------------------------------------------------------------------
    def reset(self) -> None:
        """No subscription, no app tokens, no history; open WebSockets are closed."""
        with self._cond:
            self._clear()
            self._cond.notify_all()
        if self._gateway is not None:
            self._gateway.drop_all()

    def stop(self) -> None:
        if self._sender is not None:
            self._stopping.set()
            self._jobs.put(None)
            self._sender.join()
            self._sender = None
            self._stopping = threading.Event()
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None

    # -- producing events (called by the workspace, under its lock) -------------------------
    def observe(self, change: str, channel: Channel, message: Message, **detail: Any) -> None:
        transport = self.subscription.transport
        if transport is None:  # nobody listens: cost nothing
            return
        if change != "link_shared" and not channel.bot_member:
            # message.channels / message.groups reach an app only for channels its bot is in
            # (docs.slack.dev/reference/events/message.channels): posting with chat:write.public
            # does not make it a member, conversations.join or an /invite does.
            return
        if change == "message":
            event = _message_event(channel, message)
        elif change == "message_changed":
            event = _message_changed(channel, message, detail["previous"])
        elif change == "message_deleted":
            event = _message_deleted(channel, message, detail["ts"])
        else:
            event = _link_shared(channel, message, detail["unfurl_id"], detail["links"])
        self._deliver(transport, event)

    def _deliver(self, transport: Transport, event: dict[str, Any]) -> None:
        delivery = Delivery(self._envelope(event), transport)
        with self._cond:
            self._deliveries[delivery.event_id] = delivery
            while len(self._deliveries) > KEPT_DELIVERIES:
                self._deliveries.popitem(last=False)
        self._dispatch(delivery, 0, "", True)

    def _envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        """The outer event_callback as docs.slack.dev/apis/events-api shows it: `token`, ids,
        `authorizations`, `is_ext_shared_channel` and the opaque `event_context`."""
        context = {"et": event.get("type"), "tid": TEAM_ID, "aid": APP_ID, "cid": event.get("channel")}
        event_context = "4-" + base64.urlsafe_b64encode(json.dumps(context).encode()).decode().rstrip("=")
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "context_team_id": TEAM_ID,
            "context_enterprise_id": None,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{next(self._serial):06d}{secrets.token_hex(4).upper()}",
            "event_time": int(self.sandbox.clock.time()),
            "authorizations": [dict(_AUTHORIZATION)],
            "is_ext_shared_channel": False,
            "event_context": event_context,
        }

    def deliver_interaction(self, payload: dict[str, Any]) -> Delivery | None:
        """Send an interaction payload (a click) the way the app receives them: to the
        Interactivity request URL, which Slack does not retry (the person sees an error instead),
        or over Socket Mode, where an envelope not acked is sent again. None when the app has
        neither: the click goes nowhere."""
        transport = self.subscription.transport_for("interactive")
        if transport is None:
            return None
        ident = f"Ia{next(self._serial):06d}{secrets.token_hex(4).upper()}"
        delivery = Delivery(payload, transport, kind="interactive", ident=ident)
        with self._cond:
            self._deliveries[delivery.event_id] = delivery
            while len(self._deliveries) > KEPT_DELIVERIES:
                self._deliveries.popitem(last=False)
        self._dispatch(delivery, 0, "", transport == "socket")
        return delivery

    def _dispatch(self, delivery: Delivery, retry_num: int, reason: str, retry: bool) -> None:
        """Hand one attempt to its transport; `retry` lets a failed attempt be retried automatically."""
        with self._cond:
            delivery.sending += 1
            if delivery.transport == "http" and self._sender is None:
                self._sender = threading.Thread(
                    target=self._send_http, args=(self._stopping,), name="slack-sandbox-events", daemon=True
                )
                self._sender.start()
        if delivery.transport == "socket":
            self._ensure_gateway().send(delivery, retry_num, reason, retry)
        else:
            self._jobs.put((delivery, retry_num, reason, retry))

    # -- bookkeeping (both transports) ------------------------------------------------------
    def record(
        self, delivery: Delivery, attempt: dict[str, Any], *, delivered: bool = False, settled: bool = False
    ) -> None:
        """Note an attempt; `settled` ends one dispatch (delivered, or out of retries)."""
        with self._cond:
            if attempt:
                delivery.attempts.append({"at": round(time.time(), 3), **attempt})
            delivery.delivered |= delivered
            if settled:
                delivery.sending -= 1
                self._cond.notify_all()

    def deliveries(self) -> list[dict[str, Any]]:
        with self._cond:
            return [d.to_json() for d in self._deliveries.values()]

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until no delivery is pending (tests); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not any(d.sending for d in self._deliveries.values()), timeout)

    # -- HTTP delivery ------------------------------------------------------------------------
    def _send_http(self, stopping: threading.Event) -> None:
        import httpx

        with httpx.Client(trust_env=False) as client:
            while (job := self._jobs.get()) is not None:
                delivery, retry_num, reason, retry = job
                last = retry_num + (MAX_RETRIES if retry else 0)
                while True:
                    reason = self._post(client, delivery, retry_num, reason)
                    if not reason or retry_num >= last or stopping.wait(self.subscription.retry_delay):
                        break
                    retry_num += 1
                self.record(delivery, {}, settled=True)

    def _post(self, client: Any, delivery: Delivery, retry_num: int, reason: str) -> str:
        """One signed POST; "" when acknowledged, else the retry reason Slack would send next."""
        import httpx

        sub = self.subscription
        url = sub.request_url(delivery.kind)
        if url is None:
            self.record(delivery, {"retry_num": retry_num, "error": "no_request_url"})
            return "http_error"
        body, content_type = delivery.body()
        headers = signed_headers(sub.signing_secret, body, retry_num=retry_num, reason=reason)
        headers["Content-Type"] = content_type
        attempt: dict[str, Any] = {"retry_num": retry_num}
        try:
            status = client.post(url, content=body, headers=headers, timeout=sub.timeout).status_code
        except httpx.TimeoutException:
            self.record(delivery, {**attempt, "error": "timeout"})
            return "http_timeout"
        except httpx.HTTPError:
            self.record(delivery, {**attempt, "error": "connection_failed"})
            return "http_error"
        ok = 200 <= status < 300
        self.record(delivery, {**attempt, "status": status}, delivered=ok)
        return "" if ok else "http_error"

    # -- Socket Mode --------------------------------------------------------------------------
    def _ensure_gateway(self) -> SocketGateway:
        with self._cond:
            if self._gateway is None:
                self._gateway = SocketGateway(self.sandbox.host, self)
            return self._gateway

    def connections_open(self, request: Request) -> Response:
        """apps.connections.open: a single-use WebSocket URL for an app-level token."""
        stopped = self.sandbox.traffic.gate("apps.connections.open")
        if stopped is not None:
            return stopped
        token = request.bearer_token() or request.body_token() or ""
        if token not in self.app_tokens:
            with self.ws.lock:
                wrong_kind = token in self.ws.tokens  # a bot or user token
            error = "not_allowed_token_type" if wrong_kind else "invalid_auth" if token else "not_authed"
            return Response.json(200, {"ok": False, "error": error})
        from importlib.util import find_spec

        if find_spec("websockets") is None:  # an optional extra: `sandbox demo` does without it
            return Response.json(200, {"ok": False, "error": "socket_mode_unavailable",
                                       "detail": "pip install 'cxslack[sandbox-socket-mode]' for the sandbox's Socket Mode"})  # fmt: skip
        with self._cond:
            self.subscription.socket_mode = True  # an app that connects has Socket Mode turned on
        return Response.json(200, {"ok": True, "url": self._ensure_gateway().open_url()})

    # -- admin actions --------------------------------------------------------------------------
    def issue_app_token(self, body: Body) -> Body:
        """An app-level token with connections:write, like the one made on the app's Basic Information page."""
        token = f"xapp-1-{APP_ID}-{next(self._serial)}-{secrets.token_hex(32)}"
        with self._cond:
            self.app_tokens.add(token)
        return {"token": token}

    def compose(self, body: Body) -> Body:
        """A person types {text} with URLs into the message composer (not posted yet): Slack sends
        link_shared from the `COMPOSER`, to be unfurled by unfurl_id + source only."""
        text = text_field(body, "text")
        user = body.get("user") or "U0BOB"
        links = URL_PATTERN.findall(text)
        if not links:
            raise AdminError(400, "no_links", "text has no http(s) URL")
        with self.ws.lock:
            if user not in self.ws.users:
                raise AdminError(404, "user_not_found", f"no person {user!r}")
            unfurl_id = f"COMPOSER.{secrets.token_hex(16)}"
            event = _composer_link_shared(str(user), unfurl_id, links, self.ws.next_ts())
            self.ws.offer_links(unfurl_id, ("COMPOSER", event["message_ts"]), links)
            transport = self.subscription.transport
            if transport is not None:
                self._deliver(transport, event)
        return {"unfurl_id": unfurl_id, "message_ts": event["message_ts"], "links": links}

    def subscribe(self, body: Body) -> Body:
        unknown = set(body) - {f.name for f in fields(Subscription)}
        if unknown:
            raise AdminError(400, "unknown_setting", ", ".join(sorted(unknown)))
        subscription = replace(Subscription(), **body)
        url, secret = subscription.url, subscription.signing_secret
        for name, value in (("url", url), ("interactivity_url", subscription.interactivity_url)):
            if value is not None and not (
                isinstance(value, str) and urlsplit(value).scheme in ("http", "https")
            ):
                raise AdminError(400, "invalid_url", f"{name} must be an http(s) URL")
        seconds = (subscription.timeout, subscription.retry_delay, subscription.ack_timeout)
        if not (
            isinstance(subscription.socket_mode, bool)
            and isinstance(secret, str)
            and secret.strip()
            and all(isinstance(n, int | float) and not isinstance(n, bool) and n >= 0 for n in seconds)
        ):
            raise AdminError(400, "invalid_setting", "socket_mode: a boolean; signing_secret: a non-empty "
                             "string; timeout, retry_delay, ack_timeout: seconds >= 0")  # fmt: skip
        if url is not None:
            _verify_request_url(subscription)
        with self._cond:
            self.subscription = subscription
        return self._mode()

    def _mode(self) -> Body:
        sub = asdict(self.subscription)
        del sub["signing_secret"]
        return {"transport": self.subscription.transport, "subscription": sub}

    def redeliver(self, body: Body) -> Body:
        """Send a past event again `count` times, as Slack does when it thinks an ack timed out."""
        count = body.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100:
            raise AdminError(400, "invalid_arguments", "count must be an integer from 1 to 100")
        with self._cond:
            delivery = self._deliveries.get(text_field(body, "event_id"))
            if delivery is None:
                raise AdminError(404, "event_not_found", f"no delivered event {body['event_id']!r}")
            first = len(delivery.attempts)
        reason = "timeout" if delivery.transport == "socket" else "http_timeout"
        for n in range(count):
            self._dispatch(delivery, first + n, reason, False)
        return {"event_id": delivery.event_id, "redelivered": count}

    def disconnect(self, body: Body) -> Body:
        gateway = self._gateway
        return {"connections": gateway.disconnect_all() if gateway else 0}

    def edit(self, body: Body) -> Body:
        """A person edits a message: Slack sends message_changed with the previous version."""
        with self.ws.lock:
            channel, message = admin_message(self.ws, body)
            previous = message.to_api(include_metadata=True)
            message.text = text_field(body, "text")
            message.edited = {"user": message.user, "ts": self.ws.next_ts()}
            self.ws.notify("message_changed", channel, message, previous=previous)
            return {"channel": channel.id, "ts": message.ts}

    def delete(self, body: Body) -> Body:
        """A message is deleted: Slack sends message_deleted. A thread parent with replies is refused
        (Slack would keep a tombstone, which the sandbox does not model)."""
        with self.ws.lock:
            channel, message = admin_message(self.ws, body)
            if message.replies:
                raise AdminError(409, "has_replies", "delete the thread's replies first")
            del channel.messages[message.ts]
            if message.is_reply:
                assert message.thread_ts is not None
                channel.messages[message.thread_ts].replies.remove(message.ts)
            self.ws.unfurls.pop((channel.id, message.ts), None)
            self.ws.notify("message_deleted", channel, message, ts=self.ws.next_ts())
            return {"channel": channel.id, "ts": message.ts}


def admin_message(ws: Workspace, body: Body) -> tuple[Channel, Message]:
    """The message an admin body names by `channel` (an ID or a name) and `ts` (callers hold the
    workspace's lock)."""
    channel = ws.channel(text_field(body, "channel"))
    if channel is None:
        raise AdminError(404, "channel_not_found", f"no channel {body['channel']!r}")
    message = channel.messages.get(text_field(body, "ts"))
    if message is None:
        raise AdminError(404, "message_not_found", f"no message {body['ts']} in {channel.name}")
    return channel, message


@dataclass
class _Envelope:
    """One Socket Mode send of a delivery, waiting for its ack."""

    delivery: Delivery
    retry_num: int
    reason: str
    retry: bool
    envelope_id: str = ""
    connection: ServerConnection | None = None
    timer: asyncio.TimerHandle | None = None


class SocketGateway:
    """Socket Mode's server side: a WebSocket server on its own event loop thread.

    Its state is touched only on that loop (tickets aside: they have a lock); other threads call
    in through the loop. Events go to the newest connection; with none open they wait.
    """

    def __init__(self, host: str, feed: EventFeed):
        self._feed = feed
        self._host = host
        self._tickets: set[str] = set()
        self._tickets_lock = threading.Lock()
        self._connections: list[ServerConnection] = []
        self._waiting: deque[_Envelope] = deque()
        self._unacked: dict[str, _Envelope] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="slack-sandbox-socket", daemon=True
        )
        self._thread.start()
        self._server: Server = self._run(self._listen())
        self.port = self._server.sockets[0].getsockname()[1]

    async def _listen(self) -> Server:
        from websockets.asyncio.server import serve

        # no compression and no server pings: slack-sdk's built-in client pings us instead
        return await serve(
            self._session,
            self._host,
            0,
            process_request=self._check_ticket,
            compression=None,
            ping_interval=None,
        )

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    # -- called from other threads ------------------------------------------------------------
    def open_url(self) -> str:
        ticket = secrets.token_urlsafe(16)
        with self._tickets_lock:
            self._tickets.add(ticket)
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"ws://{host}:{self.port}/link/?ticket={ticket}&app_id={APP_ID}"

    def send(self, delivery: Delivery, retry_num: int, reason: str, retry: bool) -> None:
        self._loop.call_soon_threadsafe(self._send, _Envelope(delivery, retry_num, reason, retry))

    def disconnect_all(self) -> int:
        return int(self._run(self._disconnect_all()))

    def drop_all(self) -> None:
        self._run(self._drop_all())

    def stop(self) -> None:
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    # -- on the loop ----------------------------------------------------------------------------
    def _check_ticket(self, connection: ServerConnection, request: Any) -> Any:
        tickets = parse_qs(urlsplit(request.path).query).get("ticket", [])
        with self._tickets_lock:
            valid = bool(tickets) and tickets[0] in self._tickets
            self._tickets.discard(tickets[0] if tickets else "")
        return None if valid else connection.respond(401, "invalid or used ticket\n")

    async def _session(self, connection: ServerConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        hello = {
            "type": "hello",
            "num_connections": len(self._connections) + 1,
            "debug_info": {"host": "sandbox", "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID},
        }
        try:
            await connection.send(json.dumps(hello))
            self._connections.append(connection)
            while self._waiting:
                self._send(self._waiting.popleft())
            async for raw in connection:
                self._ack(raw)
        except ConnectionClosed:
            pass
        finally:
            if connection in self._connections:
                self._connections.remove(connection)
            for item in [i for i in self._unacked.values() if i.connection is connection]:
                self._expire(item.envelope_id)  # unacked on a lost connection: send again elsewhere

    def _send(self, item: _Envelope) -> None:
        if not self._connections:
            self._waiting.append(item)
            return
        item.connection = self._connections[-1]
        item.envelope_id = str(uuid.uuid4())
        timeout = self._feed.subscription.ack_timeout
        item.timer = self._loop.call_later(timeout, self._expire, item.envelope_id)
        self._unacked[item.envelope_id] = item
        message = {
            "envelope_id": item.envelope_id,
            "type": item.delivery.kind,
            "payload": item.delivery.envelope,
            "accepts_response_payload": False,
            "retry_attempt": item.retry_num,
            "retry_reason": item.reason,
        }
        self._feed.record(item.delivery, {"retry_num": item.retry_num, "envelope_id": item.envelope_id})
        self._loop.create_task(self._transmit(item.connection, json.dumps(message)))

    @staticmethod
    async def _transmit(connection: ServerConnection, message: str) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):  # the session's cleanup sends it again
            await connection.send(message)

    def _ack(self, raw: str | bytes) -> None:
        try:
            envelope_id = json.loads(raw).get("envelope_id")
        except (ValueError, AttributeError):
            return
        item = self._unacked.pop(str(envelope_id), None)
        if item is None:
            return
        if item.timer is not None:
            item.timer.cancel()
        self._feed.record(item.delivery, {"acked": item.envelope_id}, delivered=True, settled=True)

    def _expire(self, envelope_id: str) -> None:
        item = self._unacked.pop(envelope_id, None)
        if item is None:
            return
        if item.timer is not None:
            item.timer.cancel()
        if item.retry and item.retry_num < MAX_RETRIES:
            self._send(_Envelope(item.delivery, item.retry_num + 1, "timeout", True))
        else:
            self._feed.record(item.delivery, {}, settled=True)

    async def _disconnect_all(self) -> int:
        """Slack's `disconnect` then close (Slack waits a few seconds; the sandbox does not): clients
        reconnect, events sent meanwhile wait for the new connection, unacked ones are sent again."""
        message = {"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "sandbox"}}
        leaving, self._connections = self._connections, []
        for connection in leaving:
            await self._transmit(connection, json.dumps(message))
            await connection.close()
        return len(leaving)

    async def _shutdown(self) -> None:
        await self._drop_all()
        self._server.close()
        await self._server.wait_closed()

    async def _drop_all(self) -> None:
        for item in self._unacked.values():
            if item.timer is not None:
                item.timer.cancel()
        self._unacked.clear()
        self._waiting.clear()
        with self._tickets_lock:
            self._tickets.clear()
        for connection in list(self._connections):
            await connection.close()
