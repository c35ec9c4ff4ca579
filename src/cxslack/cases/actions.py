"""Acting on a Case from Slack: the buttons on a Case's root message, and what a click does.

Which buttons a Case's root offers follows its status: Acknowledge (Active), Assign to me
(Active or Acknowledged), Resolve (Active or Acknowledged; with a confirm dialog), Close
(Resolved). Only v0.1.0 integrations show them, and a connector or a Case can turn them off.

One click (a `block_actions` envelope from `cxslack listen`'s inbox) is handled like this:

1. the message must be a Case root cxslack posted (the thread map), of a v0.1.0 integration, with
   buttons on for its connector and Case;
2. the person is found (cases/identity.py): a member of the installed workspace whose email is
   an active member of the Coralogix team;
3. once per click key (button, message, person, and the Case revision the button showed) in the
   state's action ledger: Slack's retries and double clicks act once;
4. the Case is read: gone, or already in that state, is answered and nothing is done;
5. the action is taken in Coralogix as that person where the API takes one (acknowledge's
   `actor`, assign's `assignee`); resolve (with a reason) and close take none, so a Case comment
   records "resolved from Slack by <name> <email>";
6. the root is updated to the new status and the buttons that now apply, and a note in the
   Case's reply mode says who did what.

Whatever stops a click (not mapped, another workspace, Coralogix's 401/403 naming the
permission, the Case gone or already there) is told to that person alone, through the click's
`response_url` (or `chat.postEphemeral`), and nothing else changes. A Slack or Coralogix outage
is retried by the listener for CLICK_PATIENCE seconds; after that the person is told.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cxslack.cases.model import CaseEvent, case_key, case_name, status_label, status_of
from cxslack.errors import CxError

if TYPE_CHECKING:
    from cxslack.cases.identity import Actor
    from cxslack.connectors import Connector
    from cxslack.model import Integration
    from cxslack.registry import Registry
    from cxslack.state.records import CaseSettings, CaseThread

ACTION_ID_PREFIX = "cxslack_case_"
BLOCK_ID = "cxslack_case_actions"
CLICK_PATIENCE = 120.0  # seconds an outage may delay a click before the person is told
NOTHING_CHANGED = "Nothing was changed."


class CaseAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ASSIGN = "assign"
    RESOLVE = "resolve"
    CLOSE = "close"

    @property
    def action_id(self) -> str:
        return ACTION_ID_PREFIX + self.value

    @property
    def text(self) -> str:
        """The button's visible text."""
        return _TEXT[self]


_TEXT = {
    CaseAction.ACKNOWLEDGE: "Acknowledge",
    CaseAction.ASSIGN: "Assign to me",
    CaseAction.RESOLVE: "Resolve",
    CaseAction.CLOSE: "Close",
}
# The buttons each status offers (CaseStatus without its prefix); other statuses offer none.
OFFERED: dict[str, tuple[CaseAction, ...]] = {
    "ACTIVE": (CaseAction.ACKNOWLEDGE, CaseAction.ASSIGN, CaseAction.RESOLVE),
    "ACKNOWLEDGED": (CaseAction.ASSIGN, CaseAction.RESOLVE),
    "RESOLVED": (CaseAction.CLOSE,),
}
# The status an action leads to, and the statuses in which it has nothing left to do.
TARGET = {CaseAction.ACKNOWLEDGE: "ACKNOWLEDGED", CaseAction.RESOLVE: "RESOLVED", CaseAction.CLOSE: "CLOSED"}
DONE_IN = {
    CaseAction.ACKNOWLEDGE: {"ACKNOWLEDGED", "RESOLVED", "CLOSED"},
    CaseAction.RESOLVE: {"RESOLVED", "CLOSED"},
    CaseAction.CLOSE: {"CLOSED"},
    CaseAction.ASSIGN: {"CLOSED"},
}
EVENT = {
    CaseAction.ACKNOWLEDGE: CaseEvent.ACKNOWLEDGED,
    CaseAction.ASSIGN: CaseEvent.ASSIGNEE_CHANGED,
    CaseAction.RESOLVE: CaseEvent.RESOLVED,
    CaseAction.CLOSE: CaseEvent.CLOSED,
}
PAST = {
    CaseAction.ACKNOWLEDGE: "acknowledged",
    CaseAction.ASSIGN: "assigned",
    CaseAction.RESOLVE: "resolved",
    CaseAction.CLOSE: "closed",
}


