"""Connector channel templates: Tera syntax, rendered in a bounded sandbox.

A Slack connector may override its `channel` per entity type with a Tera template, which Coralogix
renders against the notification payload. This module renders the same templates on jinja2's
`SandboxedEnvironment`, adjusted to Tera's semantics (`.` reads JSON keys, a missing field is an
error, Tera's filters, tests and `get_context()`), and bounds every render: CPU time, output size, the
size of every string and array a template builds, integer width and regex backtracking. A hostile
template fails with a `TemplateRenderError`; it cannot hang, exhaust memory or reach Python objects.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sys
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, cast

from cxslack.errors import CxError, UsageError

if TYPE_CHECKING:
    from types import FrameType

    from jinja2 import Template, TemplateSyntaxError, nodes
    from jinja2.sandbox import SandboxedEnvironment

ENTITY_TYPES = ("alerts", "cases", "test-notifications")
MAX_TEMPLATE_CHARS = 10_000
MAX_RENDERED_CHARS = 1_000
RENDER_CPU_SECONDS = 1.0

# Any string a template builds (or the raw output before stripping) stays under this.
_MAX_VALUE_CHARS = 100_000
# Any array a template builds, counted as the tree it expands to: `[a, a]` nested n times costs
# almost no memory but 2**n values to compare or print.
_MAX_VALUE_NODES = 100_000
_MAX_DEPTH = 128  # serde_json's nesting limit, so Tera never sees deeper values either
_MAX_RANGE_ITEMS = 10_000
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # Tera numbers are i64/u64; overflow is an error there too
_MAX_PATTERN_CHARS = 256
# Upper bound on backtracking paths a `matching` search may explore (see _search_paths).
_MAX_REGEX_PATHS = 1_000_000  # ≤ ~10 ms of backtracking in C
_LOOP_FIELDS = frozenset({"index", "index0", "first", "last"})  # Tera's loop variables
_TEMPLATE_FILENAME = "<template>"  # jinja's filename for from_string(); the tracer keys on it
# Statement nodes whose tag is not their lower-cased class name, for "{% … %} is not supported".
_TAG_NAMES = {
    "AssignBlock": "set",
    "CallBlock": "call",
    "FilterBlock": "filter",
    "FromImport": "from",
    "ExprStmt": "do",
}

_SYNTAX_HINT = (
    "Connector templates use Tera syntax: {{ expr }}, {% if %}…{% elif %}…{% else %}…{% endif %}, "
    "{% for x in xs %}…{% endfor %}."
)
_FIELD_HINT = (
    "Guard optional fields with `is defined`, or list the payload's fields with "
    "{{ get_context() | json_encode(pretty=true) }}."
)


class TemplateRenderError(CxError):
    """A channel template that cannot be rendered; `code` is Coralogix's reason, lower-cased."""


def validate_template(text: str) -> None:
    """Raise UsageError (invalid_template, template_exceeds_max_length) unless `text` compiles."""
    try:
        _compile(text)
    except TemplateRenderError as exc:
        raise UsageError(exc.code, exc.message, exc.hint) from None


def render_template(text: str, context: dict[str, Any]) -> str:
    """Render `text` against a payload and strip surrounding whitespace, as Coralogix does.

    Safe to call from several threads at once: each render gets its own context and deadline.
    """
    from jinja2.exceptions import SecurityError, UndefinedError

    template = _compile(text)
    chunks: list[str] = []
    size = 0
    stream = cast("Generator[str, None, None]", template.generate(context))  # jinja types it Iterator
    try:
        with _cpu_deadline(RENDER_CPU_SECONDS):
            for chunk in stream:
                size += len(chunk)
                if size > _MAX_VALUE_CHARS:
                    raise _too_long_output(size)
                chunks.append(chunk)
    except TemplateRenderError:
        raise
    except _RenderTimeout:
        raise TemplateRenderError(
            "render_timeout",
            f"template did not finish within {RENDER_CPU_SECONDS:g} s of CPU time",
            "Remove large or nested loops.",
        ) from None
    except UndefinedError as exc:
        raise TemplateRenderError(
            "field_not_found", f"template uses a field the payload does not have: {exc.message}", _FIELD_HINT
        ) from None
    except SecurityError as exc:
        raise _render_error(f"blocked: {exc}; templates can only read payload fields") from None
    except Exception as exc:  # anything else a template triggers is the template's error, not a crash
        raise _render_error(f"{type(exc).__name__}: {exc}") from exc
    finally:
        stream.close()  # after the deadline is lifted: closing runs the template's cleanup
    rendered = "".join(chunks).strip()
    if len(rendered) > MAX_RENDERED_CHARS:
        raise _too_long_output(len(rendered))
    return rendered


