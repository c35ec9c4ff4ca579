"""Reading team.accessLogs: a whole window of logins, narrowing the query past Slack's page limit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cxslack.access_logs.records import Login
from cxslack.access_logs.times import rfc3339
from cxslack.errors import CxError
from cxslack.slack.client import SlackAccess, SlackError

PAGE_SIZE = 1000  # Slack's largest page
MAX_PAGES = 100  # Slack refuses page 101 of a query with over_pagination_limit


class Stopped(Exception):
    """--follow was asked to stop (SIGINT/SIGTERM) between two pages or batches."""


@dataclass
class Window:
    logins: dict[str, Login]
    pages: int


def read_window(
    access: SlackAccess,
    floor: int,
    until: int | None,
    *,
    page_size: int = PAGE_SIZE,
    on_page: Callable[[int, int], None] = lambda pages, entries: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Window:
    """Every login with floor <= date_first <= until (None: Slack's now), narrowing past the page limit."""
    found: dict[str, Login] = {}
    pages = 0
    before = until
    while True:  # one query per pass; the next pass starts where this one ran out of pages
        cursor, oldest, query_pages = "", None, 0
        while True:
            if should_stop():
                raise Stopped
            try:
                body, _ = access.call(
                    "team.accessLogs", limit=page_size, before=before, cursor=cursor or None
                )
            except SlackError as exc:
                if exc.code != "over_pagination_limit" or oldest is None:
                    raise
                break
            pages += 1
            query_pages += 1
            logins = body.get("logins") or []
            for entry in logins:
                login = Login.from_api(entry)
                oldest = login.date_first if oldest is None else min(oldest, login.date_first)
                if login.date_first >= floor:
                    found[login.digest] = login
            on_page(pages, len(found))
            metadata = body.get("response_metadata") or {}
            cursor = str(metadata.get("next_cursor") or "")
            if not logins or not cursor or (oldest is not None and oldest < floor):
                return Window(found, pages)
            if query_pages >= MAX_PAGES:
                break
        assert oldest is not None
        if before is not None and oldest >= before:
            raise CxError(
                "access_logs_too_dense",
                f"more than {MAX_PAGES * page_size:,} logins share date_first {rfc3339(oldest)}, "
                "more than Slack lets a query page through",
                "Collect the rest with --since set just after that time.",
            )
        before = oldest  # inclusive: entries of that second come again and are merged by key
