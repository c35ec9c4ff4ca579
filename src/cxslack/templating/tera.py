"""Tera's semantics on Python values: printing, operators, `range`, and Tera's filters and tests.

Every function bounds what it builds (see limits), so a template cannot exhaust memory through them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NoReturn

from cxslack.templating.limits import (
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    MAX_RANGE_ITEMS,
    MAX_REGEX_PATHS,
    MAX_VALUE_CHARS,
    MAX_VALUE_NODES,
    bounded,
    reject,
    render_error,
    value_too_long,
)
from cxslack.templating.regex_guard import RegexRefused, regex, search_paths

# -- values: Tera's rendering, operators and built-ins -----------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string(value: Any, role: str) -> str:
    if isinstance(value, str):
        return value
    reject(value, f"{role} needs a string")


def to_text(value: Any, depth: int = 0) -> str:
    """Print a value as Tera does: null as "", lower-case booleans, arrays as [a, b], maps as [object]."""
    if isinstance(value, str):
        return bounded(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return str(value)
    if isinstance(value, dict):
        return "[object]"
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise render_error(f"a value is nested more than {MAX_DEPTH} levels deep")
        parts, size = [], 2
        for item in value:
            parts.append(to_text(item, depth + 1))
            size += len(parts[-1]) + 2
            if size > MAX_VALUE_CHARS:
                raise value_too_long()
        return "[" + ", ".join(parts) + "]"
    reject(value, "cannot print this value")


def check_built(value: Any) -> Any:
    """Refuse an array or map that expands to more than MAX_VALUE_NODES values."""
    sizes: dict[int, int] = {}  # by id: shared sub-arrays are measured once

    def expanded(item: Any, depth: int) -> int:
        if not isinstance(item, list | dict):
            return 1
        if id(item) in sizes:
            return sizes[id(item)]
        if depth >= MAX_DEPTH:  # also ends self-referencing data
            raise render_error(f"a value is nested more than {MAX_DEPTH} levels deep")
        total = 1
        for child in item.values() if isinstance(item, dict) else item:
            total += expanded(child, depth + 1)
            if total > MAX_VALUE_NODES:
                raise render_error(f"an array or object grew past {MAX_VALUE_NODES:,} values")
        sizes[id(item)] = total
        return total

    expanded(value, 0)
    return value


def concat(*parts: Any) -> str:
    """`a ~ b`: Tera joins strings and numbers only."""
    texts = []
    for part in parts:
        if not (isinstance(part, str) or _is_number(part)):
            reject(part, "~ joins strings and numbers")
        texts.append(str(part))
    if sum(map(len, texts)) > MAX_VALUE_CHARS:
        raise value_too_long()
    return "".join(texts)


def pairs(value: Any) -> list[tuple[str, Any]]:
    """`{% for key, value in map %}` iterates a map's entries in Tera, in key order (see _json_encode)."""
    if isinstance(value, dict):
        return sorted(value.items())
    reject(value, "`for key, value in …` needs an object")


def check_operands(operator: str, left: Any, right: Any) -> None:
    for operand in (left, right):
        if not _is_number(operand):
            join_hint = " (join strings with ~)" if operator == "+" and isinstance(operand, str) else ""
            reject(operand, f"the {operator} operator needs numbers{join_hint}")
    # Checked before computing: 10 ** 10 ** 10 would run in C, out of the deadline's reach.
    if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 64:
        raise render_error(f"{left} ** {right} does not fit in a 64-bit integer")


def check_result(result: Any) -> Any:
    if isinstance(result, int) and not INT_MIN <= result <= INT_MAX:
        raise render_error("an integer result does not fit in 64 bits")
    return result


def tera_range(*args: Any, start: int = 0, end: int | None = None, step_by: int = 1) -> list[int]:
    """Tera's `range(end=n, start=0, step_by=1)`; Python's positional `range(a, b, c)` also works."""
    if args and (start, end, step_by) != (0, None, 1):
        raise render_error("range() takes positional arguments or start=/end=/step_by=, not both")
    if args:
        numbers = range(*args)
    elif end is None:
        raise render_error("range() needs end=…")
    else:
        numbers = range(start, end, step_by)
    if len(numbers) > MAX_RANGE_ITEMS:
        raise render_error(f"range() of {len(numbers):,} items exceeds the limit of {MAX_RANGE_ITEMS:,}")
    return list(numbers)


# -- filters (Tera's names and keyword arguments) ----------------------------------------------


def _lower(value: Any) -> str:
    return _string(value, "lower").lower()


def _upper(value: Any) -> str:
    return bounded(_string(value, "upper").upper())  # ß → SS: upper() can grow a string


def _trim(value: Any) -> str:
    return _string(value, "trim").strip()


