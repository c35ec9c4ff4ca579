"""Times on the command line (`--since`, `--until`) and in output."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from cxslack.errors import UsageError

_RELATIVE = re.compile(r"(\d{1,6})([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, flag: str, now: float | None = None) -> int:
    """RFC 3339 (a time without offset is UTC) or relative to now (`90m`, `24h`, `7d`) → epoch seconds."""
    value = text.strip()
    relative = _RELATIVE.fullmatch(value.lower())
    if relative:
        seconds = int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
        return int((time.time() if now is None else now) - seconds)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            "invalid_time",
            f"{flag} {text!r} is neither an RFC 3339 time nor a relative one",
            f"Examples: {flag} 24h, {flag} 7d, {flag} 2026-11-29T08:00:00Z",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
