"""The sandbox's Slack workspace: team, users, channels, messages, the app and its tokens.

All state is in memory and every read or write happens under `Workspace.lock`. The Web API
(slack_api.py), the authorize page (authorize.py) and the admin API (admin.py) all go through
this one object, so the three always agree on what the workspace looks like.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from cxslack.sandbox.redirects import DEFAULT_REDIRECT_URLS

TEAM_ID = "T0SANDBOX"
TEAM_NAME = "Sandbox Workspace"
TEAM_DOMAIN = "sandbox-workspace"
EXTERNAL_TEAM_ID = "T0OTHER"

# Documented sandbox constants, not secrets: `cxslack sandbox serve` prints them for export.
CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"
APP_ID = "A0SANDBOX"
APP_NAME = "Coralogix (sandbox)"
BOT_ID = "B0SANDBOX"
BOT_USER_ID = "U0SANDBOXBOT"
BOT_USER_NAME = "coralogix"
INSTALLER_ID = "U0ALICE"  # the workspace admin who clicks Allow on the authorize page

DEFAULT_EXPIRES_IN = 43200
CODE_TTL = 600  # Slack's authorization codes are valid for ten minutes

TokenKind = Literal["bot", "user"]
TokenStatus = Literal["active", "revoked", "inactive"]

URL_PATTERN = re.compile(r"https?://[^\s<>|]+")


class Clock:
    """Wall and monotonic time plus an offset that tests can advance.

    Token expiry, authorization codes and Retry-After windows all read this clock, so a test can
    jump past them instead of sleeping.
    """

    def __init__(self) -> None:
        self._offset = 0.0

    def time(self) -> float:
        return time.time() + self._offset

    def monotonic(self) -> float:
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def reset(self) -> None:
        self._offset = 0.0


@dataclass
class User:
    id: str
    name: str
    real_name: str
    email: str | None
    team_id: str = TEAM_ID
    is_admin: bool = False
    is_bot: bool = False


@dataclass
class Message:
    ts: str
    text: str
    user: str
    bot_id: str | None = None
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    metadata: dict[str, Any] | None = None
    thread_ts: str | None = None
    broadcast: bool = False  # a thread reply also shown in the channel (reply_broadcast)
    username: str | None = None
    icon_emoji: str | None = None
    icon_url: str | None = None
    edited: dict[str, str] | None = None
    replies: list[str] = field(default_factory=list)  # ts of the replies, for a thread parent
    files: list[dict[str, Any]] | None = None  # shared files (files.completeUploadExternal)

    @property
    def icons(self) -> dict[str, str] | None:
        icons = {"emoji": self.icon_emoji, "image_url": self.icon_url}
        return {k: v for k, v in icons.items() if v} or None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self, *, include_metadata: bool) -> dict[str, Any]:
        """The message object as Slack's Web API returns it."""
        doc: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text}
        if self.bot_id:
            doc.update(bot_id=self.bot_id, app_id=APP_ID)
        if self.broadcast:
            doc["subtype"] = "thread_broadcast"
        optional = {
            "blocks": self.blocks,
            "attachments": self.attachments,
            "username": self.username,
            "edited": self.edited,
            "icons": self.icons,
            "metadata": self.metadata if include_metadata else None,
            "thread_ts": self.thread_ts,
            "files": self.files,
        }
        doc.update({k: v for k, v in optional.items() if v is not None})
        if self.files:
            doc["upload"] = True
        if self.replies:
            doc.update(reply_count=len(self.replies), latest_reply=self.replies[-1])
        return doc


@dataclass
class File:
    """An upload (files.getUploadURLExternal), its bytes once they arrive, and where it was shared."""

    id: str
    name: str
    length: int  # the size announced in files.getUploadURLExternal
    user: str  # whose token reserved it
    upload_key: str  # the secret part of its upload URL
    created: int
    alt_txt: str | None = None
    data: bytes | None = None  # None until POSTed to the upload URL
    title: str | None = None
    completed: bool = False  # files.completeUploadExternal "can only be called once"
    shares: list[dict[str, str]] = field(default_factory=list)  # {channel, ts, thread_ts}

    @property
    def mimetype(self) -> str:
        if self.data and self.data.startswith(b"\x89PNG\r\n\x1a\n"):
            return "image/png"
        return "application/octet-stream"

    def to_api(self) -> dict[str, Any]:
        """A file object as Slack's messages carry it."""
        doc: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": self.mimetype,
            "filetype": "png" if self.mimetype == "image/png" else "binary",
            "user": self.user,
            "size": len(self.data or b""),
            "mode": "hosted",
        }
        if self.alt_txt:
            doc["alt_txt"] = self.alt_txt
        return doc


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    bot_member: bool = False
    created: int = 1700000000
    messages: dict[str, Message] = field(default_factory=dict)  # by ts, in posting order

    def to_api(self, *, is_member: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_general": self.name == "general",
            "is_member": is_member,
            "is_ext_shared": False,
            "context_team_id": TEAM_ID,
            "created": self.created,
            "creator": INSTALLER_ID,
        }


