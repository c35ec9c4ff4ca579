"""Slack's documented size limits for message text and Block Kit, and fitting text to them.

Text that does not fit is cut with a marker, so a 1,000,000-character Case title becomes a
message Slack takes (never `msg_too_long` or `invalid_blocks`) and says it was shortened.
The sandbox enforces the same table (sandbox/slack_api.py), as Slack does.
"""

from __future__ import annotations

# https://api.slack.com/methods/chat.postMessage ("Slack will truncate messages containing more
# than 40,000 characters"; error msg_too_long) and the Block Kit reference
# (https://api.slack.com/reference/block-kit/blocks): header text 150; section text 3,000,
# section fields 10 items of 2,000; context 10 elements; 50 blocks a message.
MESSAGE_TEXT_MAX = 40_000
HEADER_TEXT_MAX = 150
SECTION_TEXT_MAX = 3_000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2_000
CONTEXT_ELEMENTS_MAX = 10
CONTEXT_TEXT_MAX = 3_000  # a text composition object: 3,000 at most
BLOCKS_MAX = 50

MARKER = "… (truncated)"


def clip(text: str, limit: int) -> str:
    """`text`, or its first part and MARKER, in at most `limit` characters."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(MARKER))].rstrip() + MARKER


def block_problem(block: dict[str, object]) -> str | None:
    """Why Slack would refuse this block for its size (`invalid_blocks`), or None."""
    kind = block.get("type")

    def text_of(obj: object) -> str:
        return str(obj.get("text", "")) if isinstance(obj, dict) else ""

    if kind == "header" and len(text_of(block.get("text"))) > HEADER_TEXT_MAX:
        return f"header text over {HEADER_TEXT_MAX} characters"
    if kind == "section":
        if len(text_of(block.get("text"))) > SECTION_TEXT_MAX:
            return f"section text over {SECTION_TEXT_MAX} characters"
        fields = block.get("fields") or []
        if not isinstance(fields, list) or len(fields) > SECTION_FIELDS_MAX:
            return f"more than {SECTION_FIELDS_MAX} section fields"
        if any(len(text_of(f)) > SECTION_FIELD_TEXT_MAX for f in fields):
            return f"a section field over {SECTION_FIELD_TEXT_MAX} characters"
    if kind == "context":
        elements = block.get("elements") or []
        if not isinstance(elements, list) or len(elements) > CONTEXT_ELEMENTS_MAX:
            return f"more than {CONTEXT_ELEMENTS_MAX} context elements"
        if any(len(text_of(e)) > CONTEXT_TEXT_MAX for e in elements):
            return f"a context element over {CONTEXT_TEXT_MAX} characters"
    return None
