"""Every Block Kit message cxslack sends: test notifications, Case cards and updates, Case previews.

Each builder returns what Slack needs and nothing more: `(fallback text, blocks)` for a message
(the text is what notifications and screen readers show), or the unfurl for a preview. No
interactive elements anywhere: nothing here answers a button press.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cxslack.cases.model import EVENT_TEXT, CaseEvent, case_labels, case_name, priority_label, status_label

if TYPE_CHECKING:
    from cxslack.connectors import Connector
    from cxslack.model import Integration

Message = tuple[str, list[dict[str, Any]]]


def build_test_message(connector: Connector, integration: Integration) -> Message:
    """A test notification, plus the fallback text Slack shows in notifications."""
    from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

    from cxslack.model import utc_now

    text = f"Coralogix test notification from connector {connector.name}"
    blocks = [
        HeaderBlock(text="Coralogix test notification"),
        SectionBlock(
            text=MarkdownTextObject(
                text=f"Connector *{connector.name}* delivers through integration *{integration.name}* "
                f"(v{integration.version}). Notifications routed to it will arrive here."
            )
        ),
        ContextBlock(elements=[MarkdownTextObject(text=f"Sent by cxslack at {utc_now()}")]),
    ]
    return text, [b.to_dict() for b in blocks]


def _label_text(case: dict[str, Any]) -> str:
    return (
        ", ".join(f"{k}={'/'.join(v)}" if k != "tags" else "/".join(v) for k, v in case_labels(case).items())
        or "-"
    )


def case_root_message(case: dict[str, Any], link: str | None) -> Message:
    """The Case card: title, status, priority, assignee, labels, link; plus the fallback text."""
    from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

    name, title = case_name(case), str(case.get("title") or "(untitled)")
    status, priority = status_label(case), priority_label(case)
    text = f"{name} [{priority}] {title}: {status}"
    fields = [
        MarkdownTextObject(text=f"*Status*\n{status}"),
        MarkdownTextObject(text=f"*Priority*\n{priority}"),
        MarkdownTextObject(text=f"*Assignee*\n{case.get('assignee') or 'unassigned'}"),
        MarkdownTextObject(text=f"*Labels*\n{_label_text(case)}"),
    ]
    blocks = [
        HeaderBlock(text=f"{name} · {title}"[:150]),
        SectionBlock(fields=fields),
        ContextBlock(
            elements=[MarkdownTextObject(text=f"<{link}|Open the Case in Coralogix>" if link else name)]
        ),
    ]
    return text, [b.to_dict() for b in blocks]


def case_update_message(case: dict[str, Any], event: CaseEvent) -> Message:
    """One change to a Case (status, priority, assignee), posted in its thread or as a new message."""
    from slack_sdk.models.blocks import SectionBlock

    detail = {
        CaseEvent.PRIORITY_CHANGED: f"priority is now *{priority_label(case)}*",
        CaseEvent.ASSIGNEE_CHANGED: f"assigned to *{case.get('assignee') or 'nobody'}*",
    }.get(event, f"status is now *{status_label(case)}*")
    text = f"{case_name(case)}: {EVENT_TEXT[event]} ({detail.replace('*', '')})"
    return text, [SectionBlock(text=f"*{EVENT_TEXT[event]}*: {detail}").to_dict()]


def case_preview(case: dict[str, Any], url: str) -> dict[str, Any]:
    """The unfurl of a Case URL: title (linked), status, priority and assignee."""
    from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

    title = str(case.get("title") or "(untitled)")
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=f"*<{url}|{case_name(case)} · {title}>*")),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Status*\n{status_label(case)}"),
                MarkdownTextObject(text=f"*Priority*\n{priority_label(case)}"),
                MarkdownTextObject(text=f"*Assignee*\n{case.get('assignee') or 'unassigned'}"),
            ]
        ),
        ContextBlock(elements=[MarkdownTextObject(text="Coralogix Case")]),
    ]
    return {"blocks": [b.to_dict() for b in blocks]}