@dataclass
class Token:
    value: str
    kind: TokenKind
    scopes: tuple[str, ...]
    user_id: str  # the bot user for bot tokens, the installing person for user tokens
    expires_at: float | None = None
    status: TokenStatus = "active"


@dataclass
class RefreshGrant:
    """What a refresh token can be exchanged for: a fresh token of the same kind and scopes."""

    kind: TokenKind
    scopes: tuple[str, ...]
    user_id: str


@dataclass
class AuthCode:
    scopes: tuple[str, ...]
    user_scopes: tuple[str, ...]
    redirect_uri: str  # where the browser was sent with this code
    sent_redirect_uri: bool  # whether authorize was sent it (oauth.v2.access must then repeat it)
    code_challenge: str | None
    issued_at: float
    used: bool = False


@dataclass
class Installation:
    """The tokens one install (or refresh) produced, with their refresh tokens under rotation."""

    bot: Token | None
    user: Token | None
    refresh: dict[str, str] = field(default_factory=dict)  # token value → its refresh token


@dataclass
class AppSettings:
    token_rotation: bool = False
    expires_in: int = DEFAULT_EXPIRES_IN
    decline_scopes: list[str] = field(default_factory=list)  # granted to nobody, whatever is requested
    pkce_enabled: bool = False  # a public client (redirects.py: what that allows and forbids)
    # OAuth & Permissions → Redirect URLs: authorize sends a code only to one of these (redirects.py)
    redirect_urls: list[str] = field(default_factory=lambda: list(DEFAULT_REDIRECT_URLS))
    paid: bool = True  # team.accessLogs needs a paid plan
    # The person at the authorize page always presses Allow: the page redirects at once with a code
    # (`sandbox serve --auto-approve`), so `integrations authorize` completes without a browser click.
    auto_approve: bool = False


@dataclass
class AccessLogin:
    seq: int  # insertion order: a stable pagination key
    user_id: str
    username: str
    date_first: int
    date_last: int
    count: int
    ip: str
    user_agent: str
    isp: str
    country: str
    region: str

    def to_api(self) -> dict[str, Any]:
        doc = asdict(self)
        del doc["seq"]
        return doc


_SEED_USERS = (
    User("U0ALICE", "alice", "Alice Anderson", "alice@example.com", is_admin=True),
    User("U0BOB", "bob", "Bob Brown", "bob@example.com"),
    User("U0CAROL", "carol", "Carol Chen", "carol@example.com"),
    User("U0DAVE", "dave", "Dave Diaz", "dave@example.com"),
    User("U0EXTERNAL", "erin", "Erin External", "erin@partner.example", team_id=EXTERNAL_TEAM_ID),
    User(BOT_USER_ID, BOT_USER_NAME, APP_NAME, None, is_bot=True),
)
# (name, private, archived, bot is a member)
_SEED_CHANNELS = (
    ("general", False, False, True),
    ("alerts", False, False, True),
    ("payments-alerts", False, False, False),
    ("ops-fallback", False, False, False),
    ("cases", False, False, False),
    ("db-cases", False, False, False),
    ("critical_alerts_channel", False, False, False),
    ("warn_alerts_channel", False, False, False),
    ("default_channel", False, False, False),
    ("sample-channel", False, False, False),
    ("generic-channel", False, False, False),
    ("secure-ops", True, False, False),
    ("private-db", True, False, True),
    ("old-alerts", False, True, False),
)


def channel_id_for(name: str, private: bool) -> str:
    """Deterministic, Slack-shaped ids (`general` → `C0GENERAL`) so tests can name them."""
    return ("G0" if private else "C0") + re.sub(r"[^A-Z0-9]", "", name.upper())


