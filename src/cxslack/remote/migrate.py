"""`connectors migrate --remote`: the product page's migration, on Coralogix's own connectors.

"In Notification Center, open a Slack connector that references the earlier-version
integration. In the connector's Integration field, select the new v0.1.0 integration.
(Optional) Run Send test notification. Save." For each connector, one at a time:

1. with `--test`, `connectors:testConfig` with the connector's channel and fallback and the *new*
   integrationId: a failure leaves the connector untouched, still delivering through the old one;
2. re-read the connector and PUT it back with only `integrationId` changed;
3. with `--test`, `connectors:test` confirms it delivers; when it does not, the connector goes
   back to its old integration.

Every step is journaled (the state's remote migration journal, fsync'd) before the next, so a run killed at
any moment can be rerun: an in-doubt switch is settled by re-reading the connector (never a
second PUT), an in-doubt confirmation is never repeated (at most one `connectors:test` per
connector; it is reported as unconfirmed). The local store follows each switch in batches:
a local copy moves to the linked integration, and its base `updateTime` moves with it when it
was in step with Coralogix before the switch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cxslack.connectors import parse_connectors
from cxslack.coralogix.integrations import RemoteIntegration
from cxslack.errors import AuthError, CxError, NotFoundError, UsageError
from cxslack.migration import FLUSH_INTERVAL, Item, Mover, Outcome, Plan, nothing_to_migrate, sorted_plan
from cxslack.model import CASES_FEATURES_SINCE, CURRENT_VERSION, Integration, utc_now
from cxslack.registry import Registry, quote
from cxslack.remote import Coralogix
from cxslack.remote.links import coralogix_ids
from cxslack.remote.shape import config_value, integration_of, with_integration
from cxslack.state import open_state
from cxslack.state.interface import MigrationJournal, State
from cxslack.state.records import MigrationEvent, MigrationEventKind

# A fresh attempt for a connector starts after one of these.
_RESETS = frozenset({"failed", "reverted"})
_UNFINISHED = frozenset({"switching", "switched", "confirming"})


@dataclass(frozen=True)
class RemoteItem:
    """A Slack connector as Coralogix listed it when the migration was planned."""

    id: str
    name: str
    channel: str
    fallback_channel: str
    integration_id: str
    body: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, body: dict[str, Any]) -> RemoteItem:
        return cls(str(body.get("id")), str(body.get("name") or body.get("id")), config_value(body, "channel") or "",
                   config_value(body, "fallbackChannel") or "", integration_of(body) or "", body)  # fmt: skip


def steps(history: Sequence[MigrationEvent], connector: str, target: str) -> list[MigrationEvent]:
    """This connector's journal events towards `target` since its last failed or reverted attempt."""
    out: list[MigrationEvent] = []
    for event in history:
        if event.connector != connector or event.to != target:
            continue
        out = [] if event.event in _RESETS else [*out, event]
    return out


def _version_ok(version: str) -> bool:
    try:
        parts = tuple(int(p) for p in version.lstrip("v").split("."))
    except ValueError:
        return False
    return parts >= CASES_FEATURES_SINCE


def plan_remote_migration(registry: Registry, coralogix: Coralogix, names: Sequence[str], to: str,
                          source_ref: str | None) -> Plan:  # fmt: skip
    """Check everything before anything changes: links, the target in Coralogix, the connectors."""
    view = registry.view()
    target = view.find(to)
    source = view.find(source_ref) if source_ref else None
    if source is not None and source.id == target.id:
        raise UsageError("same_integration", "--from and --to name the same integration")
    ids = coralogix_ids(view, {target.id} | ({source.id} if source else set()))
    target_id, source_id = ids[target.id], ids[source.id] if source else None
    instance = next((r for r in coralogix.integrations.slack_instances() if r.id == target_id), None)
    _check_target(target, target_id, instance)
    remote = [RemoteItem.of(b) for b in coralogix.nc.list_connectors()]
    history = open_state(registry.store).remote_migrations.events()

    def unfinished(item: RemoteItem) -> bool:
        """Switched by a run that was killed before it confirmed: still this migration's work."""
        done = steps(history, item.id, target.id)
        return item.integration_id == target_id and bool(done) and done[-1].event in _UNFINISHED

    if names:
        chosen = [_find(remote, n) for n in names]
        if source_id is not None:
            strangers = [c.name for c in chosen if c.integration_id not in (source_id, target_id)]
            if strangers:
                raise UsageError("not_on_source", f"{', '.join(strangers)} {'is' if len(strangers) == 1 else 'are'} "
                                 f"not on {source.name if source else ''} in Coralogix")  # fmt: skip
    elif source_id is not None:
        chosen = [c for c in remote if c.integration_id == source_id or unfinished(c)]
    else:
        raise nothing_to_migrate()
    return sorted_plan(target, source, chosen, lambda c: c.integration_id == target_id and not unfinished(c))


