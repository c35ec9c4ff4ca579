"""The Slack Web API methods cxslack uses, as Slack answers them.

`call(workspace, method, params, token)` → (HTTP status, body, headers). Errors are
`{"ok": false, "error": …}` with HTTP 200, as on slack.com; `missing_scope` adds `needed` and
`provided`. Every authenticated answer carries `x-oauth-scopes`. Rate limits and faults are
applied before this module is reached (traffic.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from operator import attrgetter
from typing import Any, TypeVar

from cxslack.sandbox.rules import LIST_TYPE_SCOPES, RULES, ChannelArg, MethodRule, is_conversation_id
from cxslack.sandbox.workspace import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    INSTALLER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    Channel,
    Installation,
    Message,
    Token,
    User,
    Workspace,
)
from cxslack.slack.limits import BLOCKS_MAX, MESSAGE_TEXT_MAX, block_problem

Params = dict[str, Any]
ApiResult = tuple[int, dict[str, Any], dict[str, str]]
T = TypeVar("T")
MethodFn = TypeVar("MethodFn", bound=Callable[..., dict[str, Any]])

MAX_BLOCKS = BLOCKS_MAX
MAX_ACCESS_LOG_PAGES = 100


class SlackError(Exception):
    def __init__(self, error: str, **extra: Any):
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


@dataclass(frozen=True)
class _Method:
    # (workspace, params, token, channel) or, when public, (workspace, params); `channel` is the
    # one the method's rule resolved (rules.py), or None when the method names none
    fn: Callable[..., dict[str, Any]]
    public: bool


_METHODS: dict[str, _Method] = {}


def api_method(name: str, *, public: bool = False) -> Callable[[MethodFn], MethodFn]:
    """Register a Web API method; its rule (rules.RULES) is applied before it runs, `public`
    methods need no token."""
    if not public and name not in RULES:
        raise ValueError(f"{name} has no row in sandbox/rules.py")

    def register(fn: MethodFn) -> MethodFn:
        _METHODS[name] = _Method(fn, public)
        return fn

    return register


def call(ws: Workspace, method: str, params: Params, token: str | None) -> ApiResult:
    entry = _METHODS.get(method)
    if entry is None:
        return 200, {"ok": False, "error": "unknown_method"}, {}
    headers: dict[str, str] = {}
    with ws.lock:
        try:
            if entry.public:
                body = entry.fn(ws, params)
            else:
                caller = authenticate(ws, token)
                headers["x-oauth-scopes"] = ",".join(caller.scopes)
                channel = apply_rule(ws, RULES[method], params, caller)
                body = entry.fn(ws, params, caller, channel)
        except SlackError as exc:
            return 200, exc.body(), headers
    return 200, {"ok": True, **body}, headers


def apply_rule(ws: Workspace, rule: MethodRule, params: Params, token: Token) -> Channel | None:
    """Check a call against its method's row: scopes, then the channel (ID only where Slack takes
    IDs), the scope for that kind of channel, then membership. Returns the channel."""
    if rule.user_token_only and token.kind != "user":
        raise SlackError("not_allowed_token_type")
    if rule.scope:
        require(token, rule.scope)
    kinds = rule.channel_scopes
    if kinds and not any(s in token.scopes for s in kinds):
        # no channel to tell which one applies (or no scope of either kind): Slack names them all
        raise SlackError("missing_scope", needed=",".join(kinds), provided=",".join(token.scopes))
    ref = str(params.get(rule.channel_param) or "")
    if rule.channel is ChannelArg.NONE or (not ref and not rule.channel_required):
        return None
    if rule.channel is ChannelArg.ID and not is_conversation_id(ref):
        raise SlackError(rule.name_error)  # a name where Slack takes only an ID
    found = ws.channel(ref) if rule.channel is ChannelArg.ID_OR_NAME else ws.channel_by_id(ref)
    if found is None or (found.is_private and not _is_member(found, token)):
        raise SlackError("channel_not_found")  # a private channel the caller is not in is invisible
    kind_scope = rule.private_scope if found.is_private else rule.public_scope
    if kind_scope:
        require(token, kind_scope)
    if rule.member and not _is_member(found, token):
        raise SlackError("not_in_channel")
    return found


def authenticate(ws: Workspace, value: str | None) -> Token:
    if not value:
        raise SlackError("not_authed")
    token = ws.tokens.get(value)
    if token is None:
        raise SlackError("invalid_auth")
    if token.status == "revoked":
        raise SlackError("token_revoked")
    if token.status == "inactive":
        raise SlackError("account_inactive")
    if token.expires_at is not None and ws.clock.time() >= token.expires_at:
        raise SlackError("token_expired")
    return token


def require(token: Token, scope: str) -> None:
    if scope not in token.scopes:
        raise SlackError("missing_scope", needed=scope, provided=",".join(token.scopes))


# -- parameters ---------------------------------------------------------------------------
def _flag(params: Params, name: str) -> bool:
    return str(params.get(name, "")).strip().lower() in {"1", "true"}


def _int(params: Params, name: str, default: int, maximum: int | None = None, minimum: int = 1) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise SlackError("invalid_arguments", detail=f"{name} must be an integer") from None
    if value < minimum:
        raise SlackError("invalid_arguments", detail=f"{name} must be at least {minimum}")
    return min(value, maximum) if maximum else value


def _json_param(params: Params, name: str, error: str) -> Any:
    """A JSON-valued argument: a JSON string (form posts) or already decoded (JSON posts)."""
    raw = params.get(name)
    if not isinstance(raw, str):
        return raw
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise SlackError(error) from None


def _blocks(params: Params) -> list[Any] | None:
    blocks = _json_param(params, "blocks", "invalid_blocks")
    if blocks is None:
        return None
    shaped = isinstance(blocks, list) and all(
        isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks
    )
    if not shaped or len(blocks) > MAX_BLOCKS:
        raise SlackError("invalid_blocks")
    for block in blocks:  # Block Kit's size limits (slack/limits.py names the pages)
        problem = block_problem(block)
        if problem:
            raise SlackError("invalid_blocks", errors=[problem])
    return blocks


def _text(params: Params) -> str:
    """A message's `text`: over 40,000 characters is `msg_too_long` (chat.postMessage's docs)."""
    text = str(params.get("text") or "")
    if len(text) > MESSAGE_TEXT_MAX:
        raise SlackError("msg_too_long")
    return text


def _attachments(params: Params) -> list[Any] | None:
    attachments = _json_param(params, "attachments", "invalid_attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise SlackError("invalid_attachments")
    return attachments


def _metadata(params: Params) -> dict[str, Any] | None:
    """Slack message metadata: "Metadata always includes an event_type and an event_payload"
    (docs.slack.dev/messaging/message-metadata/designing-metadata-event-schema): a string and an
    object, both present, else `invalid_metadata_format` (chat.postMessage's errors)."""
    metadata = _json_param(params, "metadata", "invalid_metadata_format")
    if metadata is None:
        return None
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not metadata["event_type"]
        or not isinstance(metadata.get("event_payload"), dict)
    ):
        raise SlackError("invalid_metadata_format")
    return {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}


