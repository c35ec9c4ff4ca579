"""cxslack's delivery policies as slack-sdk retry handlers, for the WebClient in `SlackAccess`.

slack-sdk asks each handler of `retry_handlers`, in order, whether to send a request again
(`can_retry`, after an answer or an error) and lets the first that says yes wait
(`prepare_for_next_attempt`); when none does, it returns the answer or re-raises the error. Each
handler here counts its own retries in the call in flight (client.InFlight) rather than in
slack-sdk's one counter for all, and sends again only through SlackAccess's gate, so a
Retry-After held by another thread is waited out too. What each policy promises: client.py.
"""

from __future__ import annotations

import json
from http.client import HTTPException
from typing import TYPE_CHECKING, Any
from urllib.error import HTTPError, URLError

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from cxslack.slack.client import was_sent

if TYPE_CHECKING:
    from cxslack.slack.client import SlackAccess


def retry_handlers(access: SlackAccess) -> list[RetryHandler]:
    return [HoldOnRateLimit(access), BackOffOnServerError(access), ResendUnlessPosted(access),
            KeepTheAnswer(access)]  # fmt: skip


class _Policy(RetryHandler):
    access: SlackAccess

    def can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                  error: Exception | None = None) -> bool:  # fmt: skip
        # Not slack-sdk's max_retry_count: that compares one counter shared by every handler.
        return self._can_retry(state=state, request=request, response=response, error=error)

    def _again(self, state: RetryState, pause: float = 0.0) -> None:
        self.access.send_again(self.access.in_flight(), pause)
        state.next_attempt_requested = True
        state.increment_current_attempt()


class HoldOnRateLimit(_Policy, RateLimitErrorRetryHandler):
    """429: every key of the request is held for Retry-After, then it is sent again when the gate
    lets it through. (slack-sdk's own handler sleeps in the calling thread only.)"""

    def __init__(self, access: SlackAccess):
        super().__init__()
        self.access = access

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None, error: Exception | None = None) -> None:  # fmt: skip
        self.access.rate_limited(self.access.in_flight(), response.headers if response else None)
        self._again(state)


class BackOffOnServerError(_Policy, ServerErrorRetryHandler):
    """5xx: sent again after backoff, a few times. For a posting method only 503 (Slack did not
    take it in): any other 5xx came after Slack may have posted it."""

    def __init__(self, access: SlackAccess):
        super().__init__()
        self.access = access

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:  # fmt: skip
        if response is None or response.status_code < 500:
            return False
        call = self.access.in_flight()
        if call.posting and response.status_code != 503:
            return False
        return call.failed < self.access.policy.server_error_retries

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None, error: Exception | None = None) -> None:  # fmt: skip
        call = self.access.in_flight()
        call.failed += 1
        self._again(state, self.access.backoff(call.failed))


class ResendUnlessPosted(_Policy, ConnectionErrorRetryHandler):
    """Connection failures: sent again after backoff, a few times — a posting method only when
    the request never left (URLError). slack-sdk's default handler also resends after
    ConnectionResetError and RemoteDisconnected, which come after the request was sent: for a
    post that could post twice."""

    def __init__(self, access: SlackAccess):
        super().__init__(error_types=[URLError, OSError, HTTPException])
        self.access = access

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:  # fmt: skip
        if error is None or response is not None or isinstance(error, HTTPError):
            return False
        call = self.access.in_flight()
        if call.posting and was_sent(error):
            return False
        if call.lost >= self.access.policy.connection_retries:
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None, error: Exception | None = None) -> None:  # fmt: skip
        call = self.access.in_flight()
        call.lost += 1
        self._again(state, self.access.backoff(call.lost))


class KeepTheAnswer(_Policy):
    """Last, and never retries: keeps Slack's final answer as JSON ({} when it was not), which
    the refused call's SlackResponse no longer shows (slack-sdk puts an error text of its own in
    place of a body that is not JSON)."""

    def __init__(self, access: SlackAccess):
        super().__init__()
        self.access = access

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:  # fmt: skip
        if response is not None:
            self.access.in_flight().answer = _json_object(response)
        return False


def _json_object(response: HttpResponse) -> dict[str, Any]:
    if isinstance(response.body, dict) and response.body:  # slack-sdk parsed it (a 200 starting with {)
        return response.body
    try:
        parsed = json.loads(response.data or b"")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
