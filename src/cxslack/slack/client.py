"""The one way cxslack talks to Slack's Web API.

`SlackAccess` sends Web API calls over httpx with the policies every caller needs:

- **Timeouts, deliberately.** Opening the connection (TCP and TLS) may take `connect` seconds
  (5 by default); once the request is sent, Slack's answer may take `read` seconds (15 by
  default). `CXSLACK_SLACK_CONNECT_TIMEOUT` and `CXSLACK_SLACK_READ_TIMEOUT` change them.
- **Sent or not.** A call that never left (no connection, connect timeout) is retried with
  backoff. A call that was sent and got no answer (read timeout, connection dropped after the
  request went out, or a 5xx other than 503) has an *unknown* outcome: for a method that posts a
  message (`POSTING_METHODS`) that is `OutcomeUnknown`, never a retry, since Slack may have posted
  it; the caller settles it (delivery.py). Every other method is retried, as repeating it changes
  nothing.
- **Rate limits keyed as Slack applies them** (docs.slack.dev/apis/web-api/rate-limits: "per
  API method per workspace per app"; chat.postMessage "one message per second per channel, while
  also maintaining a workspace-wide limit"). Every method has a workspace-wide key (the token
  stands for one app in one workspace); chat.postMessage also one per channel, by the channel's
  ID, so `#alerts` and `C0ALERTS` are one channel. chat.postMessage is paced per channel at about
  1/s. A 429's `Retry-After` holds every key the refused request had — Slack's answer does not
  say which limit it hit, so for chat.postMessage that is its channel *and* the workspace-wide
  key — and no thread sends with a held key until the hold passes; then the request is sent
  again (never dropped, never immediately). The "not before" times live behind `Pacing`
  (slack/pacing.py): this process's, or a store `listen` replicas share.
- Slack errors become `SlackError`s with a stable code, a message and a hint. Tokens are
  registered with the redactor so they never reach any output.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import threading
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cxslack.errors import EXIT_AUTH, EXIT_FAILED, CxError, UsageError
from cxslack.redact import register_secret
from cxslack.slack.pacing import LOCAL, Pacing

if TYPE_CHECKING:
    import httpx

DEFAULT_API_URL = "https://slack.com/api/"
CONNECT_TIMEOUT = 5.0  # seconds to open a connection (TCP + TLS)
READ_TIMEOUT = 15.0  # seconds for Slack's answer once the request is sent (and between its bytes)
# Slack tells us how long to wait; beyond this we give up with a clear error instead of hanging.
MAX_RETRY_AFTER = 60.0
# Errors meaning the stored token no longer works: the integration is Failing (reinstall).
TOKEN_ERRORS = frozenset({"token_revoked", "invalid_auth", "account_inactive", "not_authed", "token_expired"})
# Methods each successful call of which posts something new: sent twice, they post twice.
POSTING_METHODS = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "chat.scheduleMessage", "chat.meMessage",
     "files.completeUploadExternal"}
)  # fmt: skip
# Slack limits these per channel as well as per workspace (docs.slack.dev/apis/web-api/rate-limits).
PER_CHANNEL_METHODS = frozenset({"chat.postMessage"})


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


class OutcomeUnknown(SlackError):
    """A posting call was sent and no answer came: Slack may or may not have posted the message.
    Never retried here; the caller looks for the message before anything else is sent for the
    same purpose (`delivery.Deliverer.post`)."""

    def __init__(self, method: str, channel: str | None, sent_at: float, why: str):
        where = f" to {channel}" if channel else ""
        super().__init__(
            "outcome_unknown",
            f"{method}{where} was sent, but {why}: Slack may or may not have posted it",
            "cxslack sends nothing more for it until it knows; see the message it reports.",
            method=method,
        )
        self.channel = channel
        self.sent_at = sent_at  # epoch seconds when the request went out
        self.why = why


def _positive_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(
            "invalid_timeout",
            f"{name} must be a number of seconds above 0 (got {raw[:40]!r})",
            f"Unset it for the default ({default:g} s), or e.g. export {name}={default:g}",
        )
    return value


@dataclass(frozen=True)
class Timeouts:
    """How long a Slack call may take to connect, and then to be answered."""

    connect: float = CONNECT_TIMEOUT
    read: float = READ_TIMEOUT

    @classmethod
    def from_env(cls) -> Timeouts:
        return cls(
            _positive_seconds("CXSLACK_SLACK_CONNECT_TIMEOUT", CONNECT_TIMEOUT),
            _positive_seconds("CXSLACK_SLACK_READ_TIMEOUT", READ_TIMEOUT),
        )


@dataclass(frozen=True)
class Keys:
    """What the gate limits one request on: the keys a Retry-After for it holds (and whose holds
    it waits out), and the per-channel key it is paced on, if any."""

    holds: tuple[str, ...]
    channel: str | None = None


class ChannelTurns:
    """Within one process, one request at a time per chat.postMessage channel key, so requests to
    a busy channel queue behind each other instead of arriving together."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def turn(self, key: str | None) -> Any:
        if key is None:
            return nullcontext()
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())