def _ts_bound(params: Params, name: str, default: Decimal) -> Decimal:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise SlackError(f"invalid_ts_{name}") from None


def _in_window(messages: list[Message], params: Params) -> list[Message]:
    """conversations.history/replies: `oldest` < ts < `latest`, bounds included with `inclusive`."""
    oldest = _ts_bound(params, "oldest", Decimal(0))
    latest = _ts_bound(params, "latest", Decimal("Infinity"))
    if _flag(params, "inclusive"):
        return [m for m in messages if oldest <= Decimal(m.ts) <= latest]
    return [m for m in messages if oldest < Decimal(m.ts) < latest]


# -- cursor pagination --------------------------------------------------------------------
# A cursor names the last item of the previous page, so items added meanwhile do not shift pages.
def _cursor_start(items: Sequence[T], key: Callable[[T], Any], cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        after = base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("next:")
    except (binascii.Error, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    for index, item in enumerate(items):
        if str(key(item)) == after:
            return index + 1
    raise SlackError("invalid_cursor")


def _next_cursor(items: Sequence[T], key: Callable[[T], Any], start: int, size: int) -> str:
    if start + size >= len(items):
        return ""
    return base64.urlsafe_b64encode(f"next:{key(items[start + size - 1])}".encode()).decode()


def _paginate(
    items: Sequence[T], key: Callable[[T], Any], params: Params, default: int
) -> tuple[list[T], str]:
    size = _int(params, "limit", default, 1000)
    start = _cursor_start(items, key, params.get("cursor"))
    return list(items[start : start + size]), _next_cursor(items, key, start, size)


# -- channels -----------------------------------------------------------------------------
def _is_member(channel: Channel, token: Token) -> bool:
    """The bot's membership is tracked; the installing admin is taken to be in every channel."""
    return token.kind == "user" or channel.bot_member


def _writable(channel: Channel | None, token: Token) -> Channel:
    """Posting: not into an archived channel, and into a public one the caller is not in only
    with chat:write.public."""
    assert channel is not None
    if channel.is_archived:
        raise SlackError("is_archived")
    if not _is_member(channel, token) and "chat:write.public" not in token.scopes:
        raise SlackError("not_in_channel")
    return channel


# -- auth ---------------------------------------------------------------------------------
@api_method("auth.test")
def auth_test(ws: Workspace, params: Params, token: Token, channel: Channel | None) -> dict[str, Any]:
    user = ws.users[token.user_id]
    body = {
        "url": f"https://{TEAM_DOMAIN}.slack.com/",
        "team": TEAM_NAME,
        "user": user.name,
        "team_id": TEAM_ID,
        "user_id": user.id,
        "app_id": APP_ID,
        "is_enterprise_install": False,
    }
    if token.kind == "bot":
        body["bot_id"] = BOT_ID
    return body


@api_method("auth.revoke")
def auth_revoke(ws: Workspace, params: Params, token: Token, channel: Channel | None) -> dict[str, Any]:
    if _flag(params, "test"):
        return {"revoked": False}
    ws.revoke(token.value)
    return {"revoked": True}


# -- OAuth --------------------------------------------------------------------------------
def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _check_client(ws: Workspace, params: Params) -> bool:
    """Authenticate the app; True for a public (PKCE, secret-less) client."""
    if params.get("client_id") != CLIENT_ID:
        raise SlackError("invalid_client_id")
    if params.get("code_verifier") and not ws.settings.pkce_enabled:
        raise SlackError("pkce_not_allowed")  # PKCE arguments to an app without PKCE (redirects.py)
    secret = params.get("client_secret")
    if secret:
        if not hmac.compare_digest(str(secret), CLIENT_SECRET):
            raise SlackError("bad_client_secret")
        return False
    if not ws.settings.pkce_enabled:
        raise SlackError("bad_client_secret")
    return True


def _token_fields(ws: Workspace, installation: Installation, token: Token) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "access_token": token.value,
        "token_type": token.kind,
        "scope": ",".join(token.scopes),
    }
    if token.expires_at is not None:
        fields["expires_in"] = round(token.expires_at - ws.clock.time())
        fields["refresh_token"] = installation.refresh[token.value]
    return fields


def _app_fields() -> dict[str, Any]:
    return {
        "app_id": APP_ID,
        "team": {"id": TEAM_ID, "name": TEAM_NAME},
        "enterprise": None,
        "is_enterprise_install": False,
    }


def installation_response(ws: Workspace, installation: Installation) -> dict[str, Any]:
    """oauth.v2.access's answer to a code exchange: the bot token on top, the user token in authed_user."""
    doc = _app_fields()
    if installation.bot is not None:
        doc.update(_token_fields(ws, installation, installation.bot), bot_user_id=BOT_USER_ID)
    doc["authed_user"] = {"id": INSTALLER_ID}
    if installation.user is not None:
        doc["authed_user"].update(_token_fields(ws, installation, installation.user))
    return doc


@api_method("oauth.v2.access", public=True)
def oauth_v2_access(ws: Workspace, params: Params) -> dict[str, Any]:
    grant_type = params.get("grant_type") or "authorization_code"
    if grant_type not in ("authorization_code", "refresh_token"):
        raise SlackError("invalid_grant_type")
    public_client = _check_client(ws, params)
    if grant_type == "refresh_token":
        refreshed = ws.refresh(str(params.get("refresh_token") or ""))
        if refreshed is None:
            raise SlackError("invalid_refresh_token")
        token = refreshed.bot or refreshed.user
        assert token is not None
        doc = {**_app_fields(), **_token_fields(ws, refreshed, token), "authed_user": {"id": INSTALLER_ID}}
        if token.kind == "bot":
            doc["bot_user_id"] = BOT_USER_ID
        return doc

    code = ws.code(str(params.get("code") or ""))
    if code is None:
        raise SlackError("invalid_code")
    if code.used:
        raise SlackError("code_already_used")
    # "must match the originally submitted URI (if one was sent)" (redirects.py)
    sent = params.get("redirect_uri")
    if (sent or code.sent_redirect_uri) and sent != code.redirect_uri:
        raise SlackError("bad_redirect_uri")
    if code.code_challenge or public_client:
        verifier = str(params.get("code_verifier") or "")
        if (
            not verifier
            or not code.code_challenge
            or not hmac.compare_digest(_s256(verifier), code.code_challenge)
        ):
            raise SlackError("invalid_code_verifier")
    if not code.scopes and not code.user_scopes:
        raise SlackError("no_scopes")
    code.used = True
    return installation_response(ws, ws.install(code.scopes, code.user_scopes))


# -- chat ---------------------------------------------------------------------------------
@api_method("chat.postMessage")
def chat_post_message(ws: Workspace, params: Params, token: Token, channel: Channel | None) -> dict[str, Any]:
    channel = _writable(channel, token)
    text = _text(params)
    blocks, attachments = _blocks(params), _attachments(params)
    if not (text or blocks or attachments):
        raise SlackError("no_text")
    customize = {k: str(params[k]) for k in ("username", "icon_emoji", "icon_url") if params.get(k)}
    if customize:
        require(token, "chat:write.customize")
    root = None
    if params.get("thread_ts"):
        root = ws.thread_root(channel, str(params["thread_ts"]))
        if root is None:
            raise SlackError("invalid_thread_ts")
    message = Message(
        ts=ws.next_ts(),
        text=text,
        user=token.user_id,
        bot_id=BOT_ID if token.kind == "bot" else None,
        blocks=blocks,
        attachments=attachments,
        metadata=_metadata(params),
        thread_ts=root.ts if root else None,
        broadcast=root is not None and _flag(params, "reply_broadcast"),
        username=customize.get("username"),
        icon_emoji=customize.get("icon_emoji"),
        icon_url=customize.get("icon_url"),
    )
    ws.add_message(channel, message)
    return {"channel": channel.id, "ts": message.ts, "message": message.to_api(include_metadata=True)}


@api_method("chat.update")
def chat_update(ws: Workspace, params: Params, token: Token, channel: Channel | None) -> dict[str, Any]:
    channel = _writable(channel, token)
    message = channel.messages.get(str(params.get("ts") or ""))
    if message is None:
        raise SlackError("message_not_found")
    own = (
        message.bot_id == BOT_ID
        if token.kind == "bot"
        else (message.user == token.user_id and not message.bot_id)
    )
    if not own:
        raise SlackError("cant_update_message")
    text = _text(params) if params.get("text") is not None else None
    blocks, attachments = _blocks(params), _attachments(params)
    if not (text or blocks or attachments):
        raise SlackError("no_text")
    previous = message.to_api(include_metadata=True)
    if text is not None:
        message.text = text
    if blocks is not None:
        message.blocks = blocks
    if attachments is not None:
        message.attachments = attachments
    metadata = _metadata(params)
    if metadata is not None:
        message.metadata = metadata
    message.edited = {"user": token.user_id, "ts": ws.next_ts()}
    ws.notify("message_changed", channel, message, previous=previous)
    return {
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": message.to_api(include_metadata=True),
    }


UNFURL_SOURCES = ("composer", "conversations_history")  # chat.unfurl's `source`: "one of" these


@api_method("chat.getPermalink")
def chat_get_permalink(
    ws: Workspace, params: Params, token: Token, channel: Channel | None
) -> dict[str, Any]:
    """`…/archives/<channel>/p<ts without the dot>`; "When the provided message_ts is part of a
    thread, the permalink format changes": `?thread_ts=<parent ts>&cid=<channel>` is added.
    `message_not_found` for a ts with no message."""
    assert channel is not None
    message = channel.messages.get(str(params.get("message_ts") or ""))
    if message is None:
        raise SlackError("message_not_found")
    link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel.id}/p{message.ts.replace('.', '')}"
    if message.is_reply:
        link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
    return {"channel": channel.id, "permalink": link}