def _check_target(target: Integration, target_id: str, instance: RemoteIntegration | None) -> None:
    if instance is None:
        raise NotFoundError(
            "coralogix_integration_not_found",
            f"Coralogix has no Slack integration {target_id} (the one {target.name} is linked to)",
            f"See the deployed ones: cxslack integrations list --remote; then: cxslack integrations edit "
            f"{quote(target.name)} --coralogix-id ID",
        )
    if not _version_ok(instance.version):
        raise AuthError(
            "target_not_v0_1_0",
            f"{target.name} is on version {instance.version or '?'} in Coralogix; connectors can only be migrated "
            f"to a {CURRENT_VERSION} integration",
            "Add a v0.1.0 Slack integration in Coralogix (Data Flow → Integrations → Slack → Add New), link it, "
            "and migrate --to it.",
        )
    if instance.status != "ACTIVE":
        said = f": {'; '.join(instance.messages)}" if instance.messages else ""
        raise AuthError(
            "target_not_active",
            f"{target.name} is {instance.status.capitalize()} in Coralogix{said}; it must be Active before "
            "connectors move to it",
            "Open the integration in Coralogix and reinstall the app (Status shows Failing → reinstall).",
        )


def _find(remote: Sequence[RemoteItem], ref: str) -> RemoteItem:
    for item in remote:
        if item.id == ref:
            return item
    wanted = ref.strip().casefold()
    for item in remote:
        if item.name.casefold() == wanted:
            return item
    raise NotFoundError("connector_not_found", f"Coralogix has no Slack connector named or with id {ref!r}",
                        "List them with: cxslack connectors pull --dry-run")  # fmt: skip


@dataclass
class _Switch:
    """One switch (or switch back) for the local store to follow."""

    connector: str
    source: str  # Coralogix integration ids
    target: str
    before: str | None  # the connector's updateTime before and after the PUT
    after: str | None


