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
# The actions block and the button element (https://api.slack.com/reference/block-kit/blocks#actions,
# …/block-elements#button, …/composition-objects#confirm): 25 elements; a button's text 75
# characters, action_id 255, value 2,000, style primary or danger; a confirm dialog's title 100,
# text 300, confirm and deny 30. block_id 255.
ACTIONS_ELEMENTS_MAX = 25
BUTTON_TEXT_MAX = 75
ACTION_ID_MAX = 255
BUTTON_VALUE_MAX = 2_000
BLOCK_ID_MAX = 255
BUTTON_STYLES = ("primary", "danger")
CONFIRM_LIMITS = {"title": 100, "text": 300, "confirm": 30, "deny": 30}

MARKER = "… (truncated)"


def clip(text: str, limit: int) -> str:
    """`text`, or its first part and MARKER, in at most `limit` characters."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(MARKER))].rstrip() + MARKER


def block_problem(block: dict[str, object]) -> str | None:
    """Why Slack would refuse this block for its size (`invalid_blocks`), or None."""
    kind = block.get("type")
    if kind == "header" and len(_text_of(block.get("text"))) > HEADER_TEXT_MAX:
        return f"header text over {HEADER_TEXT_MAX} characters"
    if kind == "section":
        if len(_text_of(block.get("text"))) > SECTION_TEXT_MAX:
            return f"section text over {SECTION_TEXT_MAX} characters"
        fields = block.get("fields") or []
        if not isinstance(fields, list) or len(fields) > SECTION_FIELDS_MAX:
            return f"more than {SECTION_FIELDS_MAX} section fields"
        if any(len(_text_of(f)) > SECTION_FIELD_TEXT_MAX for f in fields):
            return f"a section field over {SECTION_FIELD_TEXT_MAX} characters"
    if kind == "context":
        elements = block.get("elements") or []
        if not isinstance(elements, list) or len(elements) > CONTEXT_ELEMENTS_MAX:
            return f"more than {CONTEXT_ELEMENTS_MAX} context elements"
        if any(len(_text_of(e)) > CONTEXT_TEXT_MAX for e in elements):
            return f"a context element over {CONTEXT_TEXT_MAX} characters"
    if len(str(block.get("block_id", ""))) > BLOCK_ID_MAX:
        return f"a block_id over {BLOCK_ID_MAX} characters"
    if kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 0 < len(elements) <= ACTIONS_ELEMENTS_MAX:
            return f"an actions block needs 1 to {ACTIONS_ELEMENTS_MAX} elements"
        ids = [e.get("action_id") for e in elements if isinstance(e, dict)]
        if len(ids) != len(set(ids)):
            return "action_id repeated within an actions block"
        for element in elements:
            problem = (
                _button_problem(element) if isinstance(element, dict) else "an element that is not an object"
            )
            if problem:
                return problem
    return None


def _button_problem(button: dict[str, object]) -> str | None:
    if button.get("type") != "button":
        return None
    text = button.get("text")
    if (
        not isinstance(text, dict)
        or text.get("type") != "plain_text"
        or not 0 < len(_text_of(text)) <= BUTTON_TEXT_MAX
    ):
        return f"a button's text must be plain_text of 1 to {BUTTON_TEXT_MAX} characters"
    if len(str(button.get("action_id", ""))) > ACTION_ID_MAX:
        return f"an action_id over {ACTION_ID_MAX} characters"
    if len(str(button.get("value", ""))) > BUTTON_VALUE_MAX:
        return f"a button value over {BUTTON_VALUE_MAX} characters"
    if "style" in button and button["style"] not in BUTTON_STYLES:
        return f"a button style other than {' or '.join(BUTTON_STYLES)}"
    confirm = button.get("confirm")
    if confirm is not None:
        if not isinstance(confirm, dict):
            return "a confirm that is not a confirmation dialog object"
        for part, limit in CONFIRM_LIMITS.items():
            if not 0 < len(_text_of(confirm.get(part))) <= limit:
                return f"a confirm dialog's {part} must have 1 to {limit} characters"
    return None


def _text_of(obj: object) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""