@api_method("chat.unfurl")
def chat_unfurl(ws: Workspace, params: Params, token: Token, channel: Channel | None) -> dict[str, Any]:
    """docs.slack.dev/reference/methods/chat.unfurl: "Both channel and ts must be provided together,
    or unfurl_id and source must be provided together"; `source` is `composer` or
    `conversations_history`; `unfurls` is a JSON map "with keys set to URLs featured in the
    message"; `cannot_unfurl_url`: "returned if you haven't acknowledged a link_shared event tied
    to the same URL" — only the URLs a link_shared event offered for that message can be unfurled."""
    unfurls = _json_param(params, "unfurls", "invalid_unfurls_format")
    if not isinstance(unfurls, dict) or not unfurls:
        raise SlackError("invalid_unfurls_format")
    for unfurl in unfurls.values():  # each preview is Block Kit: the same size limits
        blocks = unfurl.get("blocks") if isinstance(unfurl, dict) else None
        if isinstance(blocks, list) and any(isinstance(b, dict) and block_problem(b) for b in blocks):
            raise SlackError("invalid_blocks")
    if params.get("unfurl_id") or params.get("source"):
        if not (params.get("unfurl_id") and params.get("source")):
            raise SlackError("invalid_arguments", detail="unfurl_id and source go together")
        if params["source"] not in UNFURL_SOURCES:
            raise SlackError("invalid_arguments", detail=f"source must be one of {', '.join(UNFURL_SOURCES)}")
        target = ws.shared_links.get(str(params["unfurl_id"]))
        if target is None:
            raise SlackError("cannot_find_message")
    else:
        if channel is None or not params.get("ts"):
            raise SlackError("invalid_arguments", detail="channel and ts, or unfurl_id and source")
        ts = str(params["ts"])
        if ts not in channel.messages:
            raise SlackError("cannot_find_message")
        target = (channel.id, ts)
    if not set(unfurls) <= ws.offered_links.get(target, set()):
        raise SlackError("cannot_unfurl_url")
    ws.unfurls[target] = unfurls  # a later unfurl of the same message replaces the preview
    return {}


