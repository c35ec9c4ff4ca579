"""What happens to a Web API call before Slack's logic sees it: rate limits, faults, latency, the call log.

Rate limits follow Slack (docs.slack.dev/apis/web-api/rate-limits): limits apply "per API method
per workspace per app"; chat.postMessage "generally allows posting one message per second per
channel, while also maintaining a workspace-wide limit" (Slack publishes no figure for the
latter, so it is off unless `workspace_post_rate` sets one); other methods have per-minute tiers.
Over a limit the caller gets HTTP 429 with `Retry-After`, and until that window ends every call
with the same scope (the method, or the method and channel) is refused the same way. A call that
arrives in a window more than `IN_FLIGHT` seconds after the 429 that opened it was answered is
recorded as a violation — the client had been told to wait — so tests and benchmarks can
assert a client never sent while a Retry-After was pending. Every call's arrival time is logged.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any, Literal

from cxslack.sandbox.wire import Response
from cxslack.sandbox.workspace import Clock

PER_CHANNEL_METHODS = frozenset({"chat.postMessage"})
TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
# Slack's documented tiers for the methods the sandbox speaks (chat.postMessage is per channel instead).
METHOD_TIERS = {
    "auth.test": 4,
    "auth.revoke": 3,
    "oauth.v2.access": 4,
    "chat.update": 3,
    "chat.postEphemeral": 4,
    "chat.unfurl": 3,
    "conversations.join": 3,
    "conversations.info": 3,
    "conversations.list": 2,
    "conversations.history": 3,
    "conversations.replies": 3,
    "users.info": 4,
    "users.lookupByEmail": 3,
    "team.accessLogs": 2,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
}

FaultKind = Literal["status", "ratelimit", "latency", "drop", "late", "lost"]
FAULT_KINDS: tuple[FaultKind, ...] = ("status", "ratelimit", "latency", "drop", "late", "lost")
Scope = tuple[str, ...]  # (method,) or (method, channel): what a Retry-After applies to
# A call that arrives this soon after a 429 was answered was already on its way when the client
# read it (another thread's request in flight): refused, but not counted as sent while told to wait.
IN_FLIGHT = 0.25
ARRIVALS_KEPT = 100_000


@dataclass
class TrafficSettings:
    rate_limits: bool = True  # the master switch for every limit below
    per_channel_rate: float = 1.0  # chat.postMessage messages per second per channel
    burst: int = 3
    tier_limits: bool = False  # apply METHOD_TIERS to the other methods
    method_limits: dict[str, float] = field(default_factory=dict)  # method → requests/minute, wins over tiers
    latency: float = 0.0  # seconds added to every API call
    workspace_post_rate: float = 0.0  # chat.postMessage per second across all channels (0: off)
    workspace_post_burst: int = 10

    def validate(self) -> None:
        if self.per_channel_rate <= 0 or self.burst < 1 or self.latency < 0:
            raise ValueError("per_channel_rate must be > 0, burst >= 1 and latency >= 0")
        if self.workspace_post_rate < 0 or self.workspace_post_burst < 1:
            raise ValueError("workspace_post_rate must be >= 0 and workspace_post_burst >= 1")
        if any(
            not isinstance(v, int | float) or isinstance(v, bool) or v <= 0
            for v in self.method_limits.values()
        ):
            raise ValueError("method_limits maps a method name to requests per minute (> 0)")

    def per_minute(self, method: str) -> float | None:
        if method in self.method_limits:
            return self.method_limits[method]
        if self.tier_limits and method in METHOD_TIERS:
            return TIER_PER_MINUTE[METHOD_TIERS[method]]
        return None


@dataclass
class Fault:
    """The next `count` calls to `method` ("*" for any) fail or slow down in one way — after
    letting `after` of them through untouched (a fault in the middle of a run).

    status     answer HTTP `status` without running the method (5xx: Slack having an incident)
    ratelimit  answer 429 with `Retry-After: retry_after`, opening a window for the whole method
    latency    wait `seconds`, then run the method and answer
    drop       close the connection without running the method or answering
    late       run the method (a post lands), then hold the answer `seconds`: what a client sees
               when Slack stores the message but the answer reaches it after its read timeout
    lost       run the method (a post lands), then close the connection without an answer: a
               connection dropped after the request was sent
    """

    kind: FaultKind
    method: str = "*"
    count: int = 1
    status: int = 503  # kind "status"
    retry_after: int = 1  # kind "ratelimit"
    seconds: float = 0.0  # kinds "latency" and "late"
    after: int = 0  # matching calls let through before the fault applies

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        if self.count < 1 or not 100 <= self.status <= 599 or self.retry_after < 1 or self.seconds < 0:
            raise ValueError("count >= 1, 100 <= status <= 599, retry_after >= 1 and seconds >= 0")
        if self.after < 0:
            raise ValueError("after >= 0")


class TokenBucket:
    def __init__(self, rate: float, burst: float, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, now: float) -> float:
        """Take one token: 0.0 when there was one, else the seconds until there will be."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class Admission:
    delay: float = 0.0  # seconds to wait before running the method (or answering instead)
    response: Response | None = None  # answer this instead of running the method
    late: float = 0.0  # seconds to hold the answer after the method ran
    lost: bool = False  # after the method ran, close the connection instead of answering


