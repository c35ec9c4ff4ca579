"""Where a message goes, and getting it there: channel resolution, test notifications, fallback.

Resolution follows Notification Center: the entity type's override template is rendered; a
render error or an empty result means `channel`. Delivery failure on that channel means the
`fallback_channel`.

Posting follows the product page's order: chat.postMessage reaches a public channel by name
(chat:write.public), its answer carries the channel's ID, which is remembered per integration
(slack/channels.py), and with two-way sync the bot then joins by that ID (conversations.join
takes IDs only) so Slack sends it the thread's replies. Later calls use the ID.

At most once: every message carries Slack message metadata with a post id. When a post was sent
and its answer lost (`OutcomeUnknown`), `post_once` looks for that id in the channel's history
(`conversations.history`, or `.replies` for a thread reply, with `include_all_metadata`): found,
it is delivered; certainly absent, it was not (the fallback channel may be tried); when the
history cannot be read (no channel ID known, no `*:history` scope, the app not a member, an
incoming webhook), it is `Unsettled`: nothing more is sent for that purpose, never the fallback
channel either, and the caller records it so that a rerun looks again before sending anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cxslack.connectors import Connector, EntityType, channel_label, missing_integration, normalise_channel
from cxslack.errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, CxError
from cxslack.model import Integration
from cxslack.registry import Registry, quote
from cxslack.scopes import LIST_TYPE_BY_SCOPE
from cxslack.slack.channels import IntegrationChannels, channel_name, is_channel_id
from cxslack.slack.client import OutcomeUnknown, SlackAccess, SlackError, slack_timeout
from cxslack.state.records import InDoubtPost

TEST_EVENT = "cxslack_test_notification"
# After a lost answer, history is read no sooner than this (at most the client timeout) after the
# post was sent: a message Slack is still storing is not taken for one that never came.
SETTLE_SECONDS = 3.0

# What a history search for an in-doubt message cannot get past, and why (for the message).
_UNSEARCHABLE = {
    "not_in_channel": "the app is not a member, so Slack will not show it the channel's history",
    "channel_not_found": "Slack does not show the app that channel (private without the app, or gone)",
    "missing_scope": "reading its history needs channels:history / groups:history, which were not granted",
}


@dataclass
class Resolution:
    channel: str
    source: str  # override | channel | fallback
    steps: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "source": self.source, "steps": self.steps}


def resolve_channel(connector: Connector, entity: EntityType, payload: dict[str, Any]) -> Resolution:
    from cxslack.templating import render_template

    steps: list[dict[str, Any]] = []
    template = connector.overrides.get(entity)
    if template is None:
        steps.append(
            {
                "step": "override",
                "entity_type": entity.value,
                "outcome": "none",
                "detail": f"no {entity.value} override",
            }
        )
    else:
        step: dict[str, Any] = {"step": "override", "entity_type": entity.value, "template": template}
        try:
            rendered = render_template(template, payload)
            if not rendered:
                step.update(outcome="empty", detail="the template rendered an empty string")
            else:
                step["rendered"] = rendered
                channel = normalise_channel(rendered, "rendered channel")
                step.update(outcome="used", channel=channel)
                steps.append(step)
                return Resolution(channel, "override", steps)
        except CxError as exc:
            step.update(outcome="error", error=exc.to_dict())
        steps.append(step)
    steps.append({"step": "channel", "outcome": "used", "channel": connector.channel})
    return Resolution(connector.channel, "channel", steps)


@dataclass
class TestResult:
    connector: Connector
    integration: Integration | None
    channel: str | None = None
    ts: str | None = None
    fallback_used: bool = False
    error: CxError | None = None
    primary_error: CxError | None = None  # what failed on `channel` when the fallback delivered
    recovered: bool = False  # a test whose answer was lost turned up in the channel: not sent again

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def exit_code(self) -> int:
        """The error's (a usage error is the delivery's failure here: 1); 5 when only the fallback
        channel got it (the primary failed: CI must hear of it); 0 when the channel did."""
        if self.error is None:
            return EXIT_PARTIAL if self.fallback_used else EXIT_OK
        return self.error.exit_code if self.error.exit_code != EXIT_USAGE else EXIT_FAILED

    def to_json(self) -> dict[str, Any]:
        return {
            "result": "success" if self.ok else "failure",
            "connector": self.connector.id,
            "integration": self.integration.id if self.integration else self.connector.integration,
            "channel": self.channel,
            "ts": self.ts,
            "fallback_used": self.fallback_used,
            "error": self.error.to_dict() if self.error else None,
            "primary_error": self.primary_error.to_dict() if self.primary_error else None,
            "recovered": self.recovered,
            "in_doubt": isinstance(self.error, PostInDoubt),
        }


@dataclass
class Found:
    """Where an in-doubt message turned up, or why some channels could not be searched."""

    channel: str | None = None
    message: dict[str, Any] | None = None
    unsearchable: list[str] = field(default_factory=list)

    @property
    def certain(self) -> bool:
        """Found, or searched everywhere it could be: a second post would not be a duplicate."""
        return self.message is not None or not self.unsearchable


class PostInDoubt(CxError):
    """A message that may or may not have arrived, and cxslack cannot look: nothing more is sent
    for its purpose until a rerun can tell, or a person says to resend (exit 5)."""

    exit_code = EXIT_PARTIAL


def in_doubt_error(code: str, what: str, channels: Iterable[str], sent_at: float, why: str,
                   reasons: Iterable[str], rerun: str, resend: str = "--resend") -> PostInDoubt:  # fmt: skip
    """The report a person needs: what, where, when, why nobody can tell, and what to run."""
    from cxslack.model import utc_now

    where = " or ".join(channel_label(c) for c in dict.fromkeys(channels))
    return PostInDoubt(
        code,
        f"{what} was sent to {where} at {utc_now(sent_at)}, but {why}; cxslack cannot tell whether it "
        f"arrived ({'; '.join(reasons)}), so it sends nothing more for it",
        f"Look in {where} for a message sent at {utc_now(sent_at)}. A rerun looks again and sends nothing "
        f"while it cannot tell: {rerun}. If it did not arrive: {rerun} {resend} (a duplicate if it did).",
    )


class Unsettled(PostInDoubt):
    """`post_once`'s message was sent, its answer lost, and its channel cannot be searched."""

    def __init__(self, post: str, channels: tuple[str, ...], sent_at: float, why: str, reasons: list[str],
                 thread_ts: str | None = None):  # fmt: skip
        error = in_doubt_error(
            "post_in_doubt", "A message", channels, sent_at, why, reasons, "the same command"
        )
        super().__init__(error.code, error.message, error.hint)
        self.post, self.channels, self.sent_at, self.why = post, channels, sent_at, why
        self.reasons, self.thread_ts = reasons, thread_ts

    def described(self, code: str, what: str, rerun: str, resend: str = "--resend") -> PostInDoubt:
        return in_doubt_error(code, what, self.channels, self.sent_at, self.why, self.reasons, rerun, resend)

    def record(self, purpose: str, integration: str, detail: str | None = None) -> InDoubtPost:
        return InDoubtPost(purpose, self.post, self.channels, self.sent_at, integration, self.thread_ts, detail,
                           self.why)  # fmt: skip


