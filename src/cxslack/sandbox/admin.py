"""The sandbox's admin API under /_sandbox/: JSON in, JSON out.

What a test, a benchmark or the demo needs to play the other side of Slack: people replying in
threads, an admin archiving a channel or uninstalling the app, injected faults, settings, the
call log. Not part of Slack's API; every answer is `{"ok": true, …}` or `{"ok": false, "error": …}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, fields, replace
from typing import TYPE_CHECKING, Any

from cxslack.sandbox import redirects
from cxslack.sandbox.traffic import Fault, TrafficSettings
from cxslack.sandbox.wire import ADMIN_PREFIX, AdminError, Body, Router, json_route, text_field
from cxslack.sandbox.workspace import AccessLogin, AppSettings, Channel, Message, User, channel_id_for

if TYPE_CHECKING:
    from cxslack.sandbox.server import SlackSandbox


class AdminApi:
    def __init__(self, sandbox: SlackSandbox):
        self.sandbox = sandbox
        self.ws = sandbox.workspace

    def register(self, router: Router) -> None:
        routes: list[tuple[str, str, Callable[[Body], Body]]] = [
            ("GET", "messages", self.messages),
            ("POST", "post", self.post),
            ("POST", "reply", self.reply),
            ("POST", "revoke", self.revoke),
            ("POST", "uninstall", self.uninstall),
            ("POST", "archive", lambda body: self._set_channel(body, is_archived=True)),
            ("POST", "unarchive", lambda body: self._set_channel(body, is_archived=False)),
            ("POST", "invite", lambda body: self._set_channel(body, bot_member=True)),
            ("POST", "channels", self.create_channel),
            ("POST", "kick", lambda body: self._set_channel(body, bot_member=False)),
            ("POST", "faults", self.faults),
            ("GET", "settings", lambda body: {"settings": self.current_settings()}),
            ("POST", "settings", self.settings),
            ("GET", "redirect-urls", lambda body: self.app_oauth_settings()),
            ("POST", "redirect-urls", self.redirect_urls),
            ("POST", "access-logs", self.access_logs),
            ("GET", "calls", lambda body: self.sandbox.traffic.snapshot()),
            ("POST", "tokens", self.tokens),
            ("POST", "clock", self.clock),
            ("POST", "reset", self.reset),
        ]
        for verb, name, action in routes:
            router.add(verb, ADMIN_PREFIX + name, json_route(verb, action))

    # -- lookups ----------------------------------------------------------------------------
    def _channel(self, body: Body) -> Channel:
        channel = self.ws.channel(text_field(body, "channel"))
        if channel is None:
            raise AdminError(404, "channel_not_found", f"no channel {body['channel']!r}")
        return channel

    def _user(self, body: Body) -> User:
        """A person by id or email; Bob when the caller does not care who."""
        ref = body.get("user") or "U0BOB"
        user = (self.ws.users.get(ref) or self.ws.user_by_email(ref)) if isinstance(ref, str) else None
        if user is None or user.is_bot:
            raise AdminError(404, "user_not_found", f"no person {ref!r}")
        return user

    # -- messages ---------------------------------------------------------------------------
    def messages(self, body: Body) -> Body:
        """Every message of a channel, thread replies included, oldest first, with metadata and unfurls."""
        with self.ws.lock:
            channel = self._channel(body)
            docs = []
            for message in channel.messages.values():
                doc = message.to_api(include_metadata=True)
                unfurls = self.ws.unfurls.get((channel.id, message.ts))
                if unfurls:
                    doc["unfurls"] = unfurls
                docs.append(doc)
            return {"channel": channel.id, "messages": docs}

    def _human_message(self, body: Body, thread_ts: str | None) -> Body:
        with self.ws.lock:
            channel = self._channel(body)
            if thread_ts is not None:
                root = self.ws.thread_root(channel, thread_ts)
                if root is None:
                    raise AdminError(404, "thread_not_found", f"no message {thread_ts} in {channel.name}")
                thread_ts = root.ts
            message = Message(
                ts=self.ws.next_ts(),
                text=text_field(body, "text"),
                user=self._user(body).id,
                thread_ts=thread_ts,
            )
            self.ws.add_message(channel, message)
            unfurl_id, links = self.ws.share_links(channel, message)
            return {
                "channel": channel.id,
                "ts": message.ts,
                "thread_ts": thread_ts,
                "unfurl_id": unfurl_id,
                "links": links,
            }

    def post(self, body: Body) -> Body:
        """A person's top-level message; URLs in it get an unfurl_id, as link_shared would carry."""
        return self._human_message(body, None)

    def reply(self, body: Body) -> Body:
        """A person's reply in a thread (what two-way sync reads back)."""
        return self._human_message(body, text_field(body, "thread_ts"))

    # -- workspace admin actions ------------------------------------------------------------
    def revoke(self, body: Body) -> Body:
        """Revoke one token (`token`) or, without it, every token of the app."""
        value = body.get("token")
        with self.ws.lock:
            revoked = self.ws.revoke(str(value) if value else None)
        if value and not revoked:
            raise AdminError(404, "token_not_found", "no such token")
        return {"revoked": revoked}

    def uninstall(self, body: Body) -> Body:
        with self.ws.lock:
            self.ws.uninstall()
        return {}

    def create_channel(self, body: Body) -> Body:
        """Add a channel {name, private?, bot_member?} (benchmarks and demos need many)."""
        name, private, member = body.get("name"), body.get("private", False), body.get("bot_member", False)
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_-]{1,80}", name):
            raise AdminError(400, "invalid_name", "name: lower-case letters, digits, - and _ (at most 80)")
        if not isinstance(private, bool) or not isinstance(member, bool):
            raise AdminError(400, "invalid_arguments", "private and bot_member are booleans")
        with self.ws.lock:
            if self.ws.channel(name) is not None:
                raise AdminError(409, "name_taken", f"channel {name} exists")
            cid = channel_id_for(name, private)
            self.ws.channels[cid] = Channel(cid, name, private, False, member)
            return {"channel": self.ws.channels[cid].to_api(is_member=member)}

    def _set_channel(self, body: Body, **state: bool) -> Body:
        with self.ws.lock:
            channel = self._channel(body)
            for name, value in state.items():
                setattr(channel, name, value)
            return {"channel": channel.to_api(is_member=channel.bot_member)}

    def access_logs(self, body: Body) -> Body:
        """Add `count` logins; any other key (user_id, ip, country, …) overrides their fields."""
        count = body.pop("count", 1)
        kinds = {f.name: int if f.type == "int" else str for f in fields(AccessLogin) if f.name != "seq"}
        valid = all(k in kinds and _same_type(kinds[k](), v) for k, v in body.items())
        if not isinstance(count, int) or count < 1 or not valid:
            raise AdminError(400, "invalid_arguments", f"count >= 1 and fields among {sorted(kinds)}")
        with self.ws.lock:
            self.ws.add_logins(count, **body)
            return {"added": count, "total": len(self.ws.logins)}

    # -- behaviour --------------------------------------------------------------------------
    def faults(self, body: Body) -> Body:
        """Queue faults: one fault object, `{"faults": [...]}`, or `{"clear": true}`."""
        if body.get("clear"):
            self.sandbox.traffic.clear_faults()
            return {"pending": []}
        docs = body.get("faults", [body])
        try:
            faults = [Fault(**doc) for doc in docs]
        except (TypeError, ValueError) as exc:
            raise AdminError(400, "invalid_fault", str(exc)) from None
        self.sandbox.traffic.add_faults(faults)
        return {"pending": self.sandbox.traffic.snapshot()["pending_faults"]}

    def current_settings(self) -> Body:
        return {**asdict(self.ws.settings), **asdict(self.sandbox.traffic.settings)}

    def settings(self, body: Body) -> Body:
        """Change app settings (rotation, PKCE, Redirect URLs, declined scopes, plan) and traffic settings at once."""
        app_keys = {f.name for f in fields(AppSettings)}
        traffic_keys = {f.name for f in fields(TrafficSettings)}
        unknown = set(body) - app_keys - traffic_keys
        if unknown:
            raise AdminError(400, "unknown_setting", ", ".join(sorted(unknown)))
        current = self.current_settings()
        for key, value in body.items():
            if not _same_type(current[key], value):
                raise AdminError(400, "invalid_setting", f"{key} must be a {type(current[key]).__name__}")
        app = replace(self.ws.settings, **{k: v for k, v in body.items() if k in app_keys})
        traffic = replace(
            self.sandbox.traffic.settings, **{k: v for k, v in body.items() if k in traffic_keys}
        )
        if app.expires_in < 1:
            raise AdminError(400, "invalid_setting", "expires_in must be at least 1 second")
        problem = redirects.registration_error(app.redirect_urls, pkce=app.pkce_enabled)
        if problem:
            raise AdminError(400, "invalid_redirect_url", problem)
        try:
            self.sandbox.traffic.configure(traffic)
        except ValueError as exc:
            raise AdminError(400, "invalid_setting", str(exc)) from None
        with self.ws.lock:
            self.ws.settings = app
        return {"settings": self.current_settings()}

    def app_oauth_settings(self) -> Body:
        with self.ws.lock:
            return {
                "redirect_urls": list(self.ws.settings.redirect_urls),
                "pkce_enabled": self.ws.settings.pkce_enabled,
            }

    def redirect_urls(self, body: Body) -> Body:
        """The app's Redirect URLs, as OAuth & Permissions holds them: `{"redirect_urls": [...]}`
        replaces the list, `{"add": URL}` adds one; `pkce_enabled` may change along with them.
        Refused as Slack's settings page refuses them (redirects.py)."""
        unknown = set(body) - {"redirect_urls", "add", "pkce_enabled"}
        if unknown or not body:
            raise AdminError(
                400, "invalid_arguments", "send redirect_urls [URL…] or add URL (and pkce_enabled)"
            )
        pkce = body.get("pkce_enabled", self.ws.settings.pkce_enabled)
        if not isinstance(pkce, bool):
            raise AdminError(400, "invalid_arguments", "pkce_enabled must be a boolean")
        with self.ws.lock:
            urls = body.get("redirect_urls", list(self.ws.settings.redirect_urls))
            if "add" in body:
                urls = [*urls, body["add"]] if isinstance(urls, list) and body["add"] not in urls else urls
            problem = redirects.registration_error(urls, pkce=pkce)
            if problem:
                raise AdminError(400, "invalid_redirect_url", problem)
            self.ws.settings = replace(self.ws.settings, redirect_urls=list(urls), pkce_enabled=pkce)
        return self.app_oauth_settings()

    def tokens(self, body: Body) -> Body:
        """The test shortcut around the browser: an oauth.v2.access answer for these scopes."""
        scopes, user_scopes = body.get("scopes"), body.get("user_scopes", [])
        for value in (scopes or [], user_scopes):
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise AdminError(400, "invalid_arguments", "scopes and user_scopes are lists of strings")
        return self.sandbox.issue_token(scopes=scopes, user_scopes=user_scopes)

    def clock(self, body: Body) -> Body:
        """Move the sandbox's clock forward: token expiry and Retry-After windows pass at once."""
        seconds = body.get("advance")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise AdminError(400, "invalid_arguments", "advance must be a number of seconds >= 0")
        self.sandbox.clock.advance(seconds)
        return {"advanced": seconds}

    def reset(self, body: Body) -> Body:
        self.sandbox.reset()
        return {}


def _same_type(current: Any, value: Any) -> bool:
    """JSON types for a setting: an int is fine where a float is expected, a bool never is a number."""
    if isinstance(current, bool) or isinstance(value, bool):
        return isinstance(current, bool) and isinstance(value, bool)
    if isinstance(current, float):
        return isinstance(value, int | float)
    return isinstance(value, type(current))