class Traffic:
    def __init__(self, clock: Clock, settings: TrafficSettings):
        self.clock = clock
        self._lock = threading.Lock()
        self.configure(settings)
        self.reset_log()
        self.faults: list[Fault] = []

    def configure(self, settings: TrafficSettings) -> None:
        """New limits start with full buckets and no Retry-After window open."""
        settings.validate()
        with self._lock:
            self.settings = settings
            self._buckets: dict[Scope, TokenBucket] = {}
            # scope → (when the 429 that opened it was answered, when its Retry-After ends)
            self._windows: dict[Scope, tuple[float, float]] = {}

    def reset_log(self) -> None:
        with self._lock:
            self.calls: Counter[str] = Counter()
            self.ratelimited = 0
            self.violations: list[dict[str, Any]] = []
            self.arrivals: list[dict[str, Any]] = []
            self._started = self.clock.monotonic()
            self._windows = {}

    def add_faults(self, faults: list[Fault]) -> None:
        with self._lock:
            self.faults.extend(faults)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def admit(self, method: str, channel: str | None) -> Admission:
        """Log the call, refuse it inside an open Retry-After window, then apply the first pending
        fault for it, then the rate limits."""
        with self._lock:
            now = self.clock.monotonic()
            self.calls[method] += 1
            arrival: dict[str, Any] = {
                "method": method,
                "channel": channel,
                "at": round(now - self._started, 4),
            }
            if len(self.arrivals) >= ARRIVALS_KEPT:
                del self.arrivals[: ARRIVALS_KEPT // 10]
            self.arrivals.append(arrival)
            admission = Admission(delay=self.settings.latency)
            admission.response = self._in_window(method, channel, now, admission.delay)
            fault = (
                None
                if admission.response
                else next((f for f in self.faults if f.method in ("*", method)), None)
            )
            if fault is not None and fault.after > 0:  # not yet: this call goes through
                fault.after -= 1
                fault = None
            if fault is not None:
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                if fault.kind == "latency":
                    admission.delay += fault.seconds
                elif fault.kind == "late":
                    admission.late = fault.seconds
                elif fault.kind == "lost":
                    admission.lost = True
                elif fault.kind == "drop":
                    admission.response = Response.dropped()
                elif fault.kind == "ratelimit":
                    admission.response = self._too_many((method,), fault.retry_after, now + admission.delay)
                else:
                    admission.response = _status_response(fault.status)
                    if fault.status == 429:  # a bare 429 without Retry-After still counts as one sent
                        self.ratelimited += 1
            if admission.response is None:
                admission.response = self._limit(method, channel, now, now + admission.delay)
            if admission.response is not None and admission.response.status == 429:
                arrival.update(status=429, answered=round(now + admission.delay - self._started, 4),
                               retry_after=int(admission.response.headers.get("Retry-After", 0) or 0))  # fmt: skip
            return admission

    def gate(self, method: str) -> Response | None:
        """`admit` for the sandbox's routes outside Slack's Web API (uploads, Coralogix's data): the
        latency is waited out here; returns the answer that stops the call, if any."""
        admission = self.admit(method, None)
        if admission.delay:
            time.sleep(admission.delay)
        return admission.response

    def _in_window(self, method: str, channel: str | None, now: float, delay: float) -> Response | None:
        """429 for the rest of the longest open window this call falls in (recording a violation
        when the client had had time to learn of it)."""
        remaining, opened = 0.0, now
        for scope, (answered, until) in list(self._windows.items()):
            if until <= now:
                del self._windows[scope]
            elif scope[0] == method and (len(scope) == 1 or scope[1] == channel) and until - now > remaining:
                remaining, opened = until - now, answered
        if remaining <= 0:
            return None
        if now - opened > IN_FLIGHT:
            self.violations.append(
                {"method": method, "channel": channel, "retry_after_remaining": round(remaining, 3)}
            )
        self.ratelimited += 1
        # Retry-After counts from when the answer leaves: what is left of the window then
        return _ratelimited(math.ceil(max(remaining - delay, 0.0)))

    def _limit(self, method: str, channel: str | None, now: float, answered: float) -> Response | None:
        settings = self.settings
        if not settings.rate_limits:
            return None
        limits: list[tuple[Scope, float, float]] = []
        if method in PER_CHANNEL_METHODS and channel:
            limits.append(((method, channel), settings.per_channel_rate, float(settings.burst)))
            if settings.workspace_post_rate > 0:
                limits.append(((method,), settings.workspace_post_rate, float(settings.workspace_post_burst)))
        else:
            per_minute = settings.per_minute(method)
            if per_minute is not None:
                limits.append(((method,), per_minute / 60, max(1.0, per_minute)))
        for scope, rate, burst in limits:
            bucket = self._buckets.get(scope)
            if bucket is None:
                bucket = self._buckets[scope] = TokenBucket(rate, burst, now)
            wait = bucket.take(now)
            if wait:
                return self._too_many(scope, math.ceil(wait), answered)
        return None

    def _too_many(self, scope: Scope, retry_after: int, answered: float) -> Response:
        """429 with Retry-After; the window runs from when the answer leaves."""
        retry_after = max(1, retry_after)
        self.ratelimited += 1
        until = answered + retry_after
        if until > self._windows.get(scope, (0.0, 0.0))[1]:
            self._windows[scope] = (answered, until)
        return _ratelimited(retry_after)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self.calls.values()),
                "methods": dict(self.calls),
                "ratelimited": self.ratelimited,
                "violations": list(self.violations),
                "arrivals": list(self.arrivals),
                "pending_faults": [asdict(f) for f in self.faults],
            }


def _ratelimited(retry_after: int) -> Response:
    return Response.json(
        429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(max(1, retry_after))}
    )


def _status_response(status: int) -> Response:
    try:
        error = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        error = f"http_{status}"
    return Response.json(status, {"ok": False, "error": error})
