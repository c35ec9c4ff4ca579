"""What `cxslack listen` does with each Slack event: two-way comment sync, Case URL previews, and
clicks on Case buttons (cases/actions.py).

`make_handler(registry)` returns the callable the listener runs for every Events API envelope.
An outage (Slack or Coralogix answering 5xx, unreachable, or rate-limiting past our patience)
raises `RetryableError`, and the listener keeps the event and tries again later; anything else
is permanent for that event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cxslack.errors import CxError
from cxslack.model import Integration
from cxslack.registry import Registry

RETRYABLE_CODES = frozenset(
    {
        "slack_unavailable",
        "slack_unreachable",
        "ratelimited",
        "coralogix_unavailable",
        "coralogix_unreachable",
        "state_unavailable",  # the shared state database: the event waits, nothing is acted on twice
    }
)


class RetryableError(CxError):
    """A Slack or Coralogix outage: the event is kept and handled again later."""


def thread_of(event: dict[str, Any]) -> str | None:
    """The thread a message event is about: its own, or its edited or deleted message's."""
    for source in (event, event.get("message"), event.get("previous_message")):
        if isinstance(source, dict) and isinstance(source.get("thread_ts"), str) and source["thread_ts"]:
            return str(source["thread_ts"])
    return None


class SlackEventHandler:
    """Handles Events API envelopes for every integration installed in cxslack's store."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._coralogix: Any = None
        self._sync: dict[str, Any] = {}
        self._clicks: Any = None

    def coralogix(self) -> Any:
        if self._coralogix is None:
            from cxslack.coralogix.client import CoralogixClient
            from cxslack.coralogix.config import resolve_settings

            self._coralogix = CoralogixClient(resolve_settings(store=self.registry.store))
        return self._coralogix

    def _access(self, integration: Integration) -> Any:
        from cxslack.oauth.flow import bot_access

        return bot_access(self.registry, integration)

    def __call__(self, envelope: dict[str, Any]) -> Any:
        event = envelope.get("event")
        clicked = envelope.get("type") == "block_actions"  # a Case button (listen/interactivity.py)
        if not clicked and not isinstance(event, dict):
            return None
        try:
            if clicked:
                return self._click(envelope)
            assert isinstance(event, dict)  # for the type checker: checked above
            if event.get("type") == "message":
                return self._message(event)
            if event.get("type") == "link_shared":
                return self._link_shared(installation_teams(envelope, event), event)
            return None
        except CxError as exc:
            if exc.code in RETRYABLE_CODES:
                raise RetryableError(exc.code, exc.message, exc.hint) from exc
            from cxslack.oauth.flow import mark_failing_if_token_error
            from cxslack.slack.client import SlackError

            if isinstance(exc, SlackError):
                for integration in self.registry.view().integrations.values():
                    mark_failing_if_token_error(self.registry, integration.id, exc)
            raise

    def _click(self, envelope: dict[str, Any]) -> Any:
        from cxslack.cases.actions import ClickHandler

        if self._clicks is None:
            self._clicks = ClickHandler(self.registry, self.coralogix, self._access)
        return self._clicks(envelope)

    def _message(self, event: dict[str, Any]) -> Any:
        from cxslack.cases.twoway import ReplySync
        from cxslack.state import open_state

        thread_ts, channel = thread_of(event), event.get("channel")
        if thread_ts is None or not isinstance(channel, str):
            return None
        thread = open_state(self.registry.store).threads.at(channel, thread_ts)
        if thread is None:
            return None  # not a thread cxslack posted
        integration = self.registry.view().integrations.get(thread.integration)
        if integration is None or not ReplySync.enabled_for(integration):
            return None  # doctor reports why (earlier version, sync off, not Active)
        access = self._access(integration)  # per event: a rotating token may have been refreshed
        sync = self._sync.get(integration.id)
        if sync is None:
            sync = self._sync[integration.id] = ReplySync(
                self.registry, integration, access, self.coralogix()
            )
        sync.access = access
        return sync.handle_message(event)

    def _link_shared(self, teams: list[str], event: dict[str, Any]) -> Any:
        from cxslack.cases.previews import previews_enabled, unfurl_shared_links
        from cxslack.state import open_state

        installed: dict[str, Integration] = {}
        for candidate in self.registry.view().integrations.values():
            if candidate.workspace and previews_enabled(candidate):
                installed.setdefault(candidate.workspace.team_id, candidate)  # the first, as before
        for team in teams:
            integration = installed.get(team)
            if integration is not None:
                book = open_state(self.registry.store).previews
                return unfurl_shared_links(
                    self._access(integration), self.coralogix(), book, integration, event
                )
        return None


def installation_teams(envelope: dict[str, Any], event: dict[str, Any]) -> list[str]:
    """The workspaces an event may be for, the installation's first: `authorizations[].team_id`
    names the installation the event was sent to, while the envelope's `team_id` is where it
    happened — another organisation's workspace in a Slack Connect channel
    (`is_ext_shared_channel`; docs.slack.dev/apis/events-api, the event envelope)."""
    authorizations = envelope.get("authorizations")
    teams = (
        [a.get("team_id") for a in authorizations if isinstance(a, dict)]
        if isinstance(authorizations, list)
        else []
    )
    teams += [envelope.get("team_id"), envelope.get("context_team_id"), event.get("team")]
    return list(dict.fromkeys(t for t in teams if isinstance(t, str) and t))


def make_handler(registry: Registry | None = None) -> Callable[[dict[str, Any]], Any]:
    return SlackEventHandler(registry or Registry())
