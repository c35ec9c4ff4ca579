"""One integration's view of Slack for a doctor run: auth.test once, the channel list once.

With cxslack's own channels:read and groups:read (`--channel-lookup`), channel existence and
membership for every connector come from one paginated `conversations.list` per integration
(Tier 2), never one `conversations.info` per channel, so doctor stays inside Slack's limits on
workspaces with thousands of connectors. Without them (the product page's scopes), the channel
list is not available: checks that need it are skipped with the command that grants them, and
membership is read per channel ID cxslack knows (from earlier posts) with one
`conversations.history` call each, which needs the two-way sync scopes, never a name.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from cxslack.credentials import read_secrets
from cxslack.doctor.report import Check, CheckStatus, Subject, Symptom
from cxslack.errors import CxError
from cxslack.model import Integration, Status
from cxslack.registry import Registry
from cxslack.scopes import CHANNEL_LOOKUP_SCOPES, FEATURE_SCOPES, LIST_TYPE_BY_SCOPE, Feature
from cxslack.slack.channels import IntegrationChannels
from cxslack.slack.client import AuthInfo, SlackAccess, SlackError

LIST_PAGE = 1000  # conversations.list's maximum page size
TOKEN_REJECTED = "not checked: the integration's token does not work (see failing.token)"


def bot_scopes(feature: Feature) -> list[str]:
    """The bot scopes a feature needs, from the product's one scope table."""
    return [s.name for s in FEATURE_SCOPES if s.feature is feature and not s.user]


