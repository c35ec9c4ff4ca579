"""Where a message goes, and getting it there: channel resolution, test notifications, fallback.

Resolution follows Notification Center: the entity type's override template is rendered; a
render error or an empty result means `channel`. Delivery failure on that channel means the
`fallback_channel`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cxslack.connectors import Connector, EntityType, missing_integration, normalise_channel
from cxslack.errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, CxError
from cxslack.model import Integration
from cxslack.registry import Registry
from cxslack.slack.client import SlackAccess, SlackError


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
        }


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
        self._joined: set[str] = set()

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        if self.access is None:
            return self._post_webhook(text, blocks)
        self._join_for_sync(channel)
        return self.access.post_message(channel, text, blocks=blocks, **extra)

    def _join_for_sync(self, channel: str) -> None:
        """With two-way sync the bot joins public channels so it can read thread replies (seed)."""
        if (
            not (self.integration.two_way_sync and self.integration.supports_cases_features)
            or channel in self._joined
        ):
            return
        assert self.access is not None
        try:
            self.access.call("conversations.join", channel=channel)
        except SlackError as exc:
            # Private channels cannot be joined (the app must be invited); posting will say so.
            if exc.code not in {
                "method_not_supported_for_channel_type",
                "channel_not_found",
                "is_archived",
                "missing_scope",
            }:
                raise
        self._joined.add(channel)

    def _post_webhook(self, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
        import httpx

        assert self.webhook_url is not None
        try:
            response = httpx.post(self.webhook_url, json={"text": text, "blocks": blocks}, timeout=15)
        except httpx.HTTPError as exc:
            raise SlackError(
                "webhook_unreachable", f"could not reach the incoming webhook ({type(exc).__name__})"
            ) from None
        if response.status_code != 200:
            error = response.text.strip()[:80] or f"HTTP {response.status_code}"
            raise SlackError("webhook_failed", f"the incoming webhook refused the message: {error}")
        return {"ok": True, "channel": None, "ts": None}


def send_test(
    deliverer: Deliverer, connector: Connector, payload: dict[str, Any] | None = None
) -> TestResult:
    """Post a test notification to the connector's channel; on failure, to its fallback channel."""
    from cxslack.oauth.flow import mark_failing_if_token_error
    from cxslack.templating import sample_payload

    integration = deliverer.integration
    result = TestResult(connector, integration)
    resolution = resolve_channel(
        connector, EntityType.TEST_NOTIFICATIONS, payload or sample_payload("test-notifications")
    )
    from cxslack.slack.messages import build_test_message

    text, blocks = build_test_message(connector, integration)
    result.channel = resolution.channel
    try:
        body = deliverer.post(resolution.channel, text, blocks)
        result.channel, result.ts = body.get("channel") or resolution.channel, body.get("ts")
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
        body = deliverer.post(connector.fallback_channel, text, blocks)
        result.channel, result.ts = body.get("channel") or connector.fallback_channel, body.get("ts")
        result.fallback_used = True
    except SlackError as exc:
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
            result = send_test(deliverer, connector)
        if on_done:
            on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items) or 1))) as pool:
        return list(pool.map(one, items))
