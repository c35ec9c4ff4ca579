"""The worker of `cxslack listen`: hands inbox events to the handler, one at a time, oldest first.

A handler raising RetryableError (Slack or Coralogix unavailable) puts its event back, first in its
order, and the worker takes it again after a capped exponential backoff, for as long as it takes:
the events behind it wait, so order is kept and nothing is lost in an outage. An event store that
cannot be reached (a database down) is waited out the same way. Any other exception is
permanent: the event goes to the dead-letter directory and the worker moves on. Each finished
event, and each retry, is one log line; no event content beyond type, channel and ts is logged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# The handlers' "not now" (a Slack or Coralogix outage): the one class both sides agree on.
from cxslack.events import RetryableError
from cxslack.listen.interactivity import CLICK_TYPE, describe
from cxslack.redact import redact
from cxslack.state.interface import EventInbox, InboxItem, Outcome, StateUnavailable

EventHandler = Callable[[dict[str, Any]], None]
Log = Callable[[str], None]


class Worker:
    def __init__(
        self,
        inbox: EventInbox,
        handler: EventHandler,
        log: Log,
        *,
        backoff: float = 0.5,
        backoff_cap: float = 5.0,
        on_finished: Callable[[], None] | None = None,
    ):
        self.inbox = inbox
        self.handler = handler
        self.log = log
        self.backoff, self.backoff_cap = backoff, backoff_cap
        self.on_finished = on_finished
        self.failed_attempts = 0  # handler attempts since the last success: > 0 while an outage lasts
        self.state_failures = 0  # inbox calls that failed in a row: > 0 while the event store is away
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cxslack-listen-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Finish the event in hand (not the ones waiting); False if the handler is still busy."""
        self._stopping.set()
        self.inbox.wake()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                item = self.inbox.head(timeout=5.0, interrupted=self._stopping.is_set)
                if item is not None and self._stopping.is_set():
                    self.inbox.release(item)  # taken just as the listener stops: it waits for the next start
                elif item is not None:
                    self._process(item)
            except StateUnavailable as exc:  # the database went away: what is claimed is claimed again later
                self.state_failures += 1
                delay = min(self.backoff_cap, self.backoff * 2 ** min(self.state_failures - 1, 16))
                self.log(
                    redact(
                        f"{_now()} the event store is unavailable ({_short(str(exc))}); retrying in {delay:g}s"
                    )
                )
                self._stopping.wait(delay)
            else:
                self.state_failures = 0

    def _process(self, item: InboxItem) -> None:
        try:
            envelope = item.envelope()
        except (OSError, ValueError) as exc:
            if isinstance(exc, StateUnavailable):
                raise
            self._finish(item, {}, Outcome.DEAD_LETTER, f"unreadable: {exc}")
            return
        started = time.monotonic()
        try:
            self.handler(envelope)
        except (RetryableError, StateUnavailable) as exc:
            # The event waits again, first in its order; the same (or, with a shared inbox, another
            # replica's) worker takes it after the backoff. Order is kept and nothing is lost.
            self.failed_attempts += 1
            delay = min(self.backoff_cap, self.backoff * 2 ** min(self.failed_attempts - 1, 16))
            self._line(envelope, f"retrying in {delay:g}s", f"attempt {self.failed_attempts}: {exc.message}")
            self.inbox.release(item)
            self._stopping.wait(delay)  # shutting down: the event stays in the inbox for the next start
            return
        except Exception as exc:
            self._finish(item, envelope, Outcome.DEAD_LETTER, f"{type(exc).__name__}: {exc}")
            return
        self._finish(item, envelope, Outcome.HANDLED, f"{(time.monotonic() - started) * 1000:.0f} ms")

    def _finish(self, item: InboxItem, envelope: dict[str, Any], outcome: Outcome, detail: str) -> None:
        self.failed_attempts = 0
        self.inbox.finish(item, outcome, redact(detail) if outcome is Outcome.DEAD_LETTER else "")
        self._line(envelope, str(outcome), detail, item.event_id)
        if self.on_finished is not None:
            self.on_finished()

    def _line(self, envelope: dict[str, Any], status: str, detail: str, event_id: str = "") -> None:
        """`<time> <event type> <channel> <ts> → <status> (<event id>, <detail>)`; for a click,
        `block_actions/<action id> <channel> <message ts>`."""
        event = envelope.get("event")
        event = event if isinstance(event, dict) else {}
        kind = "/".join(str(k) for k in (event.get("type") or "-", event.get("subtype")) if k)
        channel = event.get("channel") or "-"
        ts = event.get("ts") or event.get("message_ts") or "-"
        if envelope.get("type") == CLICK_TYPE:
            kind, channel, ts = describe(envelope)
        when = _now()
        event_id = event_id or str(envelope.get("event_id") or "-")
        self.log(redact(f"{when} {kind} {channel} {ts} → {status} ({event_id}, {_short(detail)})"))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(text: str, limit: int = 200) -> str:
    """One line, bounded: an exception message can be long or span lines."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
