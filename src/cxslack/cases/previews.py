"""Rich previews for Coralogix Case URLs shared in Slack (v0.1.0, links:read + links:write).

On `link_shared`, every link that is a Case URL is answered with `chat.unfurl`: title, status,
priority and assignee, no interactive elements. Where each preview lives is remembered, so
when `cases notify` sees a status or priority change, the previews are refreshed (calling
chat.unfurl again for the same message replaces the preview).

A link typed into the message composer arrives from channel `COMPOSER` with a `message_ts` that
is no timestamp: only `unfurl_id` + `source` address it (api.slack.com/changelog/2021-08-changes-
to-unfurls), and it is not remembered — once posted, Slack sends link_shared for the message.
Without `unfurl_id` (older payloads) the preview goes to `channel` + `message_ts`.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

from cxslack.cases.model import case_key
from cxslack.cases.people import People
from cxslack.model import Integration, Status
from cxslack.slack.messages import case_preview
from cxslack.state import open_state
from cxslack.state.interface import PreviewBook
from cxslack.state.records import PreviewPlace

# The deep-link form the Cases API returns (…/#/cases/<uuid>) and the team-URL forms people
# paste (https://<team>.app.coralogix.com/#/cases/CASE-123, with or without the '#/').
DEFAULT_CASE_URL = r"https?://[^\s/?#]+/(?:#/)?cases/(?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Za-z]+-[0-9]+)(?:[/?#]\S*)?"
LINK_SCOPES = ("links:read", "links:write")


def case_url_pattern() -> re.Pattern[str]:
    """CXSLACK_CASE_URL_PATTERN overrides the default; it must have a named group `id`."""
    from cxslack.errors import UsageError

    raw = os.environ.get("CXSLACK_CASE_URL_PATTERN") or DEFAULT_CASE_URL
    try:
        pattern = re.compile(raw)
    except re.error as exc:
        raise UsageError(
            "invalid_case_url_pattern", f"CXSLACK_CASE_URL_PATTERN is not a regular expression: {exc}"
        ) from None
    if "id" not in pattern.groupindex:
        raise UsageError(
            "invalid_case_url_pattern",
            "CXSLACK_CASE_URL_PATTERN needs a named group (?P<id>…) for the Case id",
        )
    return pattern


def case_id_from_url(url: str, pattern: re.Pattern[str] | None = None) -> str | None:
    match = (pattern or case_url_pattern()).fullmatch(url.strip("<>"))
    if not match:
        return None
    value = match.group("id")
    return value.upper() if "-" in value and not re.fullmatch(r"[0-9a-fA-F-]{36}", value) else value.lower()


def previews_enabled(integration: Integration) -> bool:
    return (
        integration.supports_cases_features
        and integration.link_previews
        and integration.status is Status.ACTIVE
        and all(s in integration.granted_scopes for s in LINK_SCOPES)
    )


def unfurl_shared_links(
    access: Any, coralogix: Any, book: PreviewBook, integration: Integration, event: dict[str, Any]
) -> list[str]:
    """Answer a link_shared event; returns the Case ids previewed."""
    channel, ts = str(event.get("channel") or ""), str(event.get("message_ts") or "")
    unfurl_id = str(event["unfurl_id"]) if event.get("unfurl_id") else None
    composer = channel == "COMPOSER" or event.get("source") == "composer"
    if unfurl_id is None and (composer or not channel or not ts):
        return []  # nothing chat.unfurl could address
    source = str(event.get("source") or ("composer" if composer else "conversations_history"))
    pattern = case_url_pattern()
    people = People(coralogix, slack=access)
    unfurls: dict[str, Any] = {}
    shown: list[tuple[str, str, dict[str, Any]]] = []
    for link in event.get("links") or []:
        url = str(link.get("url") or "") if isinstance(link, dict) else ""
        case_id = case_id_from_url(url, pattern) if url else None
        if case_id is None or url in unfurls:
            continue
        case = coralogix.get_case(case_id)
        unfurls[url] = case_preview(case, url, people.assignee_for_slack(case))
        shown.append((url, case_key(case), case))
    if not unfurls:
        return []
    places = [
        PreviewPlace(channel, ts, url, integration.id, _text(case.get("status")), _text(case.get("priority")),
                     unfurl_id, source if unfurl_id else None)
        for url, _, case in shown
    ]  # fmt: skip
    access.call("chat.unfurl", unfurls=unfurls, **places[0].target())
    if not composer:  # a composer preview is gone once the message is posted (or abandoned)
        for place, (_, key, _) in zip(places, shown, strict=True):
            book.remember(key, place)
    return [key for _, key, _ in shown]


def _text(value: Any) -> str | None:
    return str(value) if value else None


def refresh_previews(registry: Any, case: dict[str, Any], coralogix: Any = None) -> int:
    """Re-unfurl the Case's previews whose status or priority is out of date; returns how many."""
    from cxslack.oauth.flow import bot_access
    from cxslack.slack.client import SlackError

    book = open_state(registry.store).previews
    key = case_key(case)
    now_showing = (_text(case.get("status")), _text(case.get("priority")))
    stale = [p for p in book.of_case(key) if (p.status, p.priority) != now_showing]
    if not stale:
        return 0
    integrations = registry.view().integrations
    refreshed = 0
    for place in stale:
        integration = integrations.get(place.integration)
        if integration is None or not previews_enabled(integration):
            continue
        try:
            access = bot_access(registry, integration)
            assignee = People(coralogix, slack=access).assignee_for_slack(case)
            access.call(
                "chat.unfurl", unfurls={place.url: case_preview(case, place.url, assignee)}, **place.target()
            )
        except SlackError:
            continue  # the message may be gone; the next notify tries again
        book.shown(key, replace(place, status=now_showing[0], priority=now_showing[1]))
        refreshed += 1
    return refreshed
