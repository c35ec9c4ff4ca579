"""Regular expressions for the `matching` test, refused when Python's backtracking could run away."""

from __future__ import annotations

import functools
import re
from typing import Any

from cxslack.templating.limits import MAX_PATTERN_CHARS, MAX_REGEX_PATHS, MAX_VALUE_CHARS

# Tera matches with Rust's linear-time regex engine; Python's `re` backtracks, and runs in C where no
# deadline can interrupt it. So a pattern is parsed first and refused if it needs what Rust lacks
# (backreferences, lookaround), nests unbounded repetition (`(a+)+`: exponential), or could explore
# more than MAX_REGEX_PATHS paths on the value at hand (`\w+\s*\w+=` on 1,000 characters).


class RegexRefused(ValueError):
    pass


@functools.lru_cache(maxsize=128)
def regex(pattern: str) -> tuple[re.Pattern[str], Any]:
    import re._parser as sre_parse  # the stdlib parser `re` itself uses

    if len(pattern) > MAX_PATTERN_CHARS:
        raise RegexRefused(f"pattern is {len(pattern)} characters long; the limit is {MAX_PATTERN_CHARS}")
    try:
        parsed = sre_parse.parse(pattern)
        compiled = re.compile(pattern)
    except re.error as exc:
        raise RegexRefused(f"invalid regular expression: {exc}") from None
    search_paths(parsed, MAX_VALUE_CHARS)  # structural refusals, whatever the value
    return compiled, parsed


def search_paths(parsed: Any, length: int) -> int:
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
    return min(starts * _paths(items, length, parsed.state.flags, final=True), MAX_REGEX_PATHS + 1)


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
                raise RegexRefused("nested repetition such as (a+)+ can take exponential time; simplify it")
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
            raise RegexRefused(
                "backreferences, lookaround, atomic groups and possessive repeats are not "
                "supported (Tera's regex engine has none)"
            )
        else:
            count = 1
        total = min(total * count, MAX_REGEX_PATHS + 1)
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
