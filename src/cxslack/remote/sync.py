"""`connectors pull` and `connectors push`: the local store and Coralogix's Slack connectors.

Pull brings every Slack connector of the account into config.toml (create or update by id),
mapping its `integrationId` to the local integration linked to it; one that matches no link is
reported, never guessed. Push applies a plan: POST new connectors, PUT changed ones whole, DELETE
only what the plan prunes. A PUT never overwrites a change made in Coralogix since the last pull
(`updateTime`, re-read right before it) unless forced; after each write the local connector takes
Coralogix's answer as its new base. All local writes happen in one store transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from cxslack.connectors import Connector, parse_connectors
from cxslack.errors import EXIT_FAILED, CxError, UsageError
from cxslack.model import utc_now
from cxslack.registry import ConfigView, Registry
from cxslack.remote import Coralogix
from cxslack.remote.plan import Change, FieldChange, Plan
from cxslack.remote.shape import compose, differences, normalised, split

PUSH_WORKERS = 4  # concurrent writes; each connector's GET and PUT stay in order
RECORD_INTERVAL = 2.0  # seconds between recording Coralogix's answers in config.toml during a push


@dataclass
class PullResult:
    dry_run: bool
    created: list[str] = field(default_factory=list)
    updated: list[tuple[str, list[FieldChange]]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    local_only: list[str] = field(default_factory=list)  # never in Coralogix
    gone: list[str] = field(default_factory=list)  # pulled or pushed before, no longer in Coralogix
    unmatched: list[dict[str, str]] = field(default_factory=list)  # integrationId linked to nothing
    skipped: list[dict[str, str]] = field(default_factory=list)  # unreadable, or a name already taken

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "created": self.created,
            "updated": [{"connector": c, "fields": [f.to_json() for f in fs]} for c, fs in self.updated],
            "unchanged": self.unchanged,
            "local_only": self.local_only,
            "gone": self.gone,
            "unmatched": self.unmatched,
            "skipped": self.skipped,
        }


def pull(registry: Registry, remote: Sequence[dict[str, Any]], *, dry_run: bool = False) -> PullResult:
    result = PullResult(dry_run)
    source = registry.store.paths.config_file
    editing = nullcontext((registry.view(), None)) if dry_run else registry.editing()
    with editing as (view, _):
        local = parse_connectors(view, source)
        names = {c.name.casefold(): c.id for c in local.values()}
        seen: set[str] = set()
        for body in sorted(remote, key=lambda b: str(b.get("id"))):
            ident = str(body.get("id", "?"))
            try:
                incoming = split(body, f"Coralogix connector {ident}")
            except UsageError as exc:
                result.skipped.append(
                    {"connector": ident, "name": str(body.get("name", "")), "reason": exc.message}
                )
                continue
            seen.add(incoming.id)
            integration = view.linked(incoming.integration_id)
            if integration is None:
                result.unmatched.append({"connector": incoming.id, "name": incoming.name,
                                         "integrationId": incoming.integration_id})  # fmt: skip
                continue
            owner = names.get(incoming.name.casefold())
            if owner is not None and owner != incoming.id:
                result.skipped.append({"connector": incoming.id, "name": incoming.name,
                                       "reason": f"the local connector {owner} already has that name"})  # fmt: skip
                continue
            existing = local.get(incoming.id)
            connector = incoming.to_connector(integration.id, existing)
            if existing is None:
                result.created.append(incoming.id)
            else:
                diffs = _local_differences(view, existing, connector)
                if diffs:
                    result.updated.append((incoming.id, diffs))
                    connector.updated_at = utc_now()
                    names.pop(existing.name.casefold(), None)
                else:
                    result.unchanged.append(incoming.id)
                    if existing.coralogix == connector.coralogix:
                        continue
            names[connector.name.casefold()] = connector.id
            if not dry_run:
                view.connectors[connector.id] = connector.to_toml()
        for connector in sorted(local.values(), key=lambda c: c.id):
            if connector.id not in seen:
                (result.gone if connector.coralogix else result.local_only).append(connector.id)
    return result


def _local_differences(view: ConfigView, before: Connector, after: Connector) -> list[FieldChange]:
    def body(c: Connector) -> dict[str, Any]:
        integration = view.integrations.get(c.integration)
        return compose(c, (integration.coralogix_id if integration else None) or c.integration)

    return [FieldChange(*d) for d in differences(normalised(body(before)), normalised(body(after)))]


# -- push -----------------------------------------------------------------------------------
@dataclass
class PushResult:
    applied: list[dict[str, str]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)  # changed in Coralogix since the pull
    failed: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "refused": self.refused, "failed": self.failed}


def stale(plan: Plan) -> list[Change]:
    """Updates whose connector changed in Coralogix since the last pull (or was never pulled)."""
    return [
        c
        for c in plan.changes
        if c.action == "update" and not _same_base(c, (c.remote or {}).get("updateTime"))
    ]


def _same_base(change: Change, update_time: Any) -> bool:
    base = change.local.coralogix.update_time if change.local and change.local.coralogix else None
    return base is not None and base == update_time


def refuse_stale(plan: Plan) -> None:
    """Before anything changes: refuse (exit 1) when a connector to update moved in Coralogix."""
    moved = stale(plan)
    if not moved:
        return
    named = ", ".join(f"{c.name} ({c.connector})" for c in moved)
    raise CxError(
        "changed_in_coralogix",
        f"{named} changed in Coralogix since the last pull; pushing would overwrite that change",
        "See what changed: cxslack connectors pull --dry-run; then pull (take Coralogix's version) "
        "or push --force (overwrite it).",
        exit_code=EXIT_FAILED,
    )


class Pusher:
    def __init__(self, registry: Registry, coralogix: Coralogix, *, force: bool = False,
                 workers: int = PUSH_WORKERS, on_done: Callable[[Change, str], None] | None = None):  # fmt: skip
        self.registry = registry
        self.nc = coralogix.nc
        self.force = force
        self.workers = workers
        self.on_done = on_done or (lambda change, outcome: None)

    def push(self, plan: Plan) -> PushResult:
        if not self.force:
            refuse_stale(plan)
        result = PushResult()
        # connector → Coralogix's copy after the write; and those already in step whose base is
        # behind (a push killed before it recorded its writes): they take Coralogix's copy too
        answers: dict[str, dict[str, Any]] = {
            ident: plan.remote[ident] for ident in plan.unchanged if ident in plan.remote
        }
        recorded = time.monotonic()
        try:
            with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
                for change, outcome in pool.map(self._apply, plan.changes):
                    entry = {"connector": change.connector, "action": change.action}
                    if isinstance(outcome, CxError):
                        result.failed.append({**entry, "error": outcome.to_dict()})
                    elif isinstance(outcome, str):
                        result.refused.append({"connector": change.connector, "reason": outcome})
                    else:
                        result.applied.append(entry)
                        if outcome is not None:
                            answers[change.connector] = outcome
                    self.on_done(change, "failed" if isinstance(outcome, CxError | str) else change.action)
                    if time.monotonic() - recorded >= RECORD_INTERVAL:  # a kill loses at most this much
                        self._record(answers)
                        answers, recorded = {}, time.monotonic()
        finally:
            self._record(answers)
        return result

    def _apply(self, change: Change) -> tuple[Change, dict[str, Any] | str | CxError | None]:
        """(change, Coralogix's answer | a refusal | the error | None for a delete)."""
        try:
            if change.action == "create":
                assert change.body is not None
                return change, self._create(change.body)
            if change.action == "update":
                assert change.body is not None
                current = self.nc.get_connector(change.connector)
                if not self.force and not _same_base(change, current.get("updateTime")):
                    return (
                        change,
                        f"changed in Coralogix since the last pull (updateTime {current.get('updateTime')})",
                    )
                return change, self.nc.replace_connector(change.body)
            try:
                self.nc.delete_connector(change.connector)
            except CxError as exc:
                if exc.code != "coralogix_not_found":  # gone already: what a delete wants
                    raise
            return change, None
        except CxError as exc:
            return change, exc

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.nc.create_connector(body)
        except CxError as exc:
            if exc.code != "coralogix_conflict":
                raise
            # It exists: our own create that answered too late, or someone else's.
            current = self.nc.get_connector(str(body["id"]))
            if normalised(current) != normalised(body):
                raise CxError(exc.code, f"connector {body['id']} was created in Coralogix meanwhile, differently",
                              "See it with: cxslack connectors pull --dry-run") from None  # fmt: skip
            return current

    def heal(self, plan: Plan) -> None:
        """Connectors already in step whose base is behind take Coralogix's copy as their base."""
        self._record({i: plan.remote[i] for i in plan.unchanged if i in plan.remote})

    def _record(self, answers: dict[str, dict[str, Any]]) -> None:
        """Each written connector takes Coralogix's answer as its new base (one transaction)."""
        if not answers:
            return
        with self.registry.editing() as (view, _):
            local = parse_connectors(view, self.registry.store.paths.config_file)
            for ident, body in answers.items():
                existing = local.get(ident)
                base = existing.coralogix.update_time if existing and existing.coralogix else None
                if existing is None or base == body.get("updateTime"):
                    continue
                try:
                    incoming = split(body, f"Coralogix connector {ident}")
                except UsageError:
                    continue
                updated = incoming.to_connector(existing.integration, existing)
                view.connectors[ident] = updated.to_toml()
