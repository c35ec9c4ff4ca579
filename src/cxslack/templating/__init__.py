"""Connector channel templates: Tera syntax, rendered in a bounded sandbox.

A Slack connector may override its `channel` per entity type with a Tera template, which Coralogix
renders against the notification payload. This module renders the same templates on jinja2's
`SandboxedEnvironment`, adjusted to Tera's semantics (`.` reads JSON keys, a missing field is an
error, Tera's filters, tests and `get_context()`), and bounds every render: CPU time, output size, the
size of every string and array a template builds, integer width and regex backtracking. A hostile
template fails with a `TemplateRenderError`; it cannot hang, exhaust memory or reach Python objects.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any, cast

from cxslack.errors import UsageError
from cxslack.templating.deadline import RenderTimeout, cpu_deadline
from cxslack.templating.engine import compile_template
from cxslack.templating.limits import (
    FIELD_HINT,
    MAX_RENDERED_CHARS,
    MAX_TEMPLATE_CHARS,
    MAX_VALUE_CHARS,
    TemplateRenderError,
    render_error,
    too_long_output,
)

__all__ = [
    "ENTITY_TYPES",
    "MAX_RENDERED_CHARS",
    "MAX_TEMPLATE_CHARS",
    "RENDER_CPU_SECONDS",
    "TemplateRenderError",
    "render_template",
    "sample_payload",
    "validate_template",
]

ENTITY_TYPES = ("alerts", "cases", "test-notifications")
RENDER_CPU_SECONDS = 1.0


def validate_template(text: str) -> None:
    """Raise UsageError (invalid_template, template_exceeds_max_length) unless `text` compiles."""
    try:
        compile_template(text)
    except TemplateRenderError as exc:
        raise UsageError(exc.code, exc.message, exc.hint) from None


def render_template(text: str, context: dict[str, Any]) -> str:
    """Render `text` against a payload and strip surrounding whitespace, as Coralogix does.

    Safe to call from several threads at once: each render gets its own context and deadline.
    """
    from jinja2.exceptions import SecurityError, UndefinedError

    template = compile_template(text)
    chunks: list[str] = []
    size = 0
    stream = cast("Generator[str, None, None]", template.generate(context))  # jinja types it Iterator
    try:
        with cpu_deadline(RENDER_CPU_SECONDS):
            for chunk in stream:
                size += len(chunk)
                if size > MAX_VALUE_CHARS:
                    raise too_long_output(size)
                chunks.append(chunk)
    except TemplateRenderError:
        raise
    except RenderTimeout:
        raise TemplateRenderError(
            "render_timeout",
            f"template did not finish within {RENDER_CPU_SECONDS:g} s of CPU time",
            "Remove large or nested loops.",
        ) from None
    except UndefinedError as exc:
        raise TemplateRenderError(
            "field_not_found", f"template uses a field the payload does not have: {exc.message}", FIELD_HINT
        ) from None
    except SecurityError as exc:
        raise render_error(f"blocked: {exc}; templates can only read payload fields") from None
    except Exception as exc:  # anything else a template triggers is the template's error, not a crash
        raise render_error(f"{type(exc).__name__}: {exc}") from exc
    finally:
        stream.close()  # after the deadline is lifted: closing runs the template's cleanup
    rendered = "".join(chunks).strip()
    if len(rendered) > MAX_RENDERED_CHARS:
        raise too_long_output(len(rendered))
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