# -- conversations ------------------------------------------------------------------------
@api_method("conversations.join")
def conversations_join(
    ws: Workspace, params: Params, token: Token, channel: Channel | None
) -> dict[str, Any]:
    assert channel is not None
    if channel.is_private:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("is_archived")
    already = _is_member(channel, token)
    if token.kind == "bot":
        channel.bot_member = True
    body: dict[str, Any] = {"channel": channel.to_api(is_member=True)}
    if already:
        body.update(warning="already_in_channel", response_metadata={"warnings": ["already_in_channel"]})
    return body


@api_method("conversations.info")
def conversations_info(
    ws: Workspace, params: Params, token: Token, channel: Channel | None
) -> dict[str, Any]:
    assert channel is not None
    return {"channel": channel.to_api(is_member=_is_member(channel, token))}


@api_method("conversations.list")
def conversations_list(
    ws: Workspace, params: Params, token: Token, channel: Channel | None
) -> dict[str, Any]:
    types = {t.strip() for t in str(params.get("types") or "public_channel").split(",") if t.strip()}
    unknown = types - set(LIST_TYPE_SCOPES)
    if unknown:
        raise SlackError("invalid_types", detail=f"unknown type(s): {', '.join(sorted(unknown))}")
    for kind in sorted(types):
        require(token, LIST_TYPE_SCOPES[kind])
    exclude_archived = _flag(params, "exclude_archived")
    listed = [
        c
        for c in ws.channels.values()
        if ("private_channel" if c.is_private else "public_channel") in types
        and not (exclude_archived and c.is_archived)
        and (not c.is_private or _is_member(c, token))
    ]
    page, next_cursor = _paginate(listed, lambda c: c.id, params, 100)
    return {
        "channels": [c.to_api(is_member=_is_member(c, token)) for c in page],
        "response_metadata": {"next_cursor": next_cursor},
    }