def _replace(value: Any, **arguments: Any) -> str:
    # Tera calls the arguments `from` and `to`; `from` is a Python keyword, hence **arguments.
    text = _string(value, "replace")
    if set(arguments) != {"from", "to"}:
        raise render_error('replace needs from="…" and to="…"')
    old, new = _string(arguments["from"], "replace's from"), _string(arguments["to"], "replace's to")
    if len(text) + text.count(old) * (len(new) - len(old)) > MAX_VALUE_CHARS:  # checked before building
        raise value_too_long()
    return text.replace(old, new)


def _length(value: Any) -> int:
    if isinstance(value, str | list | dict):
        return len(value)
    reject(value, "length needs a string, an array or an object")


def _join(value: Any, sep: str = "") -> str:
    if not isinstance(value, list):
        reject(value, "join needs an array")
    separator = _string(sep, "join's sep")
    parts, size = [], 0
    for item in value:
        parts.append(to_text(item))
        size += len(parts[-1]) + len(separator)
        if size > MAX_VALUE_CHARS:
            raise value_too_long()
    return separator.join(parts)


def _default(subject: Any, value: Any) -> Any:
    """`x | default(value=…)`: Tera substitutes for a missing field or null."""
    from jinja2 import Undefined

    return value if subject is None or isinstance(subject, Undefined) else subject


def _date(value: Any, format: str = "%Y-%m-%d", timezone: str | None = None) -> str:
    """Tera's `date`: an RFC 3339 string, a YYYY-MM-DD date, or epoch seconds or milliseconds."""
    if _is_number(value):
        # Epoch milliseconds: 1e11 seconds would be the year 5138, so anything larger is milliseconds.
        seconds = value / 1000 if abs(value) >= 1e11 else value
        moment = datetime.fromtimestamp(seconds, UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise render_error(f"date cannot parse {value[:40]!r} as an RFC 3339 timestamp") from None
        if moment.tzinfo is None:  # Tera reads a naive datetime or a bare date as UTC
            moment = moment.replace(tzinfo=UTC)
    else:
        reject(value, "date needs an RFC 3339 string or an epoch timestamp")
    if timezone is not None:
        from zoneinfo import ZoneInfo

        try:
            moment = moment.astimezone(ZoneInfo(_string(timezone, "date's timezone")))
        except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            raise render_error(f"date: unknown timezone {timezone!r}") from None
    return bounded(moment.strftime(_string(format, "date's format")))


def _json_encode(value: Any, pretty: bool = False) -> str:
    """serde_json's output: raw UTF-8, two-space indent when pretty, and keys in order: Tera's maps are
    sorted unless it is built with its optional `preserve_order` feature."""

    def not_json(item: Any) -> NoReturn:
        reject(item, "json_encode needs JSON values")

    encoder = json.JSONEncoder(
        ensure_ascii=False,
        sort_keys=True,
        indent=2 if pretty else None,
        separators=(",", ": ") if pretty else (",", ":"),
        default=not_json,
    )
    parts, size = [], 0
    for chunk in encoder.iterencode(value):  # streamed, so an oversized value stops early
        size += len(chunk)
        if size > MAX_VALUE_CHARS:
            raise value_too_long()
        parts.append(chunk)
    return "".join(parts)


# -- tests -------------------------------------------------------------------------------------


def _starting_with(value: Any, prefix: Any) -> bool:
    return _string(value, "starting_with").startswith(_string(prefix, "starting_with's argument"))


def _ending_with(value: Any, suffix: Any) -> bool:
    return _string(value, "ending_with").endswith(_string(suffix, "ending_with's argument"))


def _containing(value: Any, needle: Any) -> bool:
    if isinstance(value, str | dict):  # a substring, or a key
        return _string(needle, "containing's argument") in value
    if isinstance(value, list):
        return needle in value
    reject(value, "containing needs a string, an array or an object")


def _matching(value: Any, pattern: Any) -> bool:
    text = _string(value, "matching")
    try:
        compiled, parsed = regex(_string(pattern, "matching's pattern"))
        paths = search_paths(parsed, len(text))
    except RegexRefused as exc:
        raise render_error(f"matching: {exc}") from None
    if paths > MAX_REGEX_PATHS:
        raise render_error(
            f"matching: pattern {pattern!r} could backtrack too long on a {len(text):,}-character value; "
            "use fewer repeated parts such as .* or \\w+"
        )
    return compiled.search(text) is not None


# Tera's filters by name. Names with a space cannot be written in a template: the engine's
# rewrites of `~`, array literals and `for k, v in map` reach them.
FILTERS = {
    "lower": _lower,
    "upper": _upper,
    "trim": _trim,
    "replace": _replace,
    "length": _length,
    "join": _join,
    "default": _default,
    "date": _date,
    "json_encode": _json_encode,
    "tera concat": concat,
    "tera array": check_built,
    "tera pairs": pairs,
}
# Tera's tests, besides `defined` and `undefined` (jinja2's own, added by the engine).
TESTS = {
    "starting_with": _starting_with,
    "ending_with": _ending_with,
    "containing": _containing,
    "matching": _matching,
}