class SlackUnavailable(Exception):
    """Slack cannot answer a check: how the check should report that, and what to do about it."""

    def __init__(self, status: CheckStatus, message: str, remediation: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.remediation = remediation

    def check(self, subject: Subject, id: str, symptom: Symptom) -> Check:
        return subject.check(id, symptom, self.status, self.message, self.remediation)


@dataclass(frozen=True)
class ChannelInfo:
    id: str
    name: str
    is_archived: bool
    is_member: bool


class ChannelDirectory:
    """Every channel the bot can see, by id and by name.

    Slack lists a private channel only to its members, so a channel missing here is either
    absent or private without the app: the two cannot be told apart from outside.
    """

    def __init__(self, channels: list[ChannelInfo]):
        self._by_id = {c.id: c for c in channels}
        self._by_name = {c.name: c for c in channels}

    def lookup(self, ref: str) -> ChannelInfo | None:
        return self._by_id.get(ref) or self._by_name.get(ref.removeprefix("#"))

    @classmethod
    def fetch(cls, access: SlackAccess, types: str = "public_channel,private_channel") -> ChannelDirectory:
        channels: list[ChannelInfo] = []
        cursor: str | None = None
        while True:
            body, _ = access.call(
                "conversations.list",
                types=types,
                exclude_archived=False,
                limit=LIST_PAGE,
                cursor=cursor,
            )
            channels += [_channel(doc) for doc in body.get("channels", []) if isinstance(doc, dict)]
            cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return cls(channels)


def _channel(doc: dict[str, Any]) -> ChannelInfo:
    return ChannelInfo(
        id=str(doc.get("id", "")),
        name=str(doc.get("name", "")),
        is_archived=bool(doc.get("is_archived")),
        is_member=bool(doc.get("is_member")),
    )


@dataclass(frozen=True)
class Membership:
    """Whether the bot is in a channel, as far as Slack can be asked without a name lookup."""

    state: str  # member | outside (public, not a member) | invisible (private without the app, or gone) | unknown
    detail: str = ""  # follows "#channel (role)" in a message


@dataclass(frozen=True)
class TokenProbe:
    """What auth.test said about the bot token, or why Slack was not asked."""

    info: AuthInfo | None = None
    error: CxError | None = None  # Slack refused, or the token could not be prepared (refresh)
    not_called: str | None = None  # offline, Pending, webhook-only, unreadable credentials
    status_change: Status | None = None  # the status this run persisted, when it changed

    @property
    def rejected(self) -> bool:
        """Slack says the token no longer works (revoked, app removed, invalid)."""
        return isinstance(self.error, SlackError) and self.error.token_invalid


def restore_active(registry: Registry, integration_id: str) -> bool:
    """The symmetric of `mark_failing_if_token_error`: a Failing integration whose token works
    again is Active. Returns whether the status changed."""
    with registry.editing() as (view, _):
        integration = view.integrations.get(integration_id)
        if integration is None or integration.status is not Status.FAILING:
            return False
        integration.set_status(Status.ACTIVE)
        return True


class SlackSession:
    """Memoised Slack answers for one integration; safe to use from several threads."""

    def __init__(self, registry: Registry, integration: Integration, offline: bool):
        self.registry = registry
        self.integration = integration
        self.offline = offline
        self._lock = threading.RLock()  # directory() asks probe() for the scopes under it
        self._probe: TokenProbe | None = None
        self._access: SlackAccess | None = None
        self._directory: ChannelDirectory | SlackUnavailable | None = None
        self._probes: dict[str, Membership] = {}
        from cxslack.state import open_state

        self.channels = IntegrationChannels(open_state(registry.store).channels, integration.id)

    def probe(self) -> TokenProbe:
        with self._lock:
            if self._probe is None:
                self._probe = self._run_probe()
            return self._probe

    def _run_probe(self) -> TokenProbe:
        from cxslack.oauth.flow import bot_access, mark_failing_if_token_error

        integration = self.integration
        if integration.status is Status.PENDING:
            return TokenProbe(not_called="Pending: the Slack app is not installed yet")
        try:
            secrets = read_secrets(self.registry.store, integration.id)
        except CxError as exc:
            return TokenProbe(not_called=f"credentials unreadable: {exc.message}")
        if secrets.bot is None and secrets.webhook_url:
            return TokenProbe(not_called="delivers through an incoming webhook: it has no bot token to check")
        if self.offline:
            return TokenProbe(not_called="not checked: --offline")
        try:
            if secrets.bot is None and secrets.user is not None:  # an access-logs-only install
                from cxslack.oauth.flow import fresh_tokens

                user = fresh_tokens(self.registry, integration).user
                assert user is not None
                self._access = SlackAccess(user.access_token)
            else:
                self._access = bot_access(self.registry, integration)  # refreshes an expiring rotation token
            info = self._access.auth_test()
        except SlackError as exc:
            mark_failing_if_token_error(self.registry, integration.id, exc)
            return TokenProbe(error=exc, status_change=self._reload_status())
        except CxError as exc:
            # No token, or a refresh Slack refused. Failing is recorded once Slack itself rejects
            # the token: until it expires, the stored one may still work.
            return TokenProbe(error=exc)
        restore_active(self.registry, integration.id)
        return TokenProbe(info=info, status_change=self._reload_status())

    def _reload_status(self) -> Status | None:
        """Copy the persisted status into this run's Integration; returns it when it changed."""
        stored = self.registry.view().integrations.get(self.integration.id)
        if stored is None or stored.status is self.integration.status:
            return None
        self.integration.status, self.integration.status_reason = stored.status, stored.status_reason
        return stored.status

    def scopes(self) -> list[str]:
        """Bot scopes as Slack reports them now (auth.test), else as stored at install."""
        probe = self.probe()
        if probe.info is not None and probe.info.scopes:
            return probe.info.scopes
        return list(self.integration.granted_scopes)

    def missing(self, feature: Feature) -> list[str]:
        """The feature's bot scopes that are not granted; SlackUnavailable when that is moot
        (the app is not installed, or Slack rejects its token)."""
        probe = self.probe()
        if self.integration.status is Status.PENDING or probe.rejected:
            raise SlackUnavailable(CheckStatus.SKIP, probe.not_called or TOKEN_REJECTED)
        granted = set(self.scopes())
        return [
            s.name for s in FEATURE_SCOPES if s.feature is feature and not s.user and s.name not in granted
        ]

    def directory(self) -> ChannelDirectory:
        """The channel list (fetched once); SlackUnavailable says why there is none."""
        probe = self.probe()
        with self._lock:
            if self._directory is None:
                self._directory = self._fetch_directory(probe)
            if isinstance(self._directory, SlackUnavailable):
                raise self._directory
            return self._directory

    def lookup_missing(self) -> list[str]:
        """Which of cxslack's own channel-lookup scopes the token lacks."""
        granted = set(self.scopes())
        return [s for s in CHANNEL_LOOKUP_SCOPES if s not in granted]

    def _no_lookup(self, missing: list[str]) -> SlackUnavailable:
        from cxslack.doctor import remedies

        return SlackUnavailable(
            CheckStatus.SKIP,
            f"needs {' and '.join(missing)} to look channels up by name; cxslack requests them only with "
            "--channel-lookup (they are not on the product page's scope list)",
            remedies.grant_channel_lookup(self.integration),
        )

    def _fetch_directory(self, probe: TokenProbe) -> ChannelDirectory | SlackUnavailable:
        if probe.not_called:
            return SlackUnavailable(CheckStatus.SKIP, probe.not_called)
        if probe.error is not None or self._access is None:
            return SlackUnavailable(CheckStatus.SKIP, TOKEN_REJECTED)
        missing = self.lookup_missing()
        if missing:
            return self._no_lookup(missing)
        try:
            return ChannelDirectory.fetch(self._access)
        except SlackError as exc:
            if exc.code == "missing_scope":  # granted once, gone now: never an `ok` built on it
                return self._no_lookup([str(exc.data.get("needed") or ", ".join(CHANNEL_LOOKUP_SCOPES))])
            return SlackUnavailable(CheckStatus.WARN, f"could not list channels: {exc.message}", exc.hint)

    def membership(self, ref: str) -> Membership:
        """Is the bot in this channel? From the channel list when cxslack may list channels,
        else by reading one message of the channel's history by its ID (not_in_channel and
        channel_not_found are the answers that matter). SlackUnavailable when Slack cannot be
        asked at all (Pending, token rejected, offline)."""
        try:
            directory = self.directory()
        except SlackUnavailable:
            if self._access is None or not self.lookup_missing():
                raise
            directory = None
        if directory is not None:
            info = directory.lookup(ref)
            if info is None:
                return Membership("invisible", "not found, or private without the app")
            return Membership("member" if info.is_member or info.is_archived else "outside")
        channel_id = self.channels.id_for(ref)
        if channel_id is None:
            refused = self.channels.refusal(ref)
            if refused is not None and refused.error == "channel_not_found":
                return Membership(
                    "invisible",
                    f"answered channel_not_found when cxslack last posted there ({refused.at}): "
                    "a private channel without the app, or no such channel",
                )
            return Membership(
                "unknown",
                "cxslack has not posted there yet, so it knows no channel ID to ask Slack about, and "
                f"looking it up by name needs {' and '.join(self.lookup_missing())}",
            )
        with self._lock:
            if channel_id not in self._probes:
                self._probes[channel_id] = self._probe_history(channel_id)
            return self._probes[channel_id]

    def _probe_history(self, channel_id: str) -> Membership:
        assert self._access is not None
        try:
            self._access.call("conversations.history", channel=channel_id, limit=1, http_verb="GET")
        except SlackError as exc:
            if exc.code == "not_in_channel":
                return Membership("outside", "the app is not a member")
            if exc.code == "channel_not_found":
                return Membership("invisible", f"is private without the app, or gone ({channel_id})")
            return Membership("unknown", f"could not read its history: {exc.message}")
        return Membership("member")


@dataclass(frozen=True)
class ChannelLookup:
    """Channels Slack did not list, and what was looked at (said with the warning)."""

    missing: list[str]
    searched: str  # "public channels", "public and private channels", …


def unlisted_channels(registry: Registry, integration: Integration, refs: list[str]) -> ChannelLookup | None:
    """Which of `refs` Slack does not list, or None when cxslack cannot look: the integration is
    not Active with a bot token, or its token lacks channels:read and groups:read. A Slack error
    is None too: this check only advises, and the connector is saved either way."""
    from cxslack.oauth.flow import bot_access

    # conversations.list needs channels:read for public channels and groups:read for private ones
    # (Slack's method page): cxslack's own --channel-lookup scopes, not the product page's
    types = [kind for scope, kind in LIST_TYPE_BY_SCOPE.items() if scope in integration.granted_scopes]
    if (
        not types
        or integration.status is not Status.ACTIVE
        or read_secrets(registry.store, integration.id).bot is None
    ):
        return None
    try:
        directory = ChannelDirectory.fetch(bot_access(registry, integration), ",".join(types))
    except CxError:
        return None
    missing = [ref for ref in dict.fromkeys(refs) if directory.lookup(ref) is None]
    searched = {
        1: "public channels" if types == ["public_channel"] else "private channels the app is in"
    }.get(len(types), "public channels and the private channels the app is in")
    return ChannelLookup(missing, searched)