def _messages_page(messages: list[Message], params: Params, default_limit: int) -> dict[str, Any]:
    page, next_cursor = _paginate(_in_window(messages, params), lambda m: m.ts, params, default_limit)
    include_metadata = _flag(params, "include_all_metadata")
    return {
        "messages": [m.to_api(include_metadata=include_metadata) for m in page],
        "has_more": bool(next_cursor),
        "response_metadata": {"next_cursor": next_cursor},
    }


@api_method("conversations.history")
def conversations_history(
    ws: Workspace, params: Params, token: Token, channel: Channel | None
) -> dict[str, Any]:
    assert channel is not None
    newest_first = [m for m in reversed(channel.messages.values()) if not m.is_reply or m.broadcast]
    return _messages_page(newest_first, params, 100)


@api_method("conversations.replies")
def conversations_replies(
    ws: Workspace, params: Params, token: Token, channel: Channel | None
) -> dict[str, Any]:
    assert channel is not None
    root = ws.thread_root(channel, str(params.get("ts") or ""))
    if root is None:
        raise SlackError("thread_not_found")
    thread = [root, *(channel.messages[ts] for ts in root.replies)]
    return _messages_page(thread, params, 1000)


# -- users --------------------------------------------------------------------------------
def _user_doc(user: User, token: Token) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "real_name": user.real_name,
        "display_name": user.name,
        "real_name_normalized": user.real_name,
        "display_name_normalized": user.name,
        "team": user.team_id,
    }
    if user.email and "users:read.email" in token.scopes:
        profile["email"] = user.email
    if user.is_bot:
        profile["bot_id"] = BOT_ID
    return {
        "id": user.id,
        "team_id": user.team_id,
        "name": user.name,
        "real_name": user.real_name,
        "deleted": False,
        "is_bot": user.is_bot,
        "is_admin": user.is_admin,
        "is_owner": user.is_admin,
        "is_app_user": False,
        "is_restricted": False,
        "tz": "America/Los_Angeles",
        "profile": profile,
    }