def sample_payload(entity_type: str) -> dict[str, Any]:
    """A representative Coralogix payload for `entity_type`, shipped as package data."""
    from importlib import resources

    if entity_type not in ENTITY_TYPES:
        raise UsageError(
            "invalid_entity_type",
            f"unknown entity type {entity_type!r}",
            f"Use one of: {', '.join(ENTITY_TYPES)}.",
        )
    path = resources.files("cxslack") / "samples" / f"{entity_type}.json"
    payload: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return payload


# -- errors ------------------------------------------------------------------------------------


def _render_error(detail: str) -> TemplateRenderError:
    if len(detail) > 300:
        detail = detail[:300] + "…"
    return TemplateRenderError("render_error", f"template failed to render: {detail}")


def _too_long_output(size: int) -> TemplateRenderError:
    return TemplateRenderError(
        "rendered_value_exceeds_max_length",
        f"rendered channel is {size:,}{'+' if size > _MAX_VALUE_CHARS else ''} characters long; "
        f"the limit is {MAX_RENDERED_CHARS:,}",
        "A channel template should render one channel name.",
    )


def _type_name(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "an array"}
    if value is None:
        return "null"
    return names.get(type(value), "an object" if isinstance(value, dict) else f"a {type(value).__name__}")


def _reject(value: Any, problem: str) -> NoReturn:
    """Fail on a value a filter, test or operator cannot take; a missing field reports itself."""
    from jinja2 import Undefined  # already imported: only rendering reaches here

    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    raise _render_error(f"{problem}, got {_type_name(value)}")


def _value_too_long() -> TemplateRenderError:
    return _render_error(f"a value grew past {_MAX_VALUE_CHARS:,} characters")


def _bounded(text: str) -> str:
    if len(text) > _MAX_VALUE_CHARS:
        raise _value_too_long()
    return text


# -- values: Tera's rendering, operators and built-ins -----------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string(value: Any, role: str) -> str:
    if isinstance(value, str):
        return value
    _reject(value, f"{role} needs a string")


