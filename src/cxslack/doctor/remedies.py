"""The exact commands doctor suggests, with names shell-quoted so they can be pasted as they are."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cxslack.connectors import Connector, EntityType, channel_label
from cxslack.model import CURRENT_VERSION, Integration
from cxslack.registry import quote

if TYPE_CHECKING:
    from cxslack.doctor.context import Context

# How people address the app in Slack; `/invite` is a Slack action, not a cxslack command.
APP_MENTION = "@Coralogix"


def authorize(integration: Integration) -> str:
    return f"cxslack integrations authorize {quote(integration.name)}"


def grant_channel_lookup(integration: Integration) -> str:
    """Turn on cxslack's own channels:read + groups:read and reinstall, so Slack grants them."""
    return f"{authorize(integration)} --channel-lookup"


def enable(integration: Integration, flag: str) -> str:
    """Turn a feature on and authorize again, so Slack grants the scopes it needs."""
    return f"cxslack integrations edit {quote(integration.name)} {flag} && {authorize(integration)}"


def invite(channel: str) -> str:
    return f"in Slack, run /invite {APP_MENTION} in {channel_label(channel)}"


def edit_connector(connector: Connector, change: str) -> str:
    return f"cxslack connectors edit {quote(connector.name)} {change}"


def render(connector: Connector, entity: EntityType) -> str:
    return f"cxslack connectors render {quote(connector.name)} --entity-type {entity.value}"


def add_current(integration: Integration, *, two_way_sync: bool) -> tuple[str, str]:
    """(name, command) of a new v0.1.0 integration standing in for an earlier-version one."""
    name = f"{integration.name} v{CURRENT_VERSION}"
    sync = " --two-way-sync" if two_way_sync else ""
    return name, f"cxslack integrations add --name {quote(name)}{sync} --consent-us-data-transfer --authorize"


def move_to_current(ctx: Context, integration: Integration, *, two_way_sync: bool = False) -> str:
    """Migrate an earlier-version integration's connectors to v0.1.0: to an existing v0.1.0
    integration (with two-way sync, when that is the point), else to a new one."""
    target = next(
        (
            i
            for i in ctx.all_integrations
            if i.supports_cases_features and (i.two_way_sync or not two_way_sync)
        ),
        None,
    )
    migrate = f"cxslack connectors migrate --from {quote(integration.name)} --to"
    if target is not None:
        return f"{migrate} {quote(target.name)}"
    name, add = add_current(integration, two_way_sync=two_way_sync)
    return f"{add} && {migrate} {quote(name)}"
