"""Slack interactivity, played by the sandbox: a person clicks a button, the app answers that person.

- A click (`POST /_sandbox/click`) on a button of a message becomes a `block_actions` payload
  shaped as Slack sends it (api.slack.com/reference/interaction-payloads/block-actions-payload):
  who clicked (`user` with their own `team_id`: a Slack Connect guest's is another team's), the
  workspace it happened in (`team`), the `container` and `channel`, the `message` with its
  blocks, the `actions` (action_id, block_id, value, the button's text, `action_ts`), a
  `trigger_id` and a `response_url`. It goes to the Interactivity request URL, form-encoded in
  `payload` and signed like Events API requests, or over Socket Mode in an envelope of type
  `interactive` (events.py delivers both). A button with a `confirm` dialog only sends the
  payload when the person confirms (`"confirm": false` plays pressing the dialog's deny).
  Only a button that is on the message can be clicked.
- `chat.postEphemeral` (scope chat:write, api.slack.com/methods/chat.postEphemeral): a message
  only `user` sees in `channel` (an ID or a name); the bot must be able to post there, as for
  chat.postMessage. Every person is taken to be a member of every channel.
- The `response_url` of a click (api.slack.com/interactivity/handling#message_responses): JSON
  posts, at most 5 within 30 minutes; `replace_original` (which Slack assumes when a post says
  neither it nor `delete_original`, so an answer meant for one person must say
  `"replace_original": false`) replaces the clicked message, `delete_original` deletes it,
  `response_type: "in_channel"` posts to the channel, anything else is ephemeral to the person
  who clicked.

Admin routes (JSON, not Slack's API):
  POST /_sandbox/click        {channel, ts, action_id, user?, confirm?}: a person clicks a button
  GET  /_sandbox/ephemeral    ?user=&channel=: ephemeral messages, by chat.postEphemeral or response_url
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cxslack.sandbox import slack_api
from cxslack.sandbox.events import admin_message
from cxslack.sandbox.slack_api import Params, SlackError, api_method
from cxslack.sandbox.wire import (
    ADMIN_PREFIX,
    AdminError,
    BadRequest,
    Body,
    Request,
    Response,
    Router,
    json_route,
    text_field,
)
from cxslack.sandbox.workspace import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    Channel,
    Message,
    Token,
    User,
    Workspace,
)

if TYPE_CHECKING:
    from cxslack.sandbox.server import SlackSandbox

RESPONSE_PATH = "/actions/"  # Slack's are https://hooks.slack.com/actions/T…/…/…
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60


@api_method("chat.postEphemeral")
def chat_post_ephemeral(
    ws: Workspace, params: Params, token: Token, channel: Channel | None
) -> dict[str, Any]:
    channel = slack_api._writable(channel, token)
    user = ws.users.get(str(params.get("user") or ""))
    if user is None or user.is_bot:
        raise SlackError("user_not_in_channel")
    text, blocks = slack_api._text(params), slack_api._blocks(params)
    if not (text or blocks):
        raise SlackError("no_text")
    ts = ws.next_ts()
    ws.ephemeral.append({"channel": channel.id, "user": user.id, "ts": ts, "text": text, "blocks": blocks,
                         "thread_ts": params.get("thread_ts") or None, "via": "chat.postEphemeral"})  # fmt: skip
    return {"message_ts": ts}


@dataclass
class ResponseUrl:
    """A click's response_url: whom it answers, for which message, and how often it was used."""

    channel: str
    message_ts: str
    user: str
    issued_at: float
    uses: int = 0


