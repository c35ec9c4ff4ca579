"""The one way cxslack talks to Slack's Web API.

`SlackAccess` wraps `slack_sdk.WebClient` with the policies every caller needs: the base URL
from `CXSLACK_SLACK_API_URL`, timeouts, retries (429 waits out `Retry-After`, capped and bounded,
never immediately; 5xx and connection errors back off and retry a bounded number of times), a
process-wide gate so no thread sends to a method+channel while a `Retry-After` for it is
pending, and Slack errors turned into `SlackError`s with a stable code, a message and a hint.
Tokens are registered with the redactor so they never reach any output.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cxslack.errors import EXIT_AUTH, EXIT_FAILED, CxError
from cxslack.redact import register_secret
from cxslack.slack.pacing import LOCAL, Pacing

DEFAULT_API_URL = "https://slack.com/api/"
# Slack tells us how long to wait; beyond this we give up with a clear error instead of hanging.
MAX_RETRY_AFTER = 60.0
# Errors meaning the stored token no longer works: the integration is Failing (reinstall).
TOKEN_ERRORS = frozenset({"token_revoked", "invalid_auth", "account_inactive", "not_authed", "token_expired"})


def api_url() -> str:
    url = os.environ.get("CXSLACK_SLACK_API_URL") or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """A response header by case-insensitive name (slack-sdk keeps the server's case)."""
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            if isinstance(value, list):
                return str(value[0]) if value else None
            return str(value)
    return None


class SlackError(CxError):
    """Slack refused a call. `code` is Slack's own error string (or slack_unavailable/_unreachable)."""

    def __init__(self, code: str, message: str, hint: str | None = None, *, exit_code: int = EXIT_FAILED,
                 method: str = "", retry_after: float | None = None, data: Mapping[str, Any] | None = None):  # fmt: skip
        super().__init__(code, message, hint, exit_code=exit_code)
        self.method = method
        self.retry_after = retry_after
        self.data = dict(data or {})

    @property
    def token_invalid(self) -> bool:
        """The integration's token is revoked, invalid or its app was removed: status Failing."""
        return self.code in TOKEN_ERRORS


def describe_error(method: str, error: str, data: Mapping[str, Any], channel: str | None = None,
                   integration: str | None = None) -> SlackError:  # fmt: skip
    """Slack's error string → a SlackError people can act on (naming the integration's command
    when the token's integration is known)."""
    import shlex

    where = f" {channel}" if channel else ""
    authorize = f"cxslack integrations authorize {shlex.quote(integration) if integration else 'NAME'}"
    if error in TOKEN_ERRORS:
        return SlackError(
            error,
            f"Slack rejected the token ({error}): the token was revoked or the workspace removed the Coralogix Slack app",
            f"Reinstall the app: {authorize}",
            exit_code=EXIT_AUTH,
            method=method,
            data=data,
        )
    if error == "missing_scope":
        needed = str(data.get("needed", "?"))
        provided = str(data.get("provided", ""))
        return SlackError(
            error,
            f"{method} needs scope {needed}, which was not granted (granted: {provided or 'none'})",
            f"cxslack requests channels:read and groups:read only with --channel-lookup: {authorize} --channel-lookup"
            if needed in ("channels:read", "groups:read")
            else f"Reauthorize the Slack app so it can grant the scope: {authorize}",
            exit_code=EXIT_AUTH,
            method=method,
            data=data,
        )
    known = {
        "channel_not_found": (
            f"channel{where} not found, or it is a private channel the app is not a member of",
            "If it is private, invite the app in Slack (/invite @Coralogix in that channel); otherwise check the name.",
        ),
        "not_in_channel": (
            f"the app is not a member of channel{where}",
            "Invite the app in Slack (/invite @Coralogix in that channel), or grant chat:write.public.",
        ),
        "is_archived": (f"channel{where} is archived", "Unarchive it in Slack, or route to another channel."),
        "ratelimited": (
            f"Slack rate-limited {method} for longer than cxslack waits",
            "Try again later; Slack's limits are per method, per workspace, per app.",
        ),
        "method_not_supported_for_channel_type": (
            f"{method} does not work on channel{where} (private channels cannot be joined)",
            "Invite the app in Slack (/invite @Coralogix in that channel).",
        ),
        "invalid_blocks": (
            "Slack refused the message layout (invalid_blocks)",
            "This is a bug in cxslack; please report it.",
        ),
        "msg_blocks_too_long": ("the message is too long for Slack", "Shorten the template or payload."),
    }
    message, hint = known.get(error, (f"Slack refused {method}: {error}", None))
    return SlackError(error, message, hint, method=method, data=data)


class RetryGate:
    """Process-wide pacing per (token, method, channel), kept in a `Pacing` store.

    Requests that name a channel go one at a time per key in this process: Slack allows about one
    message per second per channel anyway, and while one request waits out a 429 the others wait
    behind it instead of arriving inside the Retry-After window. Channel-less keys are not
    serialised; they only wait out a Retry-After that an earlier call published. Where the keys'
    slots and holds live is the store's business: this process (`LocalPacing`), or a database that
    every `listen` replica shares.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _name(key: tuple[str, ...]) -> str:
        return "|".join(key)

    def block(self, key: tuple[str, ...], seconds: float, pacing: Pacing = LOCAL) -> None:
        pacing.hold(self._name(key), seconds)

    @contextmanager
    def turn(
        self,
        key: tuple[str, ...],
        serialise: bool,
        pace: tuple[float, int] | None = None,
        pacing: Pacing = LOCAL,
    ) -> Iterator[None]:
        name = self._name(key)
        if not serialise:
            _sleep(pacing.held(name))
            yield
            return
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            _sleep(pacing.take(name, *pace) if pace else pacing.held(name))
            yield


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


GATE = RetryGate()
_current_key = threading.local()


def _rate_limit_handler(max_retries: int, max_wait: float) -> Any:
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    class GatedRateLimitRetryHandler(RateLimitErrorRetryHandler):
        """Waits out Retry-After (plus jitter), publishing the wait to the gate first, and gives
        up instead of retrying when Slack asks for longer than `max_wait`."""

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            if response is None or response.status_code != 429:
                return False
            return _retry_after(response.headers) <= max_wait

        def prepare_for_next_attempt(
            self, *, state: Any, request: Any, response: Any = None, error: Any = None
        ) -> None:
            wait = _retry_after(response.headers if response is not None else None) + random.uniform(
                0.05, 0.25
            )
            current = getattr(_current_key, "value", None)
            if current is not None:
                key, pacing = current
                GATE.block(key, wait, pacing)
            state.next_attempt_requested = True
            time.sleep(wait)
            state.increment_current_attempt()

    return GatedRateLimitRetryHandler(max_retry_count=max_retries)


def _retry_after(headers: Mapping[str, Any] | None) -> float:
    try:
        return max(1.0, float(header(headers, "Retry-After") or 1))
    except ValueError:
        return 1.0


@dataclass(frozen=True)
class RetryPolicy:
    rate_limit_retries: int = 5
    server_error_retries: int = 3
    connection_retries: int = 3
    backoff: float = 0.5  # seconds, doubling per attempt (slack-sdk's backoff calculator)
    max_retry_after: float = MAX_RETRY_AFTER
    # Pace chat.postMessage per channel like Slack's limit (about 1/s, short bursts), so busy
    # fan-outs are not throttled at all; None turns pacing off (429s are still waited out).
    channel_rate: float | None = 1.0
    channel_burst: int = 2


@dataclass(frozen=True)
class AuthInfo:
    team_id: str
    team_name: str
    url: str
    user_id: str
    bot_id: str | None
    app_id: str | None
    scopes: list[str]


class SlackAccess:
    """Calls Slack's Web API with one token and cxslack's retry and error policies."""

    def __init__(self, token: str | None = None, *, base_url: str | None = None, timeout: float = 15.0,
                 policy: RetryPolicy | None = None, integration: str | None = None,
                 pacing: Pacing = LOCAL):  # fmt: skip
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, ServerErrorRetryHandler
        from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator

        policy = policy or RetryPolicy()
        self.policy = policy
        self.integration = integration  # the name hints use ("cxslack integrations authorize Payments")
        self.pacing = pacing  # the state's: shared by every process on one database
        register_secret(token)
        backoff = BackoffRetryIntervalCalculator(backoff_factor=policy.backoff)
        self.base_url = base_url or api_url()
        self._token_key = hashlib.sha256((token or "").encode()).hexdigest()[:16]
        self.client = WebClient(
            token=token,
            base_url=self.base_url,
            timeout=int(max(1, timeout)),
            retry_handlers=[
                _rate_limit_handler(policy.rate_limit_retries, policy.max_retry_after),
                ServerErrorRetryHandler(
                    max_retry_count=policy.server_error_retries, interval_calculator=backoff
                ),
                ConnectionErrorRetryHandler(
                    max_retry_count=policy.connection_retries, interval_calculator=backoff
                ),
            ],
        )

    def call(self, method: str, *, http_verb: str = "POST", auth: dict[str, str] | None = None,
             **params: Any) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        """Call a Web API method; returns (body, headers) or raises SlackError.

        POST arguments travel form-encoded in the body (never in the URL, where proxies log
        them); `auth` sends client credentials as HTTP Basic auth (oauth.v2.access).
        """
        channel = params.get("channel")
        key = (self.base_url, self._token_key, method, str(channel or ""))
        pace = None
        if method == "chat.postMessage" and self.policy.channel_rate:
            pace = (self.policy.channel_rate, self.policy.channel_burst)
        with GATE.turn(key, serialise=bool(channel), pace=pace, pacing=self.pacing):
            return self._send(method, key, http_verb, auth, params)

    def _send(self, method: str, key: tuple[str, ...], http_verb: str, auth: dict[str, str] | None,
              params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        from slack_sdk.errors import SlackApiError, SlackRequestError

        channel = params.get("channel")
        _current_key.value = (key, self.pacing)
        try:
            if http_verb == "GET":
                response = self.client.api_call(method, http_verb="GET", params=_drop_none(params))
            else:
                response = self.client.api_call(method, data=_drop_none(params), auth=auth)
        except SlackApiError as exc:
            raise self._from_response(method, exc.response, channel) from None
        except (SlackRequestError, OSError, ValueError) as exc:
            raise SlackError(
                "slack_unreachable",
                f"could not reach Slack at {self.base_url} ({type(exc).__name__}: {exc})",
                "Check the network, or CXSLACK_SLACK_API_URL when using the sandbox.",
                method=method,
            ) from None
        finally:
            _current_key.value = None
        return dict(response.data) if isinstance(response.data, dict) else {}, dict(response.headers)

    def _from_response(self, method: str, response: Any, channel: Any) -> SlackError:
        status = getattr(response, "status_code", 0)
        data = response.data if isinstance(getattr(response, "data", None), dict) else {}
        error = str(data.get("error") or "")
        if status == 429 or error == "ratelimited":
            err = describe_error(method, "ratelimited", data)
            err.retry_after = _retry_after(response.headers)
            return err
        if status >= 500 or (not error and status >= 400):
            return SlackError(
                "slack_unavailable",
                f"Slack answered {method} with HTTP {status} after retrying",
                "Slack may be having an incident; try again shortly.",
                method=method,
            )
        return describe_error(method, error or "unknown_error", data, str(channel) if channel else None,
                              self.integration)  # fmt: skip

    # -- methods cxslack uses -----------------------------------------------------------------
    def auth_test(self) -> AuthInfo:
        body, headers = self.call("auth.test")
        scopes = header(headers, "x-oauth-scopes") or ""
        return AuthInfo(
            team_id=str(body.get("team_id", "")),
            team_name=str(body.get("team", "")),
            url=str(body.get("url", "")),
            user_id=str(body.get("user_id", "")),
            bot_id=body.get("bot_id"),
            app_id=body.get("app_id"),
            scopes=[s.strip() for s in scopes.split(",") if s.strip()],
        )

    def post_message(self, channel: str, text: str, **params: Any) -> dict[str, Any]:
        body, _ = self.call("chat.postMessage", channel=channel, text=text, **params)
        return body


def _drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        # Structured arguments (blocks, metadata, unfurls) travel as JSON strings in form posts.
        out[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return out
