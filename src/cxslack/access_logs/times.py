"""Times on the command line (`--since`, `--until`) and in output."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from cxslack.errors import UsageError

_RELATIVE = re.compile(r"(\d{1,6})([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


# RFC 3339 §5.6 date-time: a full date, T (or a space), a full time and a required offset.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?")


def parse_time(text: str, flag: str, now: float | None = None) -> int:
    """RFC 3339 with its UTC offset, or relative to now (`90m`, `24h`, `7d`) → epoch seconds.

    A time without an offset is refused rather than guessed: on a machine in UTC+2 it would be
    read two hours away from what its writer meant."""
    value = text.strip()
    relative = _RELATIVE.fullmatch(value.lower())
    if relative:
        seconds = int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
        return int((time.time() if now is None else now) - seconds)
    examples = (
        f"Examples: {flag} 24h, {flag} 7d, {flag} 2026-11-29T08:00:00Z, {flag} 2026-11-29T09:00:00+01:00"
    )
    shape = _RFC3339.fullmatch(value)
    if shape and not shape.group("offset"):
        raise UsageError("invalid_time", f"{flag} {text!r} has no UTC offset, so it could mean any time zone",
                         f"Add Z for UTC or the offset, e.g. {value}Z. {examples}")  # fmt: skip
    try:
        if not shape:
            raise ValueError(value)
        moment = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            "invalid_time", f"{flag} {text!r} is neither an RFC 3339 time nor a relative one", examples
        ) from None
    return int(moment.timestamp())


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
