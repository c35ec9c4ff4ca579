"""A Slack app manifest for the features cxslack will use, so creating the app takes a minute."""

from __future__ import annotations

from typing import Any

from cxslack.scopes import Feature, scopes_for

# Slack allows at most five unfurl domains; subdomains (eu2., cx498., ap3., …) are covered.
CORALOGIX_UNFURL_DOMAINS = ["coralogix.com", "coralogix.us", "coralogix.in", "coralogixsg.com"]


def build_manifest(features: set[Feature], redirect_uri: str, *, name: str = "Coralogix",
                   events_url: str | None = None, token_rotation: bool = False) -> dict[str, Any]:  # fmt: skip
    bot, user = scopes_for(features)
    scopes: dict[str, list[str]] = {"bot": bot}
    if user:
        scopes["user"] = user
    events: list[str] = []
    if Feature.TWO_WAY_SYNC in features:
        events += ["message.channels", "message.groups"]  # thread replies in public and private channels
    if Feature.LINK_PREVIEWS in features:
        events.append("link_shared")
    manifest: dict[str, Any] = {
        "display_information": {
            "name": name,
            "description": "Coralogix Cases and notifications in Slack",
        },
        "features": {"bot_user": {"display_name": name, "always_online": True}},
        "oauth_config": {"redirect_urls": [redirect_uri], "scopes": scopes},
        "settings": {
            "org_deploy_enabled": False,
            "socket_mode_enabled": bool(events) and events_url is None,
            "token_rotation_enabled": token_rotation,
        },
    }
    if Feature.LINK_PREVIEWS in features:
        manifest["features"]["unfurl_domains"] = CORALOGIX_UNFURL_DOMAINS
    if events:
        subscriptions: dict[str, Any] = {"bot_events": events}
        if events_url:
            subscriptions["request_url"] = events_url
        manifest["settings"]["event_subscriptions"] = subscriptions
    return manifest
