"""The one table of OAuth scopes per feature, as the product page lists them, plus cxslack's own.

Everything else (authorize URL, app manifest, doctor's missing-scope checks, declined-scope
warnings) derives from FEATURE_SCOPES. By default cxslack requests exactly the product page's
scopes (least privilege is a promise of the product); `--channel-lookup` adds channels:read and
groups:read, cxslack's own, for looking channels up by name (doctor's channel checks, name → ID
before a first post). Everything works without them: channel IDs come from chat.postMessage's
answers and are remembered per integration (slack/channels.py). `--evaluation-chart` adds
files:write, for the alert evaluation chart the product page lists as coming soon.

`openid` is on the product page, but Slack documents it as a Sign in with Slack (OpenID Connect)
scope, requested at https://slack.com/openid/connect/authorize and exchanged through
openid.connect.token — not in the OAuth v2 install's `user_scope`
(docs.slack.dev/authentication/sign-in-with-slack, docs.slack.dev/reference/scopes/openid).
The v2 install for access logs therefore asks for `admin` alone, the one scope team.accessLogs
needs (docs.slack.dev/reference/scopes/admin); who installed comes back in `authed_user.id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Feature(StrEnum):
    ALWAYS = "always"
    TWO_WAY_SYNC = "two_way_sync"
    LINK_PREVIEWS = "link_previews"
    ACCESS_LOGS = "access_logs"
    CHANNEL_LOOKUP = "channel_lookup"  # cxslack's own (--channel-lookup), not on the product page
    # "Alert evaluation chart visible directly in the Slack notification (optional)": the product
    # page's "Coming soon" item; cxslack ships it (--evaluation-chart), so its scope is cxslack's own
    EVALUATION_CHART = "evaluation_chart"


@dataclass(frozen=True)
class Scope:
    name: str
    feature: Feature
    reason: str
    user: bool = False  # a user-token scope (user_scope=), not a bot scope
    own: bool = False  # cxslack's own addition, not in the product page's table
    oauth_v2: bool = True  # requested by the OAuth v2 install (False: another Slack flow's scope)


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
        "openid",
        Feature.ACCESS_LOGS,
        "Connect the Slack user account with the Coralogix account.",
        user=True,
        oauth_v2=False,  # Sign in with Slack's scope: not accepted by the v2 install (see above)
    ),
    Scope(
        "admin",
        Feature.ACCESS_LOGS,
        "Read access logs for the current team and forward them to Coralogix.",
        user=True,
    ),
    Scope(
        "channels:read",
        Feature.CHANNEL_LOOKUP,
        "Look public channels up by name: doctor's channel checks, and a channel's ID before a first post.",
        own=True,
    ),
    Scope(
        "groups:read",
        Feature.CHANNEL_LOOKUP,
        "Look private channels the app is in up by name: doctor's channel checks.",
        own=True,
    ),
    # files.getUploadURLExternal and files.completeUploadExternal need files:write
    # (docs.slack.dev/reference/methods/files.completeUploadExternal)
    Scope(
        "files:write",
        Feature.EVALUATION_CHART,
        "Share the alert evaluation chart (a PNG) into the Case notification's thread.",
        own=True,
    ),
)

# What stops working when a feature's scopes are declined (used in warnings and by doctor).
FEATURE_CONSEQUENCE: dict[Feature, str] = {
    Feature.ALWAYS: "notifications cannot be posted or customised",
    Feature.TWO_WAY_SYNC: "Slack thread replies will not reach the Case timeline",
    Feature.LINK_PREVIEWS: "Coralogix Case URLs will not preview in Slack",
    Feature.ACCESS_LOGS: "Slack access logs cannot be collected",
    Feature.CHANNEL_LOOKUP: "channels cannot be looked up by name (doctor skips its channel checks)",
    Feature.EVALUATION_CHART: "Case notifications go out without the alert evaluation chart",
}
CHANNEL_LOOKUP_SCOPES = tuple(s.name for s in FEATURE_SCOPES if s.feature is Feature.CHANNEL_LOOKUP)
# conversations.list `types` each lookup scope lets cxslack list
LIST_TYPE_BY_SCOPE = {"channels:read": "public_channel", "groups:read": "private_channel"}


def scopes_for(features: set[Feature]) -> tuple[list[str], list[str]]:
    """(bot scopes, user scopes) the OAuth v2 install requests for a set of enabled features."""
    requested = [s for s in FEATURE_SCOPES if s.feature in features and s.oauth_v2]
    return [s.name for s in requested if not s.user], [s.name for s in requested if s.user]


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
