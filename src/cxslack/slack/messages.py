"""Every Block Kit message cxslack sends: test notifications, Case cards and updates, Case previews.

Each builder returns what Slack needs and nothing more: `(fallback text, blocks)` for a message
(the text is what notifications and screen readers show), or the unfurl for a preview. The only
interactive elements are the buttons on a Case's root message (cases/actions.py says which, and
answers their clicks); previews and updates carry none.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cxslack.cases.model import EVENT_TEXT, CaseEvent, case_name, label_text, priority_label, status_label
from cxslack.cases.people import Assignee
from cxslack.slack.limits import (
    CONFIRM_LIMITS,
    CONTEXT_TEXT_MAX,
    HEADER_TEXT_MAX,
    MESSAGE_TEXT_MAX,
    SECTION_FIELD_TEXT_MAX,
    SECTION_TEXT_MAX,
    clip,
)

if TYPE_CHECKING:
    from cxslack.connectors import Connector
    from cxslack.model import Integration

Message = tuple[str, list[dict[str, Any]]]
_MENTION = re.compile(r"<@[UW][A-Z0-9]+>")


def build_test_message(connector: Connector, integration: Integration) -> Message:
    """A test notification, plus the fallback text Slack shows in notifications."""
    from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

    from cxslack.model import utc_now

    text = clip(f"Coralogix test notification from connector {connector.name}", MESSAGE_TEXT_MAX)
    about = (
        f"Connector *{connector.name}* delivers through integration *{integration.name}* "
        f"(v{integration.version}). Notifications routed to it will arrive here."
    )
    blocks = [
        HeaderBlock(text="Coralogix test notification"),
        SectionBlock(text=MarkdownTextObject(text=clip(about, SECTION_TEXT_MAX))),
        ContextBlock(elements=[MarkdownTextObject(text=f"Sent by cxslack at {utc_now()}")]),
    ]
    return text, [b.to_dict() for b in blocks]


def escape(text: str) -> str:
    """Text from Coralogix inside mrkdwn: Slack's three control characters escaped, so a title can
    neither @-mention a channel (`<!channel>`) nor forge a link (api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _field(label: str, value: str) -> Any:
    from slack_sdk.models.blocks import MarkdownTextObject

    return MarkdownTextObject(text=clip(f"*{label}*\n{value}", SECTION_FIELD_TEXT_MAX))


def _person(shown: str) -> str:
    """An assignee as mrkdwn: a Slack mention as it is; a name from Coralogix (team members' names,
    a webhook's assignee) escaped like every other Coralogix text."""
    return shown if _MENTION.fullmatch(shown) else escape(shown)


def _assignee_fields(assignee: Assignee) -> list[Any]:
    """The Assignee field: a person, "Unassigned", or nothing when the person is not known."""
    if not assignee.assigned:
        return [_field("Assignee", "Unassigned")]
    return [_field("Assignee", _person(assignee.shown))] if assignee.shown else []


def case_root_message(
    case: dict[str, Any],
    link: str | None,
    assignee: Assignee,
    *,
    buttons: bool = False,
    note: str | None = None,
) -> Message:
    """The Case card: title, status, priority, assignee, labels, link; with `buttons`, the actions
    its status offers; with `note`, who changed it (a card posted as an update); plus the fallback text."""
    from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

    name, title = case_name(case), str(case.get("title") or "(untitled)")
    status, priority = status_label(case), priority_label(case)
    text = clip(escape(f"{name} [{priority}] {title}: {status}"), MESSAGE_TEXT_MAX)
    fields = [
        _field("Status", status),
        _field("Priority", priority),
        *_assignee_fields(assignee),
        _field("Labels", escape(label_text(case))),
    ]
    blocks = [
        HeaderBlock(text=clip(f"{name} · {title}", HEADER_TEXT_MAX)),
        SectionBlock(fields=fields),
        ContextBlock(
            elements=[MarkdownTextObject(text=f"<{link}|Open the Case in Coralogix>" if link else name)]
        ),
    ]
    if note:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(escape(note), CONTEXT_TEXT_MAX))]))
    actions = case_buttons(case) if buttons else None
    return text, [b.to_dict() for b in blocks] + ([actions] if actions else [])


def case_buttons(case: dict[str, Any]) -> dict[str, Any] | None:
    """The actions block of what the Case's status offers (None when nothing): exactly
    `Acknowledge`, `Assign to me`, `Resolve` (behind a confirm dialog) and `Close`."""
    from slack_sdk.models.blocks import ActionsBlock, ButtonElement, ConfirmObject

    from cxslack.cases.actions import BLOCK_ID, CaseAction, button_value, offered

    name = case_name(case)
    buttons = []
    for action in offered(case):
        confirm = None
        if action is CaseAction.RESOLVE:
            confirm = ConfirmObject(
                title=clip(f"Resolve {name}?", CONFIRM_LIMITS["title"]),
                text=clip(
                    f"{escape(name)} is resolved in Coralogix, with a reason saying you resolved it from Slack.",
                    CONFIRM_LIMITS["text"],
                ),
                confirm="Resolve",
                deny="Cancel",
            )
        style = "primary" if action is CaseAction.ACKNOWLEDGE else None
        buttons.append(ButtonElement(text=action.text, action_id=action.action_id, value=button_value(case),
                                     style=style, confirm=confirm))  # fmt: skip
    return ActionsBlock(block_id=BLOCK_ID, elements=buttons).to_dict() if buttons else None


def _assignment(assignee: Assignee) -> str:
    if not assignee.assigned:
        return "unassigned"
    return f"assigned to *{_person(assignee.shown)}*" if assignee.shown else "assigned"


def case_update_message(
    case: dict[str, Any], event: CaseEvent, assignee: Assignee, note: str | None = None
) -> Message:
    """One change to a Case (status, priority, assignee), posted in its thread or as a new message;
    `note` says who made it (a Case button clicked in Slack)."""
    from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

    detail = {
        CaseEvent.PRIORITY_CHANGED: f"priority is now *{priority_label(case)}*",
        CaseEvent.ASSIGNEE_CHANGED: _assignment(assignee),
    }.get(event, f"status is now *{status_label(case)}*")
    said = f" — {note}" if note else ""
    text = clip(
        f"{escape(case_name(case))}: {EVENT_TEXT[event]} ({detail.replace('*', '')}){escape(said)}",
        MESSAGE_TEXT_MAX,
    )
    blocks = [SectionBlock(text=clip(f"*{EVENT_TEXT[event]}*: {detail}", SECTION_TEXT_MAX)).to_dict()]
    if note:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=clip(escape(note), CONTEXT_TEXT_MAX))]).to_dict()
        )
    return text, blocks


def case_preview(case: dict[str, Any], url: str, assignee: Assignee) -> dict[str, Any]:
    """The unfurl of a Case URL: title (linked), status, priority and assignee."""
    from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

    name, title = escape(case_name(case)), escape(str(case.get("title") or "(untitled)"))
    room = SECTION_TEXT_MAX - len(f"*<{url}|{name} · >*")  # the title is cut, never the link markup
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=f"*<{url}|{name} · {clip(title, max(room, 20))}>*")),
        SectionBlock(
            fields=[
                _field("Status", status_label(case)),
                _field("Priority", priority_label(case)),
                *_assignee_fields(assignee),
            ]
        ),
        ContextBlock(elements=[MarkdownTextObject(text="Coralogix Case")]),
    ]
    return {"blocks": [b.to_dict() for b in blocks]}