@api_method("users.info")
def users_info(ws: Workspace, params: Params, token: Token, channel: Channel | None) -> dict[str, Any]:
    """`include_locale`: "Set this to true to receive the locale for this user" (users.info)."""
    user = ws.users.get(str(params.get("user") or ""))
    if user is None:
        raise SlackError("user_not_found")
    doc = _user_doc(user, token)
    if _flag(params, "include_locale"):
        doc["locale"] = "en-US"
    return {"user": doc}


@api_method("users.lookupByEmail")
def users_lookup_by_email(
    ws: Workspace, params: Params, token: Token, channel: Channel | None
) -> dict[str, Any]:
    user = ws.user_by_email(str(params.get("email") or ""))
    if user is None:
        raise SlackError("users_not_found")
    return {"user": _user_doc(user, token)}


# -- files --------------------------------------------------------------------------------
ALT_TXT_MAX = 1000  # files.getUploadURLExternal: "alt_txt_too_large … longer than the limit of 1000"


@api_method("files.getUploadURLExternal")
def files_get_upload_url_external(
    ws: Workspace, params: Params, token: Token, channel: Channel | None
) -> dict[str, Any]:
    """`filename` and `length` (bytes) are required; "missing_argument … typically only occurs when
    the length provided is 0"; `alt_txt` at most 1,000 characters."""
    filename = str(params.get("filename") or "").strip()
    raw = params.get("length")
    if raw in (None, "", 0, "0"):
        raise SlackError("missing_argument")
    length = _int(params, "length", 0)
    if not filename:
        raise SlackError("invalid_arguments", detail="filename is required")
    alt = params.get("alt_txt")
    if alt is not None and len(str(alt)) > ALT_TXT_MAX:
        raise SlackError("alt_txt_too_large")
    file = ws.reserve_file(filename, length, token.user_id, str(alt) if alt else None)
    return {"upload_url": f"{ws.public_url}/upload/v1/{file.upload_key}", "file_id": file.id}