@dataclass
class Interactivity:
    sandbox: SlackSandbox
    lock: threading.Lock = field(default_factory=threading.Lock)
    response_urls: dict[str, ResponseUrl] = field(default_factory=dict)

    @property
    def ws(self) -> Workspace:
        return self.sandbox.workspace

    def reset(self) -> None:
        with self.lock:
            self.response_urls.clear()

    def register(self, router: Router) -> None:
        router.add("POST", ADMIN_PREFIX + "click", json_route("POST", self.click))
        router.add("GET", ADMIN_PREFIX + "ephemeral", json_route("GET", self.ephemeral))
        router.add("POST", RESPONSE_PATH, self.respond)

    # -- a person clicks ----------------------------------------------------------------------
    def click(self, body: Body) -> Body:
        confirm = body.get("confirm", True)
        if not isinstance(confirm, bool):
            raise AdminError(400, "invalid_arguments", "confirm is true (confirm the dialog) or false (deny)")
        with self.ws.lock:
            channel, message = admin_message(self.ws, body)
            user = self._person(body.get("user") or "U0BOB")
            found = _button(message, text_field(body, "action_id"))
            if found is None:
                raise AdminError(
                    404, "button_not_found", f"message {message.ts} has no button {body['action_id']!r}"
                )
            block_id, button = found
            if button.get("confirm") and not confirm:
                return {"sent": False, "reason": "the person denied the confirm dialog"}
            token = f"T{secrets.token_hex(4).upper()}/{secrets.token_hex(6)}/{secrets.token_urlsafe(18)}"
            with self.lock:
                self.response_urls[token] = ResponseUrl(
                    channel.id, message.ts, user.id, self.sandbox.clock.time()
                )
            payload = _payload(channel, message, user, block_id, button, self.ws.next_ts(),
                               f"{self.sandbox.url}{RESPONSE_PATH}{token}")  # fmt: skip
        delivery = self.sandbox.events.deliver_interaction(payload)
        return {"sent": delivery is not None, "delivery": delivery.event_id if delivery else None,
                "payload": payload}  # fmt: skip

    def _person(self, ref: Any) -> User:
        user = (self.ws.users.get(ref) or self.ws.user_by_email(ref)) if isinstance(ref, str) else None
        if user is None or user.is_bot:
            raise AdminError(404, "user_not_found", f"no person {ref!r}")
        return user

    def ephemeral(self, body: Body) -> Body:
        with self.ws.lock:
            found = [e for e in self.ws.ephemeral
                     if body.get("user") in (None, e["user"]) and body.get("channel") in (None, e["channel"])]  # fmt: skip
            return {"ephemeral": json.loads(json.dumps(found))}

    # -- the app answers through response_url ----------------------------------------------------
    def respond(self, request: Request) -> Response:
        token = request.path.removeprefix(RESPONSE_PATH)
        with self.lock:
            target = self.response_urls.get(token)
            if target is None:
                return Response.json(404, {"ok": False, "error": "invalid_url"})
            if self.sandbox.clock.time() - target.issued_at > RESPONSE_URL_TTL:
                return Response.json(404, {"ok": False, "error": "expired_url"})
            if target.uses >= RESPONSE_URL_USES:
                return Response.json(404, {"ok": False, "error": "used_url"})
            target.uses += 1
        try:
            doc = request.json_object()
        except BadRequest:
            return Response.json(400, {"ok": False, "error": "invalid_payload"})
        with self.ws.lock:
            channel = self.ws.channels.get(target.channel)
            message = channel.messages.get(target.message_ts) if channel else None
            if channel is None or message is None:
                return Response.json(404, {"ok": False, "error": "message_not_found"})
            text = str(doc.get("text") or "")
            blocks = doc.get("blocks") if isinstance(doc.get("blocks"), list) else None
            if doc.get("delete_original") is True:
                del channel.messages[message.ts]
                self.ws.notify("message_deleted", channel, message, ts=self.ws.next_ts())
            elif doc.get("replace_original", True) is not False:
                previous = message.to_api(include_metadata=True)
                message.text, message.blocks = text or message.text, blocks
                message.edited = {"user": BOT_USER_ID, "ts": self.ws.next_ts()}
                self.ws.notify("message_changed", channel, message, previous=previous)
            elif doc.get("response_type") == "in_channel":
                posted = Message(
                    ts=self.ws.next_ts(), text=text, user=BOT_USER_ID, bot_id=BOT_ID, blocks=blocks
                )
                self.ws.add_message(channel, posted)
            else:
                self.ws.ephemeral.append({"channel": channel.id, "user": target.user, "ts": self.ws.next_ts(),
                                          "text": text, "blocks": blocks, "thread_ts": None, "via": "response_url"})  # fmt: skip
        return Response.json(200, {"ok": True})


def _button(message: Message, action_id: str) -> tuple[str, dict[str, Any]] | None:
    """(block_id, button) of the message's button with this action_id."""
    for block in message.blocks or []:
        if not isinstance(block, dict) or block.get("type") != "actions":
            continue
        for element in block.get("elements") or []:
            if (
                isinstance(element, dict)
                and element.get("type") == "button"
                and element.get("action_id") == action_id
            ):
                return str(block.get("block_id") or ""), element
    return None


def _payload(channel: Channel, message: Message, user: User, block_id: str, button: dict[str, Any],
             action_ts: str, response_url: str) -> dict[str, Any]:  # fmt: skip
    """A block_actions payload, as Slack sends one for a button on a message in a channel."""
    container: dict[str, Any] = {"type": "message", "message_ts": message.ts, "channel_id": channel.id,
                                 "is_ephemeral": False}  # fmt: skip
    if message.is_reply:
        container["thread_ts"] = message.thread_ts
    action = {"action_id": button["action_id"], "block_id": block_id, "text": button.get("text"),
              "type": "button", "action_ts": action_ts}  # fmt: skip
    for key in ("value", "style"):
        if key in button:
            action[key] = button[key]
    return {
        "type": "block_actions",
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": user.team_id},
        "api_app_id": APP_ID,
        "token": "sandbox-verification-token",  # Slack's deprecated verification token; apps check signatures
        "container": container,
        "trigger_id": f"{action_ts.replace('.', '')}.{secrets.token_hex(6)}",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": channel.name},
        "message": message.to_api(include_metadata=False),
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }
