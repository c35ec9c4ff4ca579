"""The one way cxslack talks to Slack's Web API.

`SlackAccess` sends Web API calls through slack-sdk's `WebClient` (`api_call`: arguments
form-encoded in a POST body — slack-sdk POSTs every method, `http_verb="GET"` included; `auth`
sends client credentials as HTTP Basic for oauth.v2.access) with the policies every caller needs,
as slack-sdk retry handlers (slack/retries.py) on the client:

- **One timeout, deliberately.** WebClient gives urllib one `timeout`, which bounds opening the
  connection (TCP and TLS) and then each wait for Slack's answer (each read of its bytes); no
  public option of slack-sdk sets a connect timeout apart. 15 s by default
  (`CXSLACK_SLACK_TIMEOUT`): Slack's answers rarely take more than a few seconds, and a post
  whose answer is that late is settled rather than sent again (below).
- **Sent or not.** urllib wraps whatever fails while the request is being sent in `URLError`
  (connection refused, DNS, the connect timeout, a failed write): it never reached Slack, so it
  is sent again with backoff. What fails after it was sent — no answer within the timeout,
  `ConnectionResetError`, `RemoteDisconnected`, `IncompleteRead` — comes out raw and slack-sdk
  re-raises it when no handler retries: the outcome is *unknown*. For a method that posts a
  message (`POSTING_METHODS`) that is `OutcomeUnknown`, never a retry, since Slack may have
  posted it; the caller settles it (delivery.py). Every other method is retried, as repeating it
  changes nothing. A 5xx is retried with backoff, for a posting method only 503 (not taken in);
  any other 5xx to a post is `OutcomeUnknown`, and so is an answer that cannot be read.
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
  registered with the redactor so they never reach any output; slack-sdk's own log records
  (each failed attempt; request bodies at DEBUG) go to a private logger that keeps none of them,
  since SlackAccess reports every failure itself, once, redacted.
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
    import logging
    import ssl

    from slack_sdk.web import SlackResponse, WebClient

DEFAULT_API_URL = "https://slack.com/api/"
TIMEOUT = 15.0  # seconds to connect (TCP + TLS), and then for each wait for Slack's answer
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


def slack_timeout() -> float:
    """Seconds a Slack call may take to connect, and then for each wait for the answer."""
    return _positive_seconds("CXSLACK_SLACK_TIMEOUT", TIMEOUT)


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


def was_sent(exc: BaseException) -> bool:
    """Whether a request that failed had left: urllib wraps whatever fails while it is being sent
    in URLError (urllib.request.AbstractHTTPHandler.do_open); what fails after comes out raw."""
    from http.client import HTTPException, InvalidURL
    from urllib.error import URLError

    return isinstance(exc, (OSError, HTTPException)) and not isinstance(exc, (URLError, InvalidURL))


def _unreadable(exc: BaseException) -> bool:
    """An answer came, but it is not JSON (slack-sdk parses a body that starts with `{`)."""
    import json

    return isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError))


@dataclass
class InFlight:
    """One Web API call being made in this thread: what the retry handlers act on."""

    method: str
    keys: Keys
    channel: str | None
    posting: bool  # each successful call posts something: sent twice, it posts twice
    sent_at: float = 0.0  # epoch seconds when the latest attempt went out
    limited: int = 0  # 429s answered
    failed: int = 0  # 5xx answers sent again
    lost: int = 0  # attempts sent again after a connection failure
    answer: dict[str, Any] | None = None  # Slack's latest answer as JSON ({} when it was not JSON)


class SlackAccess:
    """Calls Slack's Web API with one token and cxslack's timeout, retry and rate-limit policies."""

    def __init__(self, token: str | None = None, *, base_url: str | None = None,
                 timeout: float | None = None, policy: RetryPolicy | None = None,
                 integration: str | None = None, pacing: Pacing = LOCAL):  # fmt: skip
        self.policy = policy or RetryPolicy()
        self.timeout = timeout or slack_timeout()
        self.integration = integration  # the name hints use ("cxslack integrations authorize Payments")
        self.pacing = pacing  # where holds and pacing live (shared by listen replicas on a database)
        register_secret(token)
        self.base_url = base_url or api_url()
        # One app in one workspace: what Slack's per-method limits apply to.
        self._workspace = f"{self.base_url}|{hashlib.sha256((token or '').encode()).hexdigest()[:16]}"
        self._channel_ids: dict[str, str] = {}  # name → ID, from chat.postMessage's answers
        self._flight = threading.local()  # this thread's InFlight, for the retry handlers
        self._client = _web_client(token, self.base_url, self.timeout, self)

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

    # -- what the retry handlers call (slack/retries.py) ---------------------------------------
    def in_flight(self) -> InFlight:
        """The call this thread is making (the handlers run in the calling thread)."""
        call: InFlight = self._flight.call
        return call

    def rate_limited(self, call: InFlight, headers: Mapping[str, Any] | None) -> None:
        """Slack answered 429: every key the request had is held for its Retry-After (plus a
        little), for every thread — and replica, through Pacing. Past the cap, or after too many
        429s for this call, it is reported (`ratelimited`) instead of sent again."""
        retry_after = _retry_after(headers)
        for key in call.keys.holds:
            self.pacing.hold(key, retry_after + random.uniform(0.05, 0.25))
        call.limited += 1
        if retry_after > self.policy.max_retry_after or call.limited > self.policy.rate_limit_retries:
            raise self._too_long(call.method, retry_after)

    def send_again(self, call: InFlight, pause: float = 0.0) -> None:
        """Before an attempt after the first: `pause` (backoff), then the gate's turn (holds and
        the channel's pacing), and the time it goes out."""
        if pause > 0:
            time.sleep(pause)
        self._wait_turn(call.method, call.keys)
        call.sent_at = time.time()

    def backoff(self, attempt: int) -> float:
        return self.policy.backoff * (2 ** (attempt - 1))

    # -- calls ------------------------------------------------------------------------------
    def call(self, method: str, *, http_verb: str = "POST", auth: dict[str, str] | None = None,
             **params: Any) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        """Call a Web API method; returns (body, headers) or raises SlackError (OutcomeUnknown
        when a posting call was sent and its answer lost).

        Arguments travel form-encoded in a POST body (never in the URL, where proxies log them);
        `auth` sends client credentials as HTTP Basic auth (oauth.v2.access).
        """
        channel = params.get("channel")
        with TURNS.turn(self.keys(method, channel).channel):
            # again: a name's ID may have been learned while this request waited its turn
            call = InFlight(method, self.keys(method, channel), str(channel) if channel else None,
                            method in POSTING_METHODS)  # fmt: skip
            response = self._send(call, http_verb, auth, _drop_none(params))
        body = response.data if isinstance(response.data, dict) else {}
        if method in PER_CHANNEL_METHODS and channel and body.get("channel"):
            self._learn(method, str(channel), str(body["channel"]))
        return dict(body), dict(response.headers)

    def _send(self, call: InFlight, http_verb: str, auth: dict[str, str] | None,
              args: dict[str, Any]) -> SlackResponse:  # fmt: skip
        from http.client import HTTPException

        from slack_sdk.errors import SlackApiError, SlackRequestError

        self._wait_turn(call.method, call.keys)
        self._flight.call = call
        call.sent_at = time.time()
        try:
            if http_verb == "GET":
                return self._client.api_call(call.method, http_verb="GET", params=args)
            return self._client.api_call(call.method, data=args, auth=auth)
        except SlackApiError as exc:  # Slack answered, and no handler sent it again
            answer = call.answer if call.answer is not None else exc.response.data
            raise self._refused(call, int(exc.response.status_code), answer) from None
        except (OSError, HTTPException, ValueError, SlackRequestError) as exc:  # no answer to act on
            raise self._failed(call, exc) from None
        finally:
            self._flight.call = None

    def _refused(self, call: InFlight, status: int, answer: Any) -> SlackError:
        body = answer if isinstance(answer, dict) else {}
        if status >= 500 or (status >= 400 and not body.get("error")):
            if call.posting and status >= 500 and status != 503:  # 503: not taken in; others may have been
                return OutcomeUnknown(
                    call.method, call.channel, call.sent_at, f"Slack answered HTTP {status}"
                )
            return SlackError("slack_unavailable", f"Slack answered {call.method} with HTTP {status} after retrying",
                              "Slack may be having an incident; try again shortly.", method=call.method)  # fmt: skip
        if call.posting and not body:  # an answer that cannot be read says nothing
            return OutcomeUnknown(call.method, call.channel, call.sent_at, "its answer could not be read")
        return describe_error(call.method, str(body.get("error") or "unknown_error"), body, call.channel,
                              self.integration)  # fmt: skip

    def _failed(self, call: InFlight, exc: Exception) -> SlackError:
        if _unreadable(exc):
            return self._refused(call, 200, {})
        if call.posting and was_sent(exc):
            return OutcomeUnknown(call.method, call.channel, call.sent_at, self._no_answer(exc))
        if was_sent(exc):
            what = f"Slack did not answer {call.method}: {self._no_answer(exc)}, after retrying"
        else:
            what = f"could not reach Slack at {self.base_url} ({type(exc).__name__}: {exc})"
        return SlackError(
            "slack_unreachable",
            what,
            "Check the network, or CXSLACK_SLACK_API_URL when using the sandbox.",
            method=call.method,
        )

    def _no_answer(self, exc: Exception) -> str:
        if isinstance(exc, TimeoutError):
            return f"no answer came within {self.timeout:g} s (the timeout)"
        return f"the connection dropped before the answer came ({type(exc).__name__})"

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


