"""A metric alert's PromQL without its comparison: the series to draw, and the number it was
compared with (the threshold line), when the expression carries one.

Coralogix's metric filter may be a bare expression (`avg_over_time(cpu[5m])`, the threshold in the
alert's rules) or a comparison (`avg_over_time(cpu[5m]) > 10`, alerts-integrations.yaml's own
example). PromQL's comparison operators are `== != > < >= <=`, optionally followed by `bool`
(prometheus.io/docs/prometheus/latest/querying/operators/#comparison-binary-operators); inside
label matchers (`{job!="x"}`), brackets, parentheses and strings they are not comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

_OPERATORS = ("==", "!=", ">=", "<=", ">", "<")
_FLIPPED = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class Comparison:
    expression: str  # what to draw
    operator: str | None = None  # the comparison, as read with the expression on the left
    value: float | None = None  # the number compared with, when it is one


def split_comparison(promql: str) -> Comparison:
    """The expression left of the first top-level comparison (or right of it, for `10 < expr`)."""
    found = _top_level_operator(promql)
    if found is None:
        return Comparison(promql.strip())
    at, operator = found
    left, right = promql[:at].strip(), promql[at + len(operator) :].strip()
    right = right.removeprefix("bool").strip() if right.startswith("bool ") else right
    number_right, number_left = _number(right), _number(left)
    if number_left is not None and number_right is None:
        return Comparison(right, _FLIPPED[operator], number_left)
    return Comparison(left, operator, number_right)


def _top_level_operator(text: str) -> tuple[int, str] | None:
    depth, quote, i = 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            for operator in _OPERATORS:
                if (
                    text.startswith(operator, i)
                    and not text.startswith("=~", i)
                    and not text.startswith("!~", i)
                ):
                    return i, operator
        i += 1
    return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
