"""A Slack app manifest for the features cxslack will use, so creating the app takes a minute."""

from __future__ import annotations

import json
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


def to_yaml(value: Any, indent: int = 0) -> str:
    """YAML for the manifest's plain shapes (dicts, lists, strings, bools); strings JSON-quoted."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                body = to_yaml(item, indent + 1).lstrip()
                lines.append(f"{pad}- {body}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value, ensure_ascii=False)