@api_method("files.completeUploadExternal")
def files_complete_upload_external(
    ws: Workspace, params: Params, token: Token, channel: Channel | None
) -> dict[str, Any]:
    """Shares uploaded files into `channel_id` (its thread `thread_ts`, which must be a parent
    message there: "Never use a reply's ts value"). "This method can only be called once": a file
    already completed, or whose bytes never arrived, is `file_not_found` ("Could not find the file
    from the upload ticket"); so is another token's file (`access_denied` names an owner problem
    only for a file it can see)."""
    named = _json_param(params, "files", "invalid_arguments")
    if (
        not isinstance(named, list)
        or not named
        or not all(isinstance(f, dict) and f.get("id") for f in named)
    ):
        raise SlackError("invalid_arguments", detail="files must be a JSON array of {id, title?}")
    files = []
    for entry in named:
        file = ws.files.get(str(entry["id"]))
        if file is None or file.completed or file.data is None:
            raise SlackError("file_not_found")
        if file.user != token.user_id:
            raise SlackError("access_denied")
        files.append((file, entry.get("title")))
    thread_ts = str(params.get("thread_ts") or "")
    targets = [channel] if channel is not None else _share_channels(ws, params, token)
    if thread_ts and len(targets) > 1:  # "make sure to provide only one channel when using thread_ts"
        raise SlackError("invalid_arguments", detail="thread_ts takes one channel")
    root = None
    if thread_ts:
        root = targets[0].messages.get(thread_ts) if targets else None
        if root is None or root.is_reply:  # no channel, no such message, or a reply's ts
            raise SlackError(
                "invalid_arguments", detail="thread_ts must be a parent message's ts in channel_id"
            )
    for file, title in files:
        file.completed = True
        file.title = str(title) if title else file.name
    for target in targets:
        message = Message(
            ts=ws.next_ts(),
            text=str(params.get("initial_comment") or ""),
            user=token.user_id,
            bot_id=BOT_ID if token.kind == "bot" else None,
            thread_ts=root.ts if root else None,
            files=[file.to_api() for file, _ in files],
        )
        ws.add_message(target, message)
        for file, _ in files:
            file.shares.append({"channel": target.id, "ts": message.ts, "thread_ts": message.thread_ts or ""})
    return {"files": [{"id": file.id, "title": file.title} for file, _ in files]}


def _share_channels(ws: Workspace, params: Params, token: Token) -> list[Channel]:
    """files.completeUploadExternal's other way to say where: `channels`, a "comma-separated string
    of channel IDs", each held to the same rule as `channel_id` (an ID, visible, the app a member).
    (Slack also takes user IDs there, sharing into a DM; the sandbox has no DMs.)"""
    rule = RULES["files.completeUploadExternal"]
    refs = [ref.strip() for ref in str(params.get("channels") or "").split(",") if ref.strip()]
    shared = [apply_rule(ws, rule, {rule.channel_param: ref}, token) for ref in refs]
    return [c for c in shared if c is not None]


# -- team ---------------------------------------------------------------------------------
@api_method("team.accessLogs")
def team_access_logs(ws: Workspace, params: Params, token: Token, channel: Channel | None) -> dict[str, Any]:
    if not ws.settings.paid:
        raise SlackError("paid_only")
    before = _int(params, "before", 0, minimum=0)
    logins = sorted(ws.logins, key=attrgetter("date_first", "seq"), reverse=True)
    if before:
        logins = [entry for entry in logins if entry.date_first <= before]
    key = attrgetter("seq")
    if "cursor" in params or "limit" in params:
        size = _int(params, "limit", 100, 1000)
        start = _cursor_start(logins, key, params.get("cursor"))
    else:  # the legacy count/page paging
        size = _int(params, "count", 100, 1000)
        start = (_int(params, "page", 1) - 1) * size
    page = start // size + 1
    if page > MAX_ACCESS_LOG_PAGES:
        raise SlackError("over_pagination_limit")
    return {
        "logins": [entry.to_api() for entry in logins[start : start + size]],
        "paging": {
            "count": size,
            "total": len(logins),
            "page": page,
            "pages": max(1, -(-len(logins) // size)),
        },
        "response_metadata": {"next_cursor": _next_cursor(logins, key, start, size)},
    }
