"""`connectors plan`: what pushing the local store would change in Coralogix, field by field.

Terraform's semantics: the local store is the desired state. A local connector Coralogix does
not have is a create (`+`), one that differs an update (`~`, with old → new per field), and a
Coralogix connector the store does not have is a delete (`-`) only with `prune`; otherwise it is
listed as Coralogix-only. Both sides are compared in `shape.normalised` form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cxslack.connectors import Connector, find_connector
from cxslack.errors import NotFoundError
from cxslack.registry import ConfigView
from cxslack.remote.links import coralogix_ids
from cxslack.remote.shape import compose, differences, normalised

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "from": self.before, "to": self.after}


@dataclass
class Change:
    connector: str
    name: str
    action: Action
    fields: list[FieldChange]
    local: Connector | None = None
    remote: dict[str, Any] | None = None  # the connector as Coralogix has it now
    body: dict[str, Any] | None = None  # what a push sends (create, update)

    def to_json(self) -> dict[str, Any]:
        return {"connector": self.connector, "name": self.name, "action": self.action,
                "fields": [f.to_json() for f in self.fields]}  # fmt: skip


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    remote_only: list[str] = field(default_factory=list)  # in Coralogix only, kept (no --prune)
    remote: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # Coralogix's, by id

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def summary(self) -> dict[str, int]:
        return {"create": self.count("create"), "update": self.count("update"), "delete": self.count("delete"),
                "unchanged": len(self.unchanged), "remote_only": len(self.remote_only)}  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {"changes": [c.to_json() for c in self.changes], "summary": self.summary,
                "remote_only": self.remote_only}  # fmt: skip


def make_plan(view: ConfigView, local: dict[str, Connector], remote: Sequence[dict[str, Any]],
              names: Sequence[str] = (), *, prune: bool = False) -> Plan:  # fmt: skip
    """Compare the local store (or the named connectors) with Coralogix's Slack connectors."""
    by_id = {b["id"]: b for b in remote if isinstance(b.get("id"), str)}
    if names:
        chosen_local: list[Connector] = []
        chosen_remote: list[str] = []
        for ref in names:
            try:
                chosen_local.append(find_connector(local, ref))
            except NotFoundError:
                ident = _remote_ref(by_id, ref)
                if ident is None:
                    raise NotFoundError(
                        "connector_not_found",
                        f"no connector named or with id {ref!r}, locally or in Coralogix",
                        "List them with: cxslack connectors list; cxslack connectors pull --dry-run",
                    ) from None
                chosen_remote.append(ident)
        chosen = list({c.id: c for c in chosen_local}.values())
        remote_only = [i for i in dict.fromkeys(chosen_remote) if i not in local]
    else:
        chosen = list(local.values())
        remote_only = [i for i in by_id if i not in local]
    ids = coralogix_ids(view, {c.integration for c in chosen})
    plan = Plan(remote=by_id)
    for connector in sorted(chosen, key=lambda c: c.id):
        desired = compose(connector, ids[connector.integration])
        current = by_id.get(connector.id)
        if current is None:
            fields = [FieldChange(k, None, v) for k, _, v in differences({}, normalised(desired))]
            plan.changes.append(
                Change(connector.id, connector.name, "create", fields, connector, None, desired)
            )
            continue
        diffs = differences(normalised(current), normalised(desired))
        if diffs:
            fields = [FieldChange(*d) for d in diffs]
            plan.changes.append(
                Change(connector.id, connector.name, "update", fields, connector, current, desired)
            )
        else:
            plan.unchanged.append(connector.id)
    for ident in sorted(remote_only):
        if not prune:
            plan.remote_only.append(ident)
            continue
        current = by_id[ident]
        fields = [FieldChange(k, v, None) for k, v, _ in differences(normalised(current), {})]
        plan.changes.append(Change(ident, str(current.get("name", ident)), "delete", fields, None, current))
    return plan


def _remote_ref(by_id: dict[str, dict[str, Any]], ref: str) -> str | None:
    if ref in by_id:
        return ref
    wanted = ref.strip().casefold()
    return next((i for i, b in by_id.items() if str(b.get("name", "")).casefold() == wanted), None)