TURNS = ChannelTurns()


def _retry_after(headers: Mapping[str, Any] | None) -> float:
    try:
        return max(1.0, float(header(headers, "Retry-After") or 1))
    except ValueError:
        return 1.0


@dataclass(frozen=True)
class RetryPolicy:
    rate_limit_retries: int = 10  # 429s answered for one call before it reports `ratelimited`
    server_error_retries: int = 3
    connection_retries: int = 3
    backoff: float = 0.5  # seconds, doubling per attempt
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


# httpx errors raised before any byte of the request reached Slack: safe to send again.
def _not_sent(exc: Exception) -> bool:
    import httpx

    return isinstance(
        exc,
        (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.LocalProtocolError,
         httpx.UnsupportedProtocol, httpx.ProxyError),
    )  # fmt: skip


def _no_answer(exc: Exception, timeouts: Timeouts) -> str:
    import httpx

    if isinstance(exc, httpx.ReadTimeout):
        return f"no answer came within {timeouts.read:g} s (the read timeout)"
    if isinstance(exc, httpx.WriteTimeout):
        return f"sending it took longer than {timeouts.read:g} s"
    return f"the connection dropped before the answer came ({type(exc).__name__})"


class SlackAccess:
    """Calls Slack's Web API with one token and cxslack's timeout, retry and rate-limit policies."""

    def __init__(self, token: str | None = None, *, base_url: str | None = None,
                 timeouts: Timeouts | None = None, policy: RetryPolicy | None = None,
                 integration: str | None = None, pacing: Pacing = LOCAL):  # fmt: skip
        self.policy = policy or RetryPolicy()
        self.timeouts = timeouts or Timeouts.from_env()
        self.integration = integration  # the name hints use ("cxslack integrations authorize Payments")
        self.pacing = pacing  # where holds and pacing live (shared by listen replicas on a database)
        register_secret(token)
        self.base_url = base_url or api_url()
        self._token = token
        # One app in one workspace: what Slack's per-method limits apply to.
        self._workspace = f"{self.base_url}|{hashlib.sha256((token or '').encode()).hexdigest()[:16]}"
        self._channel_ids: dict[str, str] = {}  # name → ID, from chat.postMessage's answers
        self._http = _http_client(self.timeouts)

    # -- what the gate limits a request on ---------------------------------------------------
    def keys(self, method: str, channel: Any) -> Keys:
        """Slack's keys for this request: method per workspace, and for chat.postMessage also the
        channel by its ID (a name maps to the ID an earlier answer gave)."""
        workspace = f"{self._workspace}|{method}"
        if method not in PER_CHANNEL_METHODS or not channel:
            return Keys((workspace,))
        from cxslack.slack.channels import channel_name, is_channel_id

        ref = str(channel)
        ident = (
            ref if is_channel_id(ref) else self._channel_ids.get(channel_name(ref), f"#{channel_name(ref)}")
        )
        key = f"{workspace}|{ident}"
        return Keys((key, workspace), key)

    def _wait_turn(self, method: str, keys: Keys) -> None:
        """Sleep while any of the request's keys is held, and for its channel's pacing slot."""
        paced = keys.channel is None or not self.policy.channel_rate
        while True:
            held = max(self.pacing.held(key) for key in keys.holds)
            if held > self.policy.max_retry_after:
                raise self._too_long(method, held)
            if held > 0:
                time.sleep(held)
                continue
            if not paced:
                assert keys.channel is not None and self.policy.channel_rate
                paced = True
                wait = self.pacing.take(keys.channel, self.policy.channel_rate, self.policy.channel_burst)
                if wait > 0:
                    time.sleep(wait)
                    continue  # a hold may have come meanwhile
            return

    def _too_long(self, method: str, retry_after: float) -> SlackError:
        err = describe_error(method, "ratelimited", {})
        err.retry_after = retry_after
        return err

    # -- calls ------------------------------------------------------------------------------
    def call(self, method: str, *, http_verb: str = "POST", auth: dict[str, str] | None = None,
             **params: Any) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        """Call a Web API method; returns (body, headers) or raises SlackError (OutcomeUnknown
        when a posting call was sent and its answer lost).

        POST arguments travel form-encoded in the body (never in the URL, where proxies log
        them); `auth` sends client credentials as HTTP Basic auth (oauth.v2.access).
        """
        channel = params.get("channel")
        with TURNS.turn(self.keys(method, channel).channel):
            # again: a name's ID may have been learned while this request waited its turn
            response = self._exchange(method, self.keys(method, channel), http_verb, auth, _drop_none(params))
        body = _json_body(response)
        if not body.get("ok"):
            raise describe_error(method, str(body.get("error") or "unknown_error"), body,
                                 str(channel) if channel else None, self.integration)  # fmt: skip
        if method in PER_CHANNEL_METHODS and channel and body.get("channel"):
            self._learn(method, str(channel), str(body["channel"]))
        return body, dict(response.headers)

    def _learn(self, method: str, channel: str, channel_id: str) -> None:
        """Later requests by this name pace on its ID; the post just made under the name's key
        is booked on the ID's too, so the switch from one key to the other sends no extra burst
        (here, or in another process learning the same ID)."""
        from cxslack.slack.channels import channel_name, is_channel_id

        name = channel_name(channel)
        if is_channel_id(channel) or self._channel_ids.get(name) == channel_id:
            return
        self._channel_ids[name] = channel_id
        if self.policy.channel_rate:
            self.pacing.take(f"{self._workspace}|{method}|{channel_id}", self.policy.channel_rate,
                             self.policy.channel_burst)  # fmt: skip

    def _exchange(self, method: str, keys: Keys, http_verb: str, auth: dict[str, str] | None,
                  params: dict[str, Any]) -> httpx.Response:  # fmt: skip
        """Send until Slack gives an answer to act on: 429s waited out (holding the keys), 5xx
        and unsent requests retried with backoff, an answer lost after sending retried only for
        methods that do not post."""
        import httpx

        posting = method in POSTING_METHODS
        limited = failed = lost = 0
        url = self.base_url + method
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        basic = (auth["client_id"], auth["client_secret"]) if auth else None
        while True:
            self._wait_turn(method, keys)
            sent_at = time.time()
            try:
                if http_verb == "GET":
                    response = self._http.get(
                        url, params=params, headers=headers, auth=basic or httpx.USE_CLIENT_DEFAULT
                    )
                else:
                    response = self._http.post(
                        url, data=params, headers=headers, auth=basic or httpx.USE_CLIENT_DEFAULT
                    )
            except httpx.TransportError as exc:
                if not _not_sent(exc) and posting:
                    raise OutcomeUnknown(
                        method, _channel_text(params), sent_at, _no_answer(exc, self.timeouts)
                    ) from None
                lost += 1
                if lost > self.policy.connection_retries:
                    raise self._unreachable(method, exc) from None
                self._backoff(lost)
                continue
            status = response.status_code
            if status == 429:
                retry_after = _retry_after(response.headers)
                for key in keys.holds:  # every request with one of these keys waits, in every thread
                    self.pacing.hold(key, retry_after + random.uniform(0.05, 0.25))
                limited += 1
                if retry_after > self.policy.max_retry_after or limited > self.policy.rate_limit_retries:
                    raise self._too_long(method, retry_after)
                continue
            if status >= 500 or (status >= 400 and not _json_body(response).get("error")):
                if posting and status != 503 and status >= 500:  # 503: not taken in; others may have been
                    raise OutcomeUnknown(method, _channel_text(params), sent_at,
                                         f"Slack answered HTTP {status}") from None  # fmt: skip
                failed += 1
                if status < 500 or failed > self.policy.server_error_retries:
                    raise SlackError("slack_unavailable", f"Slack answered {method} with HTTP {status} after retrying",
                                     "Slack may be having an incident; try again shortly.", method=method)  # fmt: skip
                self._backoff(failed)
                continue
            if posting and not _json_body(response):  # an answer that cannot be read says nothing
                raise OutcomeUnknown(method, _channel_text(params), sent_at, "its answer could not be read")
            return response

    def _backoff(self, attempt: int) -> None:
        time.sleep(self.policy.backoff * (2 ** (attempt - 1)))

    def _unreachable(self, method: str, exc: Exception) -> SlackError:
        if _not_sent(exc):
            what = f"could not reach Slack at {self.base_url} ({type(exc).__name__}: {exc})"
        else:
            what = f"Slack did not answer {method}: {_no_answer(exc, self.timeouts)}, after retrying"
        return SlackError(
            "slack_unreachable",
            what,
            "Check the network, or CXSLACK_SLACK_API_URL when using the sandbox.",
            method=method,
        )

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


_CLIENTS: dict[Timeouts, httpx.Client] = {}
_CLIENTS_LOCK = threading.Lock()


def _http_client(timeouts: Timeouts) -> httpx.Client:
    """One connection pool per process (per timeout setting), shared by every SlackAccess: the
    keep-alive connections outlive a single integration's calls, and nothing leaks."""
    import httpx

    from cxslack import __version__

    with _CLIENTS_LOCK:
        client = _CLIENTS.get(timeouts)
        if client is None:
            client = _CLIENTS[timeouts] = httpx.Client(
                timeout=httpx.Timeout(
                    connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=None
                ),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
                headers={"User-Agent": f"cxslack/{__version__}"},
            )
        return client


def _channel_text(params: Mapping[str, Any]) -> str | None:
    channel = params.get("channel")
    return str(channel) if channel else None


def _json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        # Structured arguments (blocks, metadata, unfurls) travel as JSON strings in form posts.
        out[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return out
