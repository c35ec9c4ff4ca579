"""Every bound a template render respects, and the errors that name them."""

from __future__ import annotations

from typing import Any, NoReturn

from cxslack.errors import CxError

MAX_TEMPLATE_CHARS = 10_000
MAX_RENDERED_CHARS = 1_000

# Any string a template builds (or the raw output before stripping) stays under this.
MAX_VALUE_CHARS = 100_000
# Any array a template builds, counted as the tree it expands to: `[a, a]` nested n times costs
# almost no memory but 2**n values to compare or print.
MAX_VALUE_NODES = 100_000
MAX_DEPTH = 128  # serde_json's nesting limit, so Tera never sees deeper values either
MAX_RANGE_ITEMS = 10_000
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # Tera numbers are i64/u64; overflow is an error there too
MAX_PATTERN_CHARS = 256
# Upper bound on backtracking paths a `matching` search may explore (see search_paths).
MAX_REGEX_PATHS = 1_000_000  # ≤ ~10 ms of backtracking in C
SYNTAX_HINT = (
    "Connector templates use Tera syntax: {{ expr }}, {% if %}…{% elif %}…{% else %}…{% endif %}, "
    "{% for x in xs %}…{% endfor %}."
)
FIELD_HINT = (
    "Guard optional fields with `is defined`, or list the payload's fields with "
    "{{ get_context() | json_encode(pretty=true) }}."
)


class TemplateRenderError(CxError):
    """A channel template that cannot be rendered; `code` is Coralogix's reason, lower-cased."""


def render_error(detail: str) -> TemplateRenderError:
    if len(detail) > 300:
        detail = detail[:300] + "…"
    return TemplateRenderError("render_error", f"template failed to render: {detail}")


def too_long_output(size: int) -> TemplateRenderError:
    return TemplateRenderError(
        "rendered_value_exceeds_max_length",
        f"rendered channel is {size:,}{'+' if size > MAX_VALUE_CHARS else ''} characters long; "
        f"the limit is {MAX_RENDERED_CHARS:,}",
        "A channel template should render one channel name.",
    )


def type_name(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "an array"}
    if value is None:
        return "null"
    return names.get(type(value), "an object" if isinstance(value, dict) else f"a {type(value).__name__}")


def reject(value: Any, problem: str) -> NoReturn:
    """Fail on a value a filter, test or operator cannot take; a missing field reports itself."""
    from jinja2 import Undefined  # already imported: only rendering reaches here

    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    raise render_error(f"{problem}, got {type_name(value)}")


def value_too_long() -> TemplateRenderError:
    return render_error(f"a value grew past {MAX_VALUE_CHARS:,} characters")


def bounded(text: str) -> str:
    if len(text) > MAX_VALUE_CHARS:
        raise value_too_long()
    return text