class RemoteMover(Mover):
    def __init__(self, registry: Registry, coralogix: Coralogix):
        self.registry = registry
        self.nc = coralogix.nc
        self._pending: list[_Switch] = []
        self._unconfirmed: list[str] = []
        self._last_flush = time.monotonic()
        self._target_id = ""

    def journal_of(self, state: State) -> MigrationJournal:
        return state.remote_migrations

    def queue(self, plan: Plan, history: list[MigrationEvent]) -> list[Item]:
        self._target_id = coralogix_ids(self.registry.view(), {plan.target.id})[plan.target.id]
        # Switches of runs that never ended (killed before their last flush) the store may lack.
        unended: list[_Switch] = []
        for e in history:
            if e.event == "end":
                unended = []
            elif e.event in ("switched", "reverted") and e.connector and e.source and e.target:
                unended.append(_Switch(e.connector, e.source, e.target, e.before, e.after))
        self._pending += unended
        self.flush()
        return list(plan.to_move)

    def already(self, item: Item, plan: Plan, history: list[MigrationEvent]) -> bool:
        assert isinstance(item, RemoteItem)
        done = steps(history, item.id, plan.target.id)
        return bool(done) and done[-1].event == "done"

    def move(self, item: Item, plan: Plan, test: bool, history: list[MigrationEvent]) -> CxError | None:
        assert isinstance(item, RemoteItem)
        target = plan.target.id
        done = steps(history, item.id, target)
        names: list[str] = [e.event for e in done]
        switching = next((e for e in reversed(done) if e.event == "switching"), None)
        old = (switching.source if switching else None) or item.integration_id
        try:
            failed = next((e for e in reversed(done) if e.event == "confirm_failed"), None)
            if failed is not None:  # killed while putting it back: finish that, test nothing again
                return self._revert(item, target, old, failed.message or "")
            if test and "pretested" not in names and switching is None:
                self.progress.step(item, f"testing #{item.channel} through the new integration")
                self._log(item, target, "pretesting")
                outcome = self.nc.test_config([
                    {"fieldName": "integrationId", "value": self._target_id},
                    {"fieldName": "channel", "value": item.channel},
                    {"fieldName": "fallbackChannel", "value": item.fallback_channel},
                ])  # fmt: skip
                if not outcome.ok:
                    return outcome.error(
                        f"The test notification through the new integration to #{item.channel}"
                    )
                self._log(item, target, "pretested")
            self._switch(item, target, old, "switched" in names, switching.before if switching else None)
            if test:
                error = self._confirm(item, target, old, names)
                if error is not None:
                    return error
            self._log(item, target, "done")
            return None
        except CxError as exc:
            return exc

    def _switch(self, item: RemoteItem, target: str, old: str, journaled: bool, before: str | None) -> None:
        """PUT the connector with only integrationId changed, unless it already is on the target.
        `before`: its updateTime when a killed run started the same switch."""
        current = self.nc.get_connector(item.id)
        on = integration_of(current)
        if on == self._target_id:  # switched before a crash (or by a person): never a second PUT
            if not journaled:  # the PUT of a killed run landed; its `switching` knows the time before
                switch = _Switch(item.id, old, self._target_id, before, current.get("updateTime"))
                self._log(item, target, "switched", source=old, target=self._target_id, before=switch.before,
                          after=switch.after)  # fmt: skip
                self._pending.append(switch)
            return
        if on != old:
            raise CxError(
                "changed_in_coralogix",
                f"{item.name} now delivers through {on} in Coralogix, not {old}: it changed meanwhile and was left as it is",
                "Review it in Coralogix, then rerun the migration.",
            )
        self.progress.step(item, "switching")
        before = current.get("updateTime")
        self._log(item, target, "switching", source=old, before=before)
        answer = self.nc.replace_connector(with_integration(current, self._target_id))
        switch = _Switch(item.id, old, self._target_id, before, answer.get("updateTime"))
        self._log(item, target, "switched", source=old, target=self._target_id, before=switch.before,
                  after=switch.after)  # fmt: skip
        self._pending.append(switch)

    def _confirm(self, item: RemoteItem, target: str, old: str, names: list[str]) -> CxError | None:
        """`connectors:test` once; a failure puts the connector back on its old integration."""
        confirm_events = [n for n in names if n in ("confirming", "confirmed", "confirm_unknown")]
        if confirm_events and confirm_events[-1] in ("confirming", "confirm_unknown"):
            # Its outcome was lost in a crash: a second test could be a second notification.
            self._log(item, target, "confirm_unknown")
            self._unconfirmed.append(item.id)
            return None
        if confirm_events and confirm_events[-1] == "confirmed":
            return None
        self.progress.step(item, f"confirming #{item.channel}")
        self._log(item, target, "confirming")
        try:
            outcome = self.nc.test_connector(item.id)
        except CxError:  # no answer: it may have been sent, and it is never sent twice
            self._log(item, target, "confirm_unknown")
            self._unconfirmed.append(item.id)
            return None
        if outcome.ok:
            self._log(item, target, "confirmed")
            return None
        self._log(item, target, "confirm_failed", message=outcome.message)
        return self._revert(item, target, old, outcome.message)

    def _revert(self, item: RemoteItem, target: str, old: str, message: str) -> CxError:
        """The confirming test failed: back to the old integration (one PUT, only if needed)."""
        current = self.nc.get_connector(item.id)
        before = after = None
        if integration_of(current) == self._target_id:
            before = current.get("updateTime")
            after = self.nc.replace_connector(with_integration(current, old)).get("updateTime")
            self._pending.append(_Switch(item.id, self._target_id, old, before, after))
        self._log(item, target, "reverted", source=self._target_id, target=old, before=before, after=after)
        return CxError(
            "test_notification_failed",
            f"the confirming test notification through connector {item.id} failed in Coralogix "
            f"({message or 'no reason given'}); it was put back on its old integration",
            "Check the channel and the new integration's status: cxslack integrations list --remote",
        )

    def _log(self, item: RemoteItem, to: str, event: MigrationEventKind, **extra: Any) -> None:
        """`to` is the local target integration (as every migration event has it); `source` and
        `target` in `extra` are Coralogix integration ids."""
        self.journal.append(MigrationEvent(event, connector=item.id, to=to, **extra))

    # -- the local store follows ------------------------------------------------------------
    def maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        pending, self._pending = self._pending, []
        if not pending:
            return
        with self.registry.editing() as (view, _):
            local = parse_connectors(view, self.registry.store.paths.config_file)
            for switch in pending:
                connector = local.get(switch.connector)
                source, target = view.linked(switch.source), view.linked(switch.target)
                if connector is None or target is None:
                    continue
                changed = False
                if source is not None and connector.integration == source.id:
                    connector.integration, changed = target.id, True
                state = connector.coralogix
                if state is not None and switch.before is not None and state.update_time == switch.before:
                    state.update_time, changed = switch.after, True
                if changed:
                    connector.updated_at = utc_now()
                    view.connectors[connector.id] = connector.to_toml()

    def outcome(self, outcome: Outcome) -> None:
        outcome.unconfirmed = list(self._unconfirmed)
        outcome.source_empty = None  # the local count says nothing about Coralogix's connectors