def _to_text(value: Any, depth: int = 0) -> str:
    """Print a value as Tera does: null as "", lower-case booleans, arrays as [a, b], maps as [object]."""
    if isinstance(value, str):
        return _bounded(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return str(value)
    if isinstance(value, dict):
        return "[object]"
    if isinstance(value, list):
        if depth >= _MAX_DEPTH:
            raise _render_error(f"a value is nested more than {_MAX_DEPTH} levels deep")
        parts, size = [], 2
        for item in value:
            parts.append(_to_text(item, depth + 1))
            size += len(parts[-1]) + 2
            if size > _MAX_VALUE_CHARS:
                raise _value_too_long()
        return "[" + ", ".join(parts) + "]"
    _reject(value, "cannot print this value")


def _check_built(value: Any) -> Any:
    """Refuse an array or map that expands to more than _MAX_VALUE_NODES values."""
    sizes: dict[int, int] = {}  # by id: shared sub-arrays are measured once

    def expanded(item: Any, depth: int) -> int:
        if not isinstance(item, list | dict):
            return 1
        if id(item) in sizes:
            return sizes[id(item)]
        if depth >= _MAX_DEPTH:  # also ends self-referencing data
            raise _render_error(f"a value is nested more than {_MAX_DEPTH} levels deep")
        total = 1
        for child in item.values() if isinstance(item, dict) else item:
            total += expanded(child, depth + 1)
            if total > _MAX_VALUE_NODES:
                raise _render_error(f"an array or object grew past {_MAX_VALUE_NODES:,} values")
        sizes[id(item)] = total
        return total

    expanded(value, 0)
    return value


def _concat(*parts: Any) -> str:
    """`a ~ b`: Tera joins strings and numbers only."""
    texts = []
    for part in parts:
        if not (isinstance(part, str) or _is_number(part)):
            _reject(part, "~ joins strings and numbers")
        texts.append(str(part))
    if sum(map(len, texts)) > _MAX_VALUE_CHARS:
        raise _value_too_long()
    return "".join(texts)


def _pairs(value: Any) -> list[tuple[str, Any]]:
    """`{% for key, value in map %}` iterates a map's entries in Tera, in key order (see _json_encode)."""
    if isinstance(value, dict):
        return sorted(value.items())
    _reject(value, "`for key, value in …` needs an object")


def _check_operands(operator: str, left: Any, right: Any) -> None:
    for operand in (left, right):
        if not _is_number(operand):
            join_hint = " (join strings with ~)" if operator == "+" and isinstance(operand, str) else ""
            _reject(operand, f"the {operator} operator needs numbers{join_hint}")
    # Checked before computing: 10 ** 10 ** 10 would run in C, out of the deadline's reach.
    if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 64:
        raise _render_error(f"{left} ** {right} does not fit in a 64-bit integer")


def _check_result(result: Any) -> Any:
    if isinstance(result, int) and not _INT_MIN <= result <= _INT_MAX:
        raise _render_error("an integer result does not fit in 64 bits")
    return result


def _range(*args: Any, start: int = 0, end: int | None = None, step_by: int = 1) -> list[int]:
    """Tera's `range(end=n, start=0, step_by=1)`; Python's positional `range(a, b, c)` also works."""
    if args and (start, end, step_by) != (0, None, 1):
        raise _render_error("range() takes positional arguments or start=/end=/step_by=, not both")
    if args:
        numbers = range(*args)
    elif end is None:
        raise _render_error("range() needs end=…")
    else:
        numbers = range(start, end, step_by)
    if len(numbers) > _MAX_RANGE_ITEMS:
        raise _render_error(f"range() of {len(numbers):,} items exceeds the limit of {_MAX_RANGE_ITEMS:,}")
    return list(numbers)


# -- filters (Tera's names and keyword arguments) ----------------------------------------------


def _lower(value: Any) -> str:
    return _string(value, "lower").lower()


def _upper(value: Any) -> str:
    return _bounded(_string(value, "upper").upper())  # ß → SS: upper() can grow a string


def _trim(value: Any) -> str:
    return _string(value, "trim").strip()


def _replace(value: Any, **arguments: Any) -> str:
    # Tera calls the arguments `from` and `to`; `from` is a Python keyword, hence **arguments.
    text = _string(value, "replace")
    if set(arguments) != {"from", "to"}:
        raise _render_error('replace needs from="…" and to="…"')
    old, new = _string(arguments["from"], "replace's from"), _string(arguments["to"], "replace's to")
    if len(text) + text.count(old) * (len(new) - len(old)) > _MAX_VALUE_CHARS:  # checked before building
        raise _value_too_long()
    return text.replace(old, new)


def _length(value: Any) -> int:
    if isinstance(value, str | list | dict):
        return len(value)
    _reject(value, "length needs a string, an array or an object")


def _join(value: Any, sep: str = "") -> str:
    if not isinstance(value, list):
        _reject(value, "join needs an array")
    separator = _string(sep, "join's sep")
    parts, size = [], 0
    for item in value:
        parts.append(_to_text(item))
        size += len(parts[-1]) + len(separator)
        if size > _MAX_VALUE_CHARS:
            raise _value_too_long()
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
            raise _render_error(f"date cannot parse {value[:40]!r} as an RFC 3339 timestamp") from None
        if moment.tzinfo is None:  # Tera reads a naive datetime or a bare date as UTC
            moment = moment.replace(tzinfo=UTC)
    else:
        _reject(value, "date needs an RFC 3339 string or an epoch timestamp")
    if timezone is not None:
        from zoneinfo import ZoneInfo

        try:
            moment = moment.astimezone(ZoneInfo(_string(timezone, "date's timezone")))
        except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            raise _render_error(f"date: unknown timezone {timezone!r}") from None
    return _bounded(moment.strftime(_string(format, "date's format")))


def _json_encode(value: Any, pretty: bool = False) -> str:
    """serde_json's output: raw UTF-8, two-space indent when pretty, and keys in order: Tera's maps are
    sorted unless it is built with its optional `preserve_order` feature."""

    def not_json(item: Any) -> NoReturn:
        _reject(item, "json_encode needs JSON values")

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
        if size > _MAX_VALUE_CHARS:
            raise _value_too_long()
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
    _reject(value, "containing needs a string, an array or an object")


def _matching(value: Any, pattern: Any) -> bool:
    text = _string(value, "matching")
    try:
        compiled, parsed = _regex(_string(pattern, "matching's pattern"))
        paths = _search_paths(parsed, len(text))
    except _RegexRefused as exc:
        raise _render_error(f"matching: {exc}") from None
    if paths > _MAX_REGEX_PATHS:
        raise _render_error(
            f"matching: pattern {pattern!r} could backtrack too long on a {len(text):,}-character value; "
            "use fewer repeated parts such as .* or \\w+"
        )
    return compiled.search(text) is not None


# -- regex guard -------------------------------------------------------------------------------
# Tera matches with Rust's linear-time regex engine; Python's `re` backtracks, and runs in C where no
# deadline can interrupt it. So a pattern is parsed first and refused if it needs what Rust lacks
# (backreferences, lookaround), nests unbounded repetition (`(a+)+`: exponential), or could explore
# more than _MAX_REGEX_PATHS paths on the value at hand (`\w+\s*\w+=` on 1,000 characters).


class _RegexRefused(ValueError):
    pass


@functools.lru_cache(maxsize=128)
def _regex(pattern: str) -> tuple[re.Pattern[str], Any]:
    import re._parser as sre_parse  # the stdlib parser `re` itself uses

    if len(pattern) > _MAX_PATTERN_CHARS:
        raise _RegexRefused(f"pattern is {len(pattern)} characters long; the limit is {_MAX_PATTERN_CHARS}")
    try:
        parsed = sre_parse.parse(pattern)
        compiled = re.compile(pattern)
    except re.error as exc:
        raise _RegexRefused(f"invalid regular expression: {exc}") from None
    _search_paths(parsed, _MAX_VALUE_CHARS)  # structural refusals, whatever the value
    return compiled, parsed


def _search_paths(parsed: Any, length: int) -> int:
    """Bound the paths a backtracking search for `parsed` can take over `length` characters."""
    import re._parser as sre_parse

    items = list(parsed)
    anchored = (
        bool(items)
        and items[0]
        in ((sre_parse.AT, sre_parse.AT_BEGINNING), (sre_parse.AT, sre_parse.AT_BEGINNING_STRING))
        and not parsed.state.flags & re.MULTILINE
    )
    starts = 1 if anchored else length + 1
    return min(starts * _paths(items, length, parsed.state.flags, final=True), _MAX_REGEX_PATHS + 1)


def _paths(items: list[Any], length: int, flags: int, final: bool = False) -> int:
    import re._parser as sre_parse

    total = 1
    for index, (op, av) in enumerate(items):
        last = final and index == len(items) - 1
        if op is sre_parse.BRANCH:
            counts = [_paths(list(alternative), length, flags, last) for alternative in av[1]]
            count = max(counts) if _disjoint_branches(av[1], flags) else sum(counts)
        elif op is sre_parse.SUBPATTERN:  # (group, flags added, flags removed, body)
            count = _paths(list(av[3]), length, (flags | av[1]) & ~av[2], last)
        elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
            low, high, body = av
            inner = _paths(list(body), length, flags)
            if inner > 1 and high == sre_parse.MAXREPEAT:
                raise _RegexRefused("nested repetition such as (a+)+ can take exponential time; simplify it")
            if inner > 1:
                count = (high - low + 1) * (inner**high if high * inner.bit_length() < 64 else 2**64)
            elif last:
                count = 1  # a final run is taken greedily (or lazily) and never backtracked into
            else:
                count = max(min(high, length) - min(low, length), 0) + 1
        elif op in (
            sre_parse.GROUPREF,
            sre_parse.GROUPREF_EXISTS,
            sre_parse.ASSERT,
            sre_parse.ASSERT_NOT,
            sre_parse.ATOMIC_GROUP,
            sre_parse.POSSESSIVE_REPEAT,
        ):
            raise _RegexRefused(
                "backreferences, lookaround, atomic groups and possessive repeats are not "
                "supported (Tera's regex engine has none)"
            )
        else:
            count = 1
        total = min(total * count, _MAX_REGEX_PATHS + 1)
    return total


def _disjoint_branches(alternatives: list[Any], flags: int) -> bool:
    """`(prod|staging)`: alternatives starting with different literals cannot both be tried."""
    import re._parser as sre_parse

    firsts = []
    for alternative in alternatives:
        if not alternative or alternative[0][0] is not sre_parse.LITERAL:
            return False
        first = chr(alternative[0][1])
        firsts.append(first.casefold() if flags & re.IGNORECASE else first)
    return len(set(firsts)) == len(firsts)


# -- deadline ----------------------------------------------------------------------------------


class _RenderTimeout(BaseException):
    """Raised inside template code; a BaseException so no `except Exception` on the way swallows it."""


@contextlib.contextmanager
def _cpu_deadline(seconds: float) -> Iterator[None]:
    """Abort template code once this thread has spent `seconds` of CPU time.

    SandboxedEnvironment bounds nothing in time, and a loop in a template is a plain Python loop. A
    tracer sees every line the compiled template executes and raises once the thread's CPU time is
    past the deadline; it traces template code only, so filters and jinja's runtime (bounded by the
    size limits) run at full speed. CPU rather than wall time, so renders running side by side in
    other threads do not time each other out. The thread's previous tracer is restored afterwards.
    """
    deadline = time.thread_time() + seconds
    next_check = time.monotonic()

    def trace_template(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal next_check
        # The thread's CPU clock costs ~1 µs a read, the monotonic clock ~0.2 µs: read it every 5 ms.
        if time.monotonic() >= next_check:
            if time.thread_time() > deadline:
                raise _RenderTimeout
            next_check = time.monotonic() + 0.005
        return trace_template

    def trace_calls(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == _TEMPLATE_FILENAME:
            return trace_template(frame, event, arg)
        return None

    previous = sys.gettrace()
    sys.settrace(trace_calls)
    try:
        yield
    finally:
        sys.settrace(previous)


# -- compiling ---------------------------------------------------------------------------------


class _Engine(NamedTuple):
    env: SandboxedEnvironment
    prepare: Callable[[str, nodes.Template], nodes.Template]  # Tera checks, then Tera rewrites


@functools.lru_cache(maxsize=256)
def _compile(text: str) -> Template:
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateRenderError(
            "template_exceeds_max_length",
            f"template is {len(text):,} characters long; the limit is {MAX_TEMPLATE_CHARS:,}",
            "Shorten the template, for example with fewer {% elif %} branches.",
        )
    from jinja2 import TemplateSyntaxError

    engine = _engine()
    try:
        ast = engine.env.parse(text)
    except TemplateSyntaxError as exc:
        raise _invalid(text, exc.message or str(exc), _parse_error_position(engine.env, text, exc)) from None
    except (RecursionError, MemoryError):
        raise _invalid(text, "the template is nested too deeply", None) from None
    try:
        return engine.env.from_string(engine.prepare(text, ast))
    except TemplateSyntaxError as exc:
        raise _invalid(text, exc.message or str(exc), (exc.lineno, None)) from None
    except (SyntaxError, RecursionError, MemoryError):  # Python's own limits on the generated code
        raise _invalid(text, "the template is nested too deeply", None) from None


def _invalid(text: str, detail: str, position: tuple[int, int | None] | None) -> TemplateRenderError:
    # The position replaces the lexer's " at <offset>"; the product is Tera, not Jinja.
    detail = re.sub(r" at \d+$", "", detail).replace("Jinja was looking for", "Expected")
    where = ""
    if position is not None:
        line, column = position
        where = f" at line {line}" + (f", column {column}" if column is not None else "")
    return TemplateRenderError("invalid_template", f"invalid template{where}: {detail}", _SYNTAX_HINT)


def _parse_error_position(
    env: SandboxedEnvironment, text: str, exc: TemplateSyntaxError
) -> tuple[int, int | None]:
    """Line and column of a syntax error; jinja reports only the line.

    The lexer names the offset of a bad character; the end of input is where an unclosed block is
    noticed; any other error lies in the first tag whose prefix of the template reproduces it.
    """
    from jinja2 import TemplateSyntaxError

    normalized = text.replace("\r\n", "\n").replace("\r", "\n")  # the lexer's own offsets
    offset = re.search(r" at (\d+)$", exc.message or "")
    if offset:
        return _line_column(normalized, int(offset.group(1)))
    if (exc.message or "").startswith("Unexpected end of template"):
        return _line_column(normalized, len(normalized.rstrip("\n")))
    starts = [match.start() for match in re.finditer(r"\{[{%#]", normalized)]
    if not starts:
        return exc.lineno, None

    def reproduces(tag: int) -> bool:
        end = starts[tag + 1] if tag + 1 < len(starts) else len(normalized)
        try:
            env.parse(normalized[:end])
        except TemplateSyntaxError as prefix_exc:
            return prefix_exc.message == exc.message and prefix_exc.lineno == exc.lineno
        return False

    low, high = 0, len(starts) - 1  # a parse error, once reached, persists in every longer prefix
    while low < high:
        middle = (low + high) // 2
        if reproduces(middle):
            high = middle
        else:
            low = middle + 1
    return _line_column(normalized, starts[low])


def _line_column(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _pattern_position(text: str, lineno: int, pattern: str) -> tuple[int, int | None]:
    """Line and column of the first match of `pattern` on line `lineno`; jinja's nodes know only the line."""
    lines = text.splitlines()
    found = re.search(pattern, lines[lineno - 1]) if 0 < lineno <= len(lines) else None
    return lineno, found.start() + 1 if found else None


@functools.cache
def _engine() -> _Engine:
    # jinja2 costs ~100 ms to import: only commands that render templates pay for it.
    from jinja2 import StrictUndefined, nodes, pass_context
    from jinja2.exceptions import SecurityError
    from jinja2.runtime import Context, LoopContext, Undefined
    from jinja2.sandbox import SandboxedEnvironment
    from jinja2.tests import test_defined, test_undefined
    from jinja2.visitor import NodeTransformer

    class TeraUndefined(StrictUndefined):
        """A missing field fails wherever it is used, as in Tera, except that a bare
        `{% if missing %}` is false, also as in Tera."""

        def __bool__(self) -> bool:  # type: ignore[override]  # StrictUndefined's raises (NoReturn)
            return False

    class TeraSandbox(SandboxedEnvironment):
        intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

        def getattr(self, obj: Any, attribute: str) -> Any:
            if isinstance(obj, LoopContext) and attribute in _LOOP_FIELDS:
                return getattr(obj, attribute)
            return self.getitem(obj, attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            # Tera values are JSON: `.` and `[]` read keys and indexes, never Python attributes.
            if isinstance(obj, Undefined):
                return obj  # Tera resolves the whole path: `a.b.c is defined` is false, not an error
            if isinstance(obj, dict):
                if argument in obj:
                    return obj[argument]
                return self.undefined(hint=f"field {argument!r} is missing", obj=obj, name=argument)
            if isinstance(obj, list | str) and isinstance(argument, int) and not isinstance(argument, bool):
                if -len(obj) <= argument < len(obj):
                    return obj[argument]
                return self.undefined(hint=f"index {argument} is out of range ({len(obj)} items)")
            raise SecurityError(f"cannot read {argument!r} from {_type_name(obj)}")

        def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            if not (isinstance(__obj, Undefined) or __obj is _range or __obj is get_context):
                raise SecurityError(f"{_type_name(__obj)} cannot be called")
            return __context.call(__obj, *args, **kwargs)

        def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
            _check_operands(operator, left, right)
            return _check_result(self.binop_table[operator](left, right))

    @pass_context
    def get_context(context: Context) -> dict[str, Any]:
        variables = context.get_all().items()
        return _check_built({k: v for k, v in variables if not (k in env.globals and env.globals[k] is v)})

    @pass_context
    def finalize(context: Context, value: Any) -> str:
        # pass_context also stops jinja from evaluating constant {{ … }} at compile time, where no
        # deadline applies.
        return _to_text(value)

    env = TeraSandbox(
        undefined=TeraUndefined,
        autoescape=False,
        finalize=finalize,
        optimized=False,  # no constant folding: every filter and test runs under the deadline
        extensions=["jinja2.ext.loopcontrols"],  # Tera's {% break %} and {% continue %}
    )
    env.globals = {"range": _range, "get_context": get_context}
    # Names with a space cannot be written in a template: these are reachable only via the rewrites.
    env.filters = {
        "lower": _lower,
        "upper": _upper,
        "trim": _trim,
        "replace": _replace,
        "length": _length,
        "join": _join,
        "default": _default,
        "date": _date,
        "json_encode": _json_encode,
        "tera concat": _concat,
        "tera array": _check_built,
        "tera pairs": _pairs,
    }
    env.tests = {
        "defined": test_defined,
        "undefined": test_undefined,
        "starting_with": _starting_with,
        "ending_with": _ending_with,
        "containing": _containing,
        "matching": _matching,
    }
    statements = (nodes.Output, nodes.If, nodes.For, nodes.Assign, nodes.Break, nodes.Continue)

    def check(text: str, ast: nodes.Template) -> None:
        def fail(detail: str, node: nodes.Node, pattern: str) -> NoReturn:
            raise _invalid(text, detail, _pattern_position(text, node.lineno, pattern))

        for node in ast.find_all(nodes.Node):
            if isinstance(node, nodes.Stmt) and not isinstance(node, statements):
                tag = _TAG_NAMES.get(type(node).__name__, type(node).__name__.lower())
                fail(f"{{% {tag} %}} is not supported in connector templates", node, rf"\{{%-?\s*{tag}\b")
            elif isinstance(node, nodes.For) and node.recursive:
                fail("recursive loops are not supported", node, r"\brecursive\b")
            elif isinstance(node, nodes.Dict):
                fail("Tera has no map literals", node, r"(?<!\{)\{(?![{%#])")
            elif isinstance(node, nodes.Tuple) and node.ctx == "load":
                fail("Tera has no tuples; use an array [a, b]", node, r"\(")
            elif isinstance(node, nodes.Filter) and node.name not in env.filters:
                fail(f"unknown filter {node.name!r}", node, rf"\|\s*{re.escape(node.name)}\b")
            elif isinstance(node, nodes.Test) and node.name not in env.tests:
                fail(f"unknown test {node.name!r}", node, rf"\bis\s+(not\s+)?{re.escape(node.name)}\b")
            elif isinstance(node, nodes.Call) and not (
                isinstance(node.node, nodes.Name) and node.node.name in env.globals
            ):
                callee = (
                    node.node.attr if isinstance(node.node, nodes.Getattr) else getattr(node.node, "name", "")
                )
                fail("only range() and get_context() can be called", node, rf"{re.escape(callee)}\s*\(")
            elif isinstance(node, nodes.Test) and node.name == "matching" and node.args:
                pattern = node.args[0]
                if isinstance(pattern, nodes.Const) and isinstance(pattern.value, str):
                    try:
                        _regex(pattern.value)
                    except _RegexRefused as exc:
                        fail(f"matching: {exc}", node, r"\bis\s+(not\s+)?matching\b")

    class TeraRewriter(NodeTransformer):
        """Give jinja's nodes Tera's meaning where the two differ."""

        def filtered(self, node: nodes.Node, name: str, args: Sequence[nodes.Node]) -> nodes.Filter:
            new = nodes.Filter(node, name, list(args), [], None, None, lineno=node.lineno)
            new.set_environment(env)
            return new

        def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
            self.generic_visit(node)
            return self.filtered(node.nodes[0], "tera concat", node.nodes[1:])

        def visit_List(self, node: nodes.List) -> nodes.Node:
            self.generic_visit(node)
            return self.filtered(node, "tera array", [])

        def visit_For(self, node: nodes.For) -> nodes.Node:
            self.generic_visit(node)
            if isinstance(node.target, nodes.Tuple):
                node.iter = self.filtered(node.iter, "tera pairs", [])
            return node

    def prepare(text: str, ast: nodes.Template) -> nodes.Template:
        check(text, ast)
        rewritten: nodes.Template = TeraRewriter().visit(ast)
        return rewritten

    return _Engine(env, prepare)