def offered(case: dict[str, Any]) -> tuple[CaseAction, ...]:
    return OFFERED.get(status_of(case), ())


def action_of(action_id: Any) -> CaseAction | None:
    if not isinstance(action_id, str) or not action_id.startswith(ACTION_ID_PREFIX):
        return None
    try:
        return CaseAction(action_id.removeprefix(ACTION_ID_PREFIX))
    except ValueError:
        return None


def button_value(case: dict[str, Any]) -> str:
    """What a button carries: the Case and the revision the message shows (a click on a later
    rendering of the same message is a new click)."""
    return f"{case_key(case)}@{case.get('updateTime') or status_of(case)}"


def buttons_off(integration: Integration, connector: Connector, settings: CaseSettings) -> str | None:
    """Why a Case's messages through this connector carry no buttons, or None when they do."""
    if not integration.supports_cases_features:
        return f"integration {integration.name} is v{integration.version}: Case buttons need v0.1.0"
    if settings.case_actions is False:
        return "Case buttons are turned off for this Case"
    if settings.case_actions is None and not connector.case_actions:
        return f"Case buttons are turned off for connector {connector.name}"
    return None


def note_for(action: CaseAction, actor: Actor) -> str:
    """Who did what, for the note in Slack."""
    if action is CaseAction.ASSIGN:
        return f"Assigned to {actor.shown} from Slack (Assign to me)"
    return f"{PAST[action].capitalize()} from Slack by {actor.shown}"


def record_for(action: CaseAction, actor: Actor) -> str:
    """Who did what, for Coralogix where the API takes no actor: the resolution reason and a comment."""
    return f"{PAST[action]} from Slack by {actor.signature}"


@dataclass(frozen=True)
class ClickResult:
    outcome: str  # shown | refused | duplicate | ignored | unconfirmed
    detail: str = ""


class Answer:
    """Tells the person who clicked, and nobody else: the click's response_url (an ephemeral
    message, the original left as it is), else chat.postEphemeral."""

    def __init__(self, payload: dict[str, Any], access: Any = None):
        self.payload = payload
        self.access = access

    def say(self, text: str) -> None:
        import httpx

        url = str(self.payload.get("response_url") or "")
        if _acceptable_response_url(url):
            try:
                answered = httpx.post(
                    url,
                    json={"response_type": "ephemeral", "replace_original": False, "text": text},
                    timeout=5,
                )
                if answered.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        self._post_ephemeral(text)

    def _post_ephemeral(self, text: str) -> None:
        from cxslack.slack.client import SlackError

        container = _dict(self.payload.get("container"))
        channel = _dict(self.payload.get("channel")).get("id") or container.get("channel_id")
        user = _dict(self.payload.get("user")).get("id")
        if self.access is None or not channel or not user:
            return
        # if this fails too nothing else can reach them; the listener's log line still says what happened
        with suppress(SlackError):
            self.access.call("chat.postEphemeral", channel=channel, user=user, text=text)


