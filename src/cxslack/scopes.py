"""The one table of OAuth scopes per feature, as the product page lists them.

Everything else (authorize URL, app manifest, doctor's missing-scope checks, declined-scope
warnings) derives from FEATURE_SCOPES.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Feature(StrEnum):
    ALWAYS = "always"
    TWO_WAY_SYNC = "two_way_sync"
    LINK_PREVIEWS = "link_previews"
    ACCESS_LOGS = "access_logs"


@dataclass(frozen=True)
class Scope:
    name: str
    feature: Feature
    reason: str
    user: bool = False  # a user-token scope (user_scope=), not a bot scope


FEATURE_SCOPES: tuple[Scope, ...] = (
    Scope("chat:write", Feature.ALWAYS, "Post notification messages to configured Slack channels."),
    Scope(
        "chat:write.customize", Feature.ALWAYS, "Customize message appearance (avatar, name) when posting."
    ),
    Scope(
        "chat:write.public",
        Feature.ALWAYS,
        "Send notifications to channels without requiring the bot to be invited first.",
    ),
    Scope(
        "users:read",
        Feature.ALWAYS,
        "Resolve Slack user identity when a user interacts with a Case notification.",
    ),
    Scope(
        "users:read.email",
        Feature.ALWAYS,
        "Match the Slack user's email to their Coralogix account for permission checks on Case interactions.",
    ),
    Scope(
        "channels:join",
        Feature.TWO_WAY_SYNC,
        "After posting a notification to a public channel, the bot joins the channel to read thread replies.",
    ),
    Scope(
        "channels:history",
        Feature.TWO_WAY_SYNC,
        "Read thread replies on Coralogix notification messages in public channels.",
    ),
    Scope(
        "groups:history",
        Feature.TWO_WAY_SYNC,
        "Read thread replies on Coralogix notification messages in private channels.",
    ),
    Scope(
        "links:read",
        Feature.LINK_PREVIEWS,
        "Detect Coralogix Case URLs shared in Slack to trigger preview generation.",
    ),
    Scope(
        "links:write",
        Feature.LINK_PREVIEWS,
        "Display a rich preview when a Coralogix Case URL is shared in Slack.",
    ),
    Scope(
        "openid", Feature.ACCESS_LOGS, "Connect the Slack user account with the Coralogix account.", user=True
    ),
    Scope(
        "admin",
        Feature.ACCESS_LOGS,
        "Read access logs for the current team and forward them to Coralogix.",
        user=True,
    ),
)

# What stops working when a feature's scopes are declined (used in warnings and by doctor).
FEATURE_CONSEQUENCE: dict[Feature, str] = {
    Feature.ALWAYS: "notifications cannot be posted or customised",
    Feature.TWO_WAY_SYNC: "Slack thread replies will not reach the Case timeline",
    Feature.LINK_PREVIEWS: "Coralogix Case URLs will not preview in Slack",
    Feature.ACCESS_LOGS: "Slack access logs cannot be collected",
}


def scopes_for(features: set[Feature]) -> tuple[list[str], list[str]]:
    """(bot scopes, user scopes) for a set of enabled features; ALWAYS is implied."""
    wanted = features | {Feature.ALWAYS}
    bot = [s.name for s in FEATURE_SCOPES if s.feature in wanted and not s.user]
    user = [s.name for s in FEATURE_SCOPES if s.feature in wanted and s.user]
    return bot, user


def scope_feature(name: str) -> Feature | None:
    for s in FEATURE_SCOPES:
        if s.name == name:
            return s.feature
    return None


def missing_by_feature(requested: list[str], granted: list[str]) -> dict[Feature, list[str]]:
    """Requested scopes that were not granted, grouped by the feature they serve."""
    have = set(granted)
    out: dict[Feature, list[str]] = {}
    for s in FEATURE_SCOPES:
        if s.name in requested and s.name not in have:
            out.setdefault(s.feature, []).append(s.name)
    return out