def _web_client(token: str | None, base_url: str, timeout: float, access: SlackAccess) -> WebClient:
    from slack_sdk.web import WebClient

    from cxslack import __version__
    from cxslack.slack.retries import retry_handlers

    return WebClient(  # HTTPS_PROXY applies (urllib still skips the hosts NO_PROXY names)
        token=token,
        base_url=_without_credentials(base_url),
        timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds; slack-sdk annotates int
        ssl=_tls_context() if base_url.lower().startswith("https:") else None,
        user_agent_prefix=f"cxslack/{__version__}",
        logger=_sdk_logger(),
        retry_handlers=retry_handlers(access),
    )


def _without_credentials(url: str) -> str:
    """`https://user:secret@host/api/` → `https://host/api/`. urllib takes no credentials from a
    URL (it would look the whole `user:secret@host` up as a host name); Web API calls carry the
    token instead. Messages keep the URL as configured, redacted on output."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


_TLS: list[ssl.SSLContext] = []
_SDK_LOGGER: list[logging.Logger] = []
_ONCE = threading.Lock()


def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: without one, urllib loads the CA store again for
    every connection."""
    import ssl

    with _ONCE:
        if not _TLS:
            _TLS.append(ssl.create_default_context())
        return _TLS[0]


def _sdk_logger() -> logging.Logger:
    """Where slack-sdk logs: a private logger (outside the logging tree, so neither the root's
    handlers nor logging's last resort print to stderr) that keeps nothing. At WARNING, slack-sdk
    does not even build its DEBUG lines, which hold request bodies."""
    import logging

    with _ONCE:
        if not _SDK_LOGGER:
            logger = logging.Logger("cxslack.slack.sdk", logging.WARNING)
            logger.addHandler(logging.NullHandler())
            _SDK_LOGGER.append(logger)
        return _SDK_LOGGER[0]


def _drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        # Structured arguments (blocks, metadata, unfurls) travel as JSON strings in form posts.
        out[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return out