class Workspace:
    """One Slack team with the Coralogix app installable into it."""

    def __init__(self, clock: Clock | None = None, settings: AppSettings | None = None):
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.default_settings = settings or AppSettings()  # what reset() returns to
        # Told of every message created, edited or deleted and every link shared: the Events API
        # feed (events.py). Outside reset() on purpose: the feed outlives a reset.
        self.observers: list[Callable[..., None]] = []
        self.public_url = "http://127.0.0.1"  # where upload URLs point: the server sets its own address
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.settings = replace(
                self.default_settings,
                decline_scopes=list(self.default_settings.decline_scopes),
                redirect_urls=list(self.default_settings.redirect_urls),
            )
            self.users: dict[str, User] = {u.id: replace(u) for u in _SEED_USERS}
            self.channels: dict[str, Channel] = {}
            for name, private, archived, member in _SEED_CHANNELS:
                cid = channel_id_for(name, private)
                self.channels[cid] = Channel(cid, name, private, archived, member)
            self.tokens: dict[str, Token] = {}
            self.refresh_grants: dict[str, RefreshGrant] = {}
            self.codes: dict[str, AuthCode] = {}
            self.unfurls: dict[tuple[str, str], dict[str, Any]] = {}  # (channel id, ts) → unfurls map
            self.shared_links: dict[str, tuple[str, str]] = {}  # unfurl_id → (channel id, ts)
            # (channel id, ts) → the URLs a link_shared event offered the app for that message
            self.offered_links: dict[tuple[str, str], set[str]] = {}
            self.ephemeral: list[dict[str, Any]] = []  # messages only one person sees (interactivity.py)
            self.logins: list[AccessLogin] = []
            self.files: dict[str, File] = {}  # by file id
            self._last_ts_us = 0
            self._serial = 0
            self.add_logins(3)

    # -- lookups ----------------------------------------------------------------------------
    def channel_by_id(self, ref: str | None) -> Channel | None:
        """A channel by its ID only, as every Slack method but chat.postMessage looks it up."""
        return self.channels.get(ref or "")

    def channel(self, ref: str | None) -> Channel | None:
        """A channel by id, `#name` or `name`, as chat.postMessage accepts it (and the admin API)."""
        if not ref:
            return None
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == name), None)

    def user_by_email(self, email: str) -> User | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u.email and u.email.lower() == wanted), None)

    # -- messages ---------------------------------------------------------------------------
    def next_ts(self) -> str:
        """Slack's message id: unique and increasing within the workspace, `1700000000.000100` style."""
        micros = max(int(self.clock.time() * 1_000_000), self._last_ts_us + 1)
        self._last_ts_us = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def add_message(self, channel: Channel, message: Message) -> Message:
        """Store a message whose ts and thread_ts are set; a reply is linked to its parent."""
        if message.is_reply:
            assert message.thread_ts is not None
            parent = channel.messages[message.thread_ts]
            parent.thread_ts = parent.ts
            parent.replies.append(message.ts)
        channel.messages[message.ts] = message
        self.notify("message", channel, message)
        return message

    def thread_root(self, channel: Channel, ts: str) -> Message | None:
        """The thread parent for `ts`: the message itself, or its parent when `ts` is a reply."""
        message = channel.messages.get(ts)
        if message is None or not message.is_reply:
            return message
        assert message.thread_ts is not None
        return channel.messages[message.thread_ts]

    def share_links(self, channel: Channel, message: Message) -> tuple[str | None, list[str]]:
        """A person posting URLs: Slack would send link_shared with an unfurl_id for chat.unfurl."""
        links = URL_PATTERN.findall(message.text)
        if not links:
            return None, []
        unfurl_id = f"{message.ts}.{secrets.token_hex(8)}"
        self.offer_links(unfurl_id, (channel.id, message.ts), links)
        self.notify("link_shared", channel, message, unfurl_id=unfurl_id, links=links)
        return unfurl_id, links

    def offer_links(self, unfurl_id: str, target: tuple[str, str], links: list[str]) -> None:
        """Remember what a link_shared event lets the app unfurl, and where."""
        self.shared_links[unfurl_id] = target
        self.offered_links.setdefault(target, set()).update(links)

    def notify(self, change: str, channel: Channel, message: Message, **detail: Any) -> None:
        """Tell the observers about a change (`message`, `message_changed`, `message_deleted`,
        `link_shared`); called under the lock, so observers only queue work."""
        for observe in self.observers:
            observe(change, channel, message, **detail)

    # -- files ------------------------------------------------------------------------------
    def reserve_file(self, name: str, length: int, user: str, alt_txt: str | None) -> File:
        self._serial += 1
        file = File(f"F0{self._serial:08d}", name, length, user, secrets.token_urlsafe(18), int(self.clock.time()),
                    alt_txt)  # fmt: skip
        self.files[file.id] = file
        return file

    def file_by_upload_key(self, key: str) -> File | None:
        return next((f for f in self.files.values() if secrets.compare_digest(f.upload_key, key)), None)

    # -- tokens -----------------------------------------------------------------------------
    def _new_token(self, kind: TokenKind, scopes: tuple[str, ...], user_id: str, rotating: bool) -> Token:
        self._serial += 1
        prefix = "xoxb" if kind == "bot" else "xoxp"
        random = secrets.token_hex(16)
        value = f"xoxe.{prefix}-1-{random}" if rotating else f"{prefix}-1000000001-{self._serial}-{random}"
        expires_at = self.clock.time() + self.settings.expires_in if rotating else None
        token = Token(value, kind, scopes, user_id, expires_at)
        self.tokens[value] = token
        return token

    def install(
        self, scopes: tuple[str, ...], user_scopes: tuple[str, ...], *, rotating: bool | None = None
    ) -> Installation:
        """Issue the tokens of one install: a bot token for bot scopes, a user token for user scopes.

        `rotating` defaults to the app's token-rotation setting; a refresh always rotates.
        """
        rotating = self.settings.token_rotation if rotating is None else rotating
        bot = self._new_token("bot", scopes, BOT_USER_ID, rotating) if scopes else None
        user = self._new_token("user", user_scopes, INSTALLER_ID, rotating) if user_scopes else None
        installation = Installation(bot, user)
        if rotating:
            for token in (bot, user):
                if token is not None:
                    refresh = f"xoxe-1-{secrets.token_hex(24)}"
                    self.refresh_grants[refresh] = RefreshGrant(token.kind, token.scopes, token.user_id)
                    installation.refresh[token.value] = refresh
        return installation

    def refresh(self, refresh_token: str) -> Installation | None:
        """Trade a refresh token (single use) for a new token and refresh token of the same kind."""
        grant = self.refresh_grants.pop(refresh_token, None)
        if grant is None:
            return None
        if grant.kind == "bot":
            return self.install(grant.scopes, (), rotating=True)
        return self.install((), grant.scopes, rotating=True)

    def revoke(self, value: str | None = None) -> int:
        """Revoke one token, or every token (and refresh token) when `value` is None."""
        if value is None:
            targets = list(self.tokens.values())
            self.refresh_grants.clear()
        else:
            targets = [self.tokens[value]] if value in self.tokens else []
        for token in targets:
            token.status = "revoked"
        return len(targets)

    def uninstall(self) -> None:
        """The admin removed the app: every token answers account_inactive until a new install."""
        for token in self.tokens.values():
            if token.status == "active":
                token.status = "inactive"
        self.refresh_grants.clear()

    # -- OAuth codes ------------------------------------------------------------------------
    def create_code(
        self,
        scopes: list[str],
        user_scopes: list[str],
        redirect_uri: str,
        code_challenge: str | None,
        *,
        sent_redirect_uri: bool = True,
    ) -> str:
        declined = set(self.settings.decline_scopes)
        code = f"{int(self.clock.time())}.{secrets.token_hex(16)}"
        self.codes[code] = AuthCode(
            scopes=tuple(s for s in scopes if s not in declined),
            user_scopes=tuple(s for s in user_scopes if s not in declined),
            redirect_uri=redirect_uri,
            sent_redirect_uri=sent_redirect_uri,
            code_challenge=code_challenge,
            issued_at=self.clock.time(),
        )
        return code

    def code(self, value: str) -> AuthCode | None:
        code = self.codes.get(value)
        if code is None or self.clock.time() - code.issued_at > CODE_TTL:
            return None
        return code

    # -- access logs ------------------------------------------------------------------------
    def add_logins(self, count: int, **fields: Any) -> list[AccessLogin]:
        """Seed `count` logins of the workspace's people, a minute apart; `fields` override them."""
        people = [u for u in self.users.values() if not u.is_bot and u.team_id == TEAM_ID]
        now = int(self.clock.time())
        added = []
        for i in range(count):
            seq = len(self.logins) + 1
            person = people[seq % len(people)]
            started = now - (count - i) * 60
            login = AccessLogin(
                seq=seq,
                user_id=person.id,
                username=person.name,
                date_first=started,
                date_last=started + 30,
                count=1 + seq % 5,
                ip=f"203.0.113.{seq % 250 + 1}",
                user_agent="Mozilla/5.0 (Slack sandbox)",
                isp="Sandbox ISP",
                country="US",
                region="California",
            )
            for key, value in fields.items():
                setattr(login, key, value)
            self.logins.append(login)
            added.append(login)
        return added