def _acceptable_response_url(url: str) -> bool:
    """Slack's response URLs are https; plain http only to a loopback host (the sandbox)."""
    from cxslack.hosts import is_loopback

    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class ClickHandler:
    """Handles `block_actions` envelopes for every integration in the store."""

    def __init__(self, registry: Registry, coralogix: Callable[[], Any], access_for: Callable[[Integration], Any],
                 patience: float = CLICK_PATIENCE):  # fmt: skip
        from cxslack.cases.identity import Identities
        from cxslack.state import open_state

        self.registry = registry
        self.coralogix = coralogix
        self.access_for = access_for
        self.patience = patience
        self.state = open_state(registry.store)
        self._identities: Identities | None = None
        self._deliverers: dict[str, Any] = {}
        self._directories: dict[str, tuple[float, Any]] = {}
        self._links: dict[str, str | None] = {}

    def identities(self) -> Any:
        from cxslack.cases.identity import Identities

        if self._identities is None:
            client = self.coralogix()
            self._identities = Identities(client, client.settings.team_id)
        return self._identities

    def __call__(self, envelope: dict[str, Any]) -> ClickResult:
        from cxslack.events import RETRYABLE_CODES

        payload = _dict(envelope.get("payload"))
        actions = payload.get("actions")
        first = _dict(actions[0]) if isinstance(actions, list) and actions else {}
        action = action_of(first.get("action_id"))
        if action is None:
            return ClickResult("ignored", "not a Case button")
        answer = Answer(payload)
        try:
            return self._click(payload, action, str(first.get("value") or ""), answer)
        except CxError as exc:
            if exc.code not in RETRYABLE_CODES:
                raise
            waited = time.time() - float(envelope.get("received_at") or time.time())
            if waited < self.patience:
                raise  # the listener tries again after a pause
            answer.say(f"Coralogix or Slack did not answer for {int(waited)} s, so your {action.text} "
                       "click may not have been applied. Check the Case, and try again.")  # fmt: skip
            return ClickResult("unconfirmed", exc.code)

    # -- one click ---------------------------------------------------------------------------------
    def _click(self, payload: dict[str, Any], action: CaseAction, value: str, answer: Answer) -> ClickResult:
        from cxslack.cases.identity import Refusal
        from cxslack.connectors import ConnectorStore

        container = _dict(payload.get("container"))
        channel = str(container.get("channel_id") or _dict(payload.get("channel")).get("id") or "")
        message_ts = str(container.get("message_ts") or _dict(payload.get("message")).get("ts") or "")
        user = str(_dict(payload.get("user")).get("id") or "")
        thread = self.state.threads.at(channel, message_ts)
        if thread is None:
            return self._refuse(
                answer, "untracked", "This message is not a Case notification cxslack posted."
            )
        integration = self.registry.view().integrations.get(thread.integration)
        connector = ConnectorStore(self.registry).load()[1].get(thread.connector)
        if integration is None or connector is None:
            return self._refuse(answer, "gone", "The integration or connector that posted this Case is gone.")
        access = self.access_for(integration)
        answer.access = access
        settings = self.state.settings.get(thread.case_name, thread.case_id)
        off = buttons_off(integration, connector, settings)
        if off:
            return self._refuse(answer, "off", f"{off}.")
        if value and value.partition("@")[0] not in (thread.case_id, thread.case_name):
            return self._refuse(
                answer, "mismatch", "This button does not belong to the Case of this message."
            )
        actor = self.identities().who(integration, access, payload)
        if isinstance(actor, Refusal):
            return self._refuse(answer, actor.code, actor.message)
        key = "|".join((action.action_id, channel, message_ts, user, value))
        with self.state.actions.claim(key) as claim:
            return self._once(claim, thread, connector, integration, action, actor, answer)

    def _once(self, claim: Any, thread: CaseThread, connector: Connector, integration: Integration,
              action: CaseAction, actor: Actor, answer: Answer) -> ClickResult:  # fmt: skip
        from cxslack.errors import NotFoundError
        from cxslack.state.records import TakenAction

        taken = claim.taken
        if taken is not None and taken.outcome == "shown":
            return ClickResult("duplicate", f"already {PAST[action]}")
        client = self.coralogix()
        record = TakenAction(thread.case_id, action.value, actor.slack_user, "acting", actor.coralogix_user)
        try:
            case = client.get_case(thread.case_id)
        except NotFoundError:
            claim.forget()
            return self._refuse(
                answer, "case_gone", f"{thread.case_name or thread.case_id} no longer exists in Coralogix."
            )
        applied = taken is not None and _reached(case, action, actor)  # before a crash: only show it
        if not applied:
            problem = _already(case, action, actor)
            if problem:
                claim.forget()
                return self._refuse(answer, "already", problem)
            claim.record(record)
            try:
                case = self._act(client, case, action, actor)
            except CxError as exc:
                if exc.code in {"coralogix_unavailable", "coralogix_unreachable"}:
                    raise  # in doubt: the next attempt reads the Case to settle it
                claim.forget()
                return self._refuse(answer, exc.code, exc.message)
        # A crash from here on leaves `acting`: the next delivery reads the Case, sees it was
        # applied, and only shows it.
        self._show(thread, connector, integration, case, action, actor)
        claim.record(replace(record, outcome="shown"))
        return ClickResult("shown", f"{PAST[action]} {case_name(case)} as {actor.email}")

    def _act(self, client: Any, case: dict[str, Any], action: CaseAction, actor: Actor) -> dict[str, Any]:
        """The Coralogix call; where it takes no actor, a comment says who it was."""
        ref = case_key(case)
        if action is CaseAction.ACKNOWLEDGE:
            return dict(client.acknowledge_case(ref, actor.coralogix_user))
        if action is CaseAction.ASSIGN:
            return dict(client.assign_case(ref, actor.coralogix_user))
        from cxslack.coralogix.client import RESOLVE_REASON_MAX
        from cxslack.slack.limits import clip

        said = record_for(action, actor)
        if action is CaseAction.RESOLVE:
            done = client.resolve_case(ref, clip(said[:1].upper() + said[1:], RESOLVE_REASON_MAX))
        else:
            done = client.close_case(ref)
        # should the comment fail, the action stands; the reason (or the thread note) names them
        with suppress(CxError):
            client.add_comment(ref, said)
        return dict(done)

    def _show(self, thread: CaseThread, connector: Connector, integration: Integration, case: dict[str, Any],
              action: CaseAction, actor: Actor) -> None:  # fmt: skip
        """The root shows the new status and the buttons that now apply; a note says who did it."""
        from cxslack.cases.notify import CaseNotifier
        from cxslack.cases.previews import refresh_previews
        from cxslack.delivery import Deliverer

        deliverer = self._deliverers.get(integration.id)
        if deliverer is None:
            deliverer = self._deliverers[integration.id] = Deliverer(self.registry, integration)
        CaseNotifier(self.registry, connector, deliverer, self._people(integration.id, deliverer)).notify(
            case, EVENT[action], self._link(case), note=note_for(action, actor)
        )
        refresh_previews(self.registry, case, self.coralogix())

    def _people(self, integration: str, deliverer: Any) -> Any:
        """Who assignees are (the root names them), read afresh every CACHE_SECONDS: the team changes."""
        from cxslack.cases.identity import CACHE_SECONDS
        from cxslack.cases.people import People

        made, people = self._directories.get(integration, (0.0, None))
        if people is None or time.monotonic() - made > CACHE_SECONDS:
            people = People(self.coralogix(), slack=deliverer.access)
            self._directories[integration] = (time.monotonic(), people)
        return people

    def _link(self, case: dict[str, Any]) -> str | None:
        key = case_key(case)
        if key not in self._links:
            try:
                link = self.coralogix().case_deep_link(key)
            except CxError:
                return None  # not remembered: the next click tries again
            if link is None:
                return None  # Coralogix gave none (CaseDeepLinks.detail is optional)
            self._links[key] = link
        return self._links[key]

    @staticmethod
    def _refuse(answer: Answer, code: str, message: str) -> ClickResult:
        answer.say(f"{message} {NOTHING_CHANGED}")
        return ClickResult("refused", code)


def _already(case: dict[str, Any], action: CaseAction, actor: Actor) -> str | None:
    """Why the action has nothing to do on the Case as it is now, or None."""
    status = status_of(case)
    name = case_name(case)
    if action is CaseAction.ASSIGN and status not in DONE_IN[action]:
        assignee = case.get("assignee")
        if isinstance(assignee, dict) and assignee.get("userId") == actor.coralogix_user:
            return f"{name} is already assigned to you."
        return None
    if status in DONE_IN[action]:
        return f"{name} is already {status_label(case)}."
    return None


def _reached(case: dict[str, Any], action: CaseAction, actor: Actor) -> bool:
    """A call whose answer was lost: does the Case show it was applied?"""
    if action is CaseAction.ASSIGN:
        assignee = case.get("assignee")
        return isinstance(assignee, dict) and assignee.get("userId") == actor.coralogix_user
    return status_of(case) in DONE_IN[action]
