"""A Slack app manifest for the features cxslack will use, so creating the app takes a minute.

Events (two-way sync, previews) and interactivity (the buttons on Case messages) reach
`cxslack listen` either over HTTP — request URLs for the Events API and for Interactivity — or
over Socket Mode, which is app-wide: the manifest turns it on when no request URL is given.
"""

from __future__ import annotations

from typing import Any

from cxslack.errors import UsageError
from cxslack.scopes import Feature, scopes_for

# Slack allows at most five unfurl domains; subdomains (eu2., cx498., ap3., …) are covered.
CORALOGIX_UNFURL_DOMAINS = ["coralogix.com", "coralogix.us", "coralogix.in", "coralogixsg.com"]


EVENTS_SUFFIX, INTERACTIVITY_SUFFIX = "/slack/events", "/slack/interactivity"


def interactivity_url_for(events_url: str) -> str:
    """`cxslack listen` serves both on one port: …/slack/events → …/slack/interactivity."""
    if not events_url.rstrip("/").endswith(EVENTS_SUFFIX):
        raise UsageError(
            "missing_value",
            f"cannot tell the Interactivity URL from --events-url {events_url!r}",
            "Pass --interactivity-url (the public URL of `cxslack listen`'s /slack/interactivity), "
            "or --no-case-actions.",
        )
    return events_url.rstrip("/").removesuffix(EVENTS_SUFFIX) + INTERACTIVITY_SUFFIX


def build_manifest(features: set[Feature], redirect_uri: str, *, name: str = "Coralogix",
                   events_url: str | None = None, token_rotation: bool = False, case_actions: bool = True,
                   interactivity_url: str | None = None) -> dict[str, Any]:  # fmt: skip
    if case_actions and interactivity_url is None and events_url is not None:
        interactivity_url = interactivity_url_for(events_url)
    http = events_url is not None or interactivity_url is not None
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
            "socket_mode_enabled": bool(events or case_actions) and not http,
            "token_rotation_enabled": token_rotation,
        },
    }
    if case_actions:
        interactivity: dict[str, Any] = {"is_enabled": True}
        if interactivity_url:
            interactivity["request_url"] = interactivity_url
        manifest["settings"]["interactivity"] = interactivity
    if Feature.LINK_PREVIEWS in features:
        manifest["features"]["unfurl_domains"] = CORALOGIX_UNFURL_DOMAINS
    if events:
        subscriptions: dict[str, Any] = {"bot_events": events}
        if events_url:
            subscriptions["request_url"] = events_url
        manifest["settings"]["event_subscriptions"] = subscriptions
    return manifest