def with_post_id(metadata: dict[str, Any], post: str) -> dict[str, Any]:
    """Message metadata that also carries the post's id (what a search for it matches)."""
    payload = metadata.get("event_payload")
    return {"event_type": metadata["event_type"],
            "event_payload": {**(payload if isinstance(payload, dict) else {}), "post": post}}  # fmt: skip


def is_post(post: str) -> Callable[[dict[str, Any]], bool]:
    return lambda message: metadata_of(message)[1].get("post") == post


def metadata_of(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(event_type, event_payload) of a message's Slack metadata ("" and {} when it has none)."""
    meta = message.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    payload = meta.get("event_payload")
    return str(meta.get("event_type") or ""), payload if isinstance(payload, dict) else {}


class Deliverer:
    """Posts through one integration: its bot token (or, for earlier versions, its webhook)."""

    def __init__(self, registry: Registry, integration: Integration):
        from cxslack.credentials import read_secrets
        from cxslack.oauth.flow import bot_access

        self.registry = registry
        self.integration = integration
        secrets = read_secrets(registry.store, integration.id)
        self.webhook_url = secrets.webhook_url if secrets.bot is None else None
        self.access: SlackAccess | None = None if self.webhook_url else bot_access(registry, integration)
        from cxslack.state import open_state

        state = open_state(registry.store)
        self.channels = IntegrationChannels(state.channels, integration.id)
        self.in_doubt = state.in_doubt
        self._joined: set[str] = set()

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """Post by the channel's ID when it is known, else by name; learn the ID from the answer."""
        if self.access is None:
            return self._post_webhook(text, blocks)
        known = self.channels.id_for(channel)
        try:
            body = self.access.post_message(known or channel, text, blocks=blocks, **extra)
        except SlackError as exc:
            if known and known != channel and exc.code == "channel_not_found":
                # the remembered channel is gone (deleted, or private and the app removed): Slack
                # refused the post, so posting by name once more cannot duplicate it
                self.channels.forget(channel)
                return self.post(channel, text, blocks, **extra)
            if not known and exc.code in {"channel_not_found", "not_in_channel", "is_archived"}:
                self.channels.refused(channel, exc.code)
            raise
        channel_id = str(body.get("channel") or "")
        if channel_id:
            self.channels.learn(channel, channel_id)
            self._join_for_sync(channel_id)
        return body

    def post_once(self, channel: str, text: str, blocks: list[dict[str, Any]], *, metadata: dict[str, Any],
                  post: str, thread_ts: str | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
        """Post a message that must not arrive twice. Its metadata carries `post`; when the answer
        is lost, the message is looked for by that id: found, its (channel, ts) are returned with
        `recovered`; certainly absent, `not_delivered` (a SlackError: nothing was posted);
        otherwise `Unsettled`. Slack's refusals are SlackErrors as from `post`."""
        try:
            return self.post(channel, text, blocks, metadata=with_post_id(metadata, post), thread_ts=thread_ts,
                             **extra)  # fmt: skip
        except OutcomeUnknown as exc:
            found = self.look_for(post, [channel], exc.sent_at, thread_ts)
            if found.message is not None:
                return {
                    "ok": True,
                    "channel": found.channel,
                    "ts": str(found.message.get("ts")),
                    "recovered": True,
                }
            if found.certain:
                raise SlackError(
                    "not_delivered",
                    f"Slack did not answer ({exc.why}) and the message is not in {channel_label(channel)}: "
                    "it was not posted",
                    "Slack may be having trouble; try again shortly.",
                ) from None
            raise Unsettled(post, (channel,), exc.sent_at, exc.why, found.unsearchable, thread_ts) from None

    def look_for(
        self, post: str, channels: Iterable[str], sent_at: float, thread_ts: str | None = None
    ) -> Found:
        """Search for a message by its post id, no sooner than SETTLE_SECONDS after it was sent."""
        import time

        if self.access is not None:
            ready = sent_at + min(SETTLE_SECONDS, self.access.timeout)
            if ready > time.time():
                time.sleep(ready - time.time())
        return self.find_posted(channels, sent_at, is_post(post), thread_ts=thread_ts)

    def _join_for_sync(self, channel_id: str) -> None:
        """With two-way sync the bot joins the public channel it just posted to, by ID, so Slack
        sends it the thread's replies (message.channels reaches members only). A failed join
        never fails the post: doctor reports membership and scopes, the next post tries again."""
        if (
            not (self.integration.two_way_sync and self.integration.supports_cases_features)
            or channel_id in self._joined
        ):
            return
        assert self.access is not None
        try:
            self.access.call("conversations.join", channel=channel_id)
        except SlackError as exc:
            if exc.code != "method_not_supported_for_channel_type":  # private: the app is in it already
                return
        self._joined.add(channel_id)

    # -- finding a message whose post was in doubt ----------------------------------------------
    def channel_id(self, ref: str) -> str | None:
        """A channel's ID without posting: `ref` itself, the one remembered from an earlier post,
        or (with cxslack's own channels:read / groups:read) conversations.list. None: unknown."""
        known = self.channels.id_for(ref)
        if known or self.access is None:
            return known
        types = [t for scope, t in LIST_TYPE_BY_SCOPE.items() if scope in self.integration.granted_scopes]
        if not types:
            return None
        name, cursor = channel_name(ref), None
        while True:
            body, _ = self.access.call("conversations.list", types=",".join(types), exclude_archived=False,
                                       limit=1000, cursor=cursor, http_verb="GET")  # fmt: skip
            for item in body.get("channels") or []:
                if isinstance(item, dict) and item.get("name") == name and item.get("id"):
                    self.channels.learn(name, str(item["id"]))
                    return str(item["id"])
            cursor = (body.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    def find_posted(self, channels: Iterable[str], since: float, matches: Callable[[dict[str, Any]], bool],
                    thread_ts: str | None = None) -> Found:  # fmt: skip
        """Look for a message cxslack may have posted (found by `matches` on its metadata) in each
        channel's history since `since` (in the thread of `thread_ts`, for a reply). Slack errors
        other than "cannot look" propagate."""
        found = Found()
        for ref in dict.fromkeys(channels):
            shown = ref if is_channel_id(ref) else f"#{channel_name(ref)}"
            channel_id = self.channel_id(ref) if self.access is not None else None
            if self.access is None:
                found.unsearchable.append(
                    f"{shown}: delivered through an incoming webhook, which cannot be read back"
                )
                continue
            if channel_id is None:
                found.unsearchable.append(
                    f"{shown}: cxslack does not know its channel ID (Slack takes only IDs for reading history; "
                    "it learns one from a post's answer, or by name with --channel-lookup)"
                )
                continue
            try:
                message = self._search(channel_id, since, matches, thread_ts)
            except SlackError as exc:
                if exc.code not in _UNSEARCHABLE:
                    raise
                found.unsearchable.append(f"{shown}: {_UNSEARCHABLE[exc.code]} ({exc.code})")
                continue
            if message is not None:
                found.channel, found.message = channel_id, message
                return found
        return found

    def _search(self, channel_id: str, since: float, matches: Callable[[dict[str, Any]], bool],
                thread_ts: str | None) -> dict[str, Any] | None:  # fmt: skip
        assert self.access is not None
        cursor = None
        where: dict[str, Any] = {"ts": thread_ts} if thread_ts else {}
        method = "conversations.replies" if thread_ts else "conversations.history"
        while True:
            body, _ = self.access.call(method, channel=channel_id, oldest=f"{max(0.0, since - 60):.6f}", limit=200,
                                       cursor=cursor, include_all_metadata=True, http_verb="GET", **where)  # fmt: skip
            for message in body.get("messages") or []:
                if isinstance(message, dict) and matches(message):
                    return message
            cursor = (body.get("response_metadata") or {}).get("next_cursor")
            if not body.get("has_more") or not cursor:
                return None

    def _post_webhook(self, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
        import time

        import httpx

        assert self.webhook_url is not None
        timeout = slack_timeout()  # to connect, and then for each wait for the answer: as for the Web API
        sent_at = time.time()
        try:
            response = httpx.post(self.webhook_url, json={"text": text, "blocks": blocks}, timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise SlackError(
                "webhook_unreachable", f"could not reach the incoming webhook ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:  # sent: it may have been posted
            why = (f"no answer came within {timeout:g} s" if isinstance(exc, httpx.ReadTimeout)
                   else f"the connection dropped before the answer came ({type(exc).__name__})")  # fmt: skip
            raise OutcomeUnknown("the incoming webhook", None, sent_at, why) from None
        if response.status_code != 200:
            error = response.text.strip()[:80] or f"HTTP {response.status_code}"
            raise SlackError("webhook_failed", f"the incoming webhook refused the message: {error}")
        return {"ok": True, "channel": None, "ts": None}


def send_test(deliverer: Deliverer, connector: Connector, payload: dict[str, Any] | None = None, *,
              resend: bool = False) -> TestResult:  # fmt: skip
    """Post a test notification to the connector's channel; on failure, to its fallback channel.

    A test whose outcome an earlier run could not tell is settled first: found, it is this run's
    result (no second one is sent); still unknown, nothing is sent (`resend`: send anyway)."""
    from cxslack.oauth.flow import mark_failing_if_token_error
    from cxslack.slack.messages import build_test_message
    from cxslack.templating import sample_payload

    integration = deliverer.integration
    result = TestResult(connector, integration)
    purpose, rerun = f"test|{connector.id}", f"cxslack connectors test {quote(connector.name)}"
    what = f"The test notification of connector {connector.name}"
    pending = deliverer.in_doubt.get(purpose)
    if pending is not None and resend:
        deliverer.in_doubt.settle(purpose)
    elif pending is not None:
        found = deliverer.look_for(pending.post, pending.channels, pending.sent_at)
        if found.message is not None:
            deliverer.in_doubt.settle(purpose)
            result.channel, result.ts, result.recovered = found.channel, str(found.message.get("ts")), True
            result.fallback_used = pending.channels[0] == connector.fallback_channel
            return result
        if not found.certain:
            result.channel = pending.channels[0]
            result.error = in_doubt_error("test_in_doubt", what, pending.channels, pending.sent_at,
                                          pending.why or "its answer was lost", found.unsearchable, rerun)  # fmt: skip
            return result
        deliverer.in_doubt.settle(purpose)  # it never arrived: this run sends one
    resolution = resolve_channel(
        connector, EntityType.TEST_NOTIFICATIONS, payload or sample_payload("test-notifications")
    )
    text, blocks = build_test_message(connector, integration)
    metadata = {"event_type": TEST_EVENT, "event_payload": {"connector": connector.id}}

    def attempt(channel: str) -> None:
        result.channel = channel
        try:
            body = deliverer.post_once(channel, text, blocks, metadata=metadata, post=uuid.uuid4().hex)
        except Unsettled as unsettled:  # never the fallback while this one may have arrived
            deliverer.in_doubt.record(unsettled.record(purpose, integration.id))
            raise unsettled.described("test_in_doubt", what, rerun) from None
        result.channel, result.ts = body.get("channel") or channel, body.get("ts")
        result.recovered = bool(body.get("recovered"))

    try:
        attempt(resolution.channel)
        return result
    except PostInDoubt as doubt:
        result.error = doubt
        return result
    except SlackError as exc:
        if exc.token_invalid:
            mark_failing_if_token_error(deliverer.registry, integration.id, exc)
            result.error = exc
            return result
        if resolution.channel == connector.fallback_channel or deliverer.access is None:
            result.error = exc
            return result
        result.primary_error = exc
    try:
        attempt(connector.fallback_channel)
        result.fallback_used = True
    except (SlackError, PostInDoubt) as exc:
        result.error = exc
        result.channel = connector.fallback_channel
    return result


def send_tests(
    registry: Registry,
    connectors: Iterable[Connector],
    integrations: dict[str, Integration],
    *,
    workers: int = 16,
    on_done: Callable[[TestResult], None] | None = None,
    resend: bool = False,
) -> list[TestResult]:
    """Test many connectors concurrently; the access layer keeps each channel under Slack's limit."""
    items = list(connectors)
    deliverers: dict[str, Deliverer | CxError] = {}
    for connector in items:
        integration = integrations.get(connector.integration)
        if integration is not None and integration.id not in deliverers:
            try:
                deliverers[integration.id] = Deliverer(registry, integration)
            except CxError as exc:
                deliverers[integration.id] = exc

    def one(connector: Connector) -> TestResult:
        integration = integrations.get(connector.integration)
        deliverer = deliverers.get(integration.id) if integration else None
        if integration is None:
            result = TestResult(connector, None, error=missing_integration(connector))
        elif isinstance(deliverer, CxError):
            result = TestResult(connector, integration, error=deliverer)
        else:
            assert deliverer is not None
            result = send_test(deliverer, connector, resend=resend)
        if on_done:
            on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items) or 1))) as pool:
        return list(pool.map(one, items))
