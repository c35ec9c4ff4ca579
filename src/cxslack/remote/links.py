"""Local integrations and the Slack integrations deployed in Coralogix, linked by `coralogix_id`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cxslack.coralogix.integrations import RemoteIntegration
from cxslack.errors import UsageError
from cxslack.model import Integration
from cxslack.registry import ConfigView, quote


@dataclass(frozen=True)
class Overview:
    """What `integrations list --remote` shows: each deployed instance with its local link, and
    local integrations linked to an instance Coralogix no longer has."""

    instances: list[tuple[RemoteIntegration, Integration | None]]
    missing: list[Integration]

    def to_json(self) -> dict[str, Any]:
        return {
            "integrations": [
                {**remote.to_json(), "linked": {"id": local.id, "name": local.name} if local else None}
                for remote, local in self.instances
            ],
            "missing": [{"id": i.id, "name": i.name, "coralogix_id": i.coralogix_id} for i in self.missing],
        }


def overview(view: ConfigView, instances: list[RemoteIntegration]) -> Overview:
    present = {r.id for r in instances}
    ordered = sorted(instances, key=lambda r: (r.last_updated, r.id), reverse=True)
    missing = [i for i in view.integrations.values() if i.coralogix_id and i.coralogix_id not in present]
    return Overview(
        [(r, view.linked(r.id)) for r in ordered], sorted(missing, key=lambda i: i.name.casefold())
    )


def coralogix_ids(view: ConfigView, integration_ids: set[str]) -> dict[str, str]:
    """local integration id → Coralogix integration id; an unlinked one is a usage error naming the fix."""
    unlinked = sorted(
        (view.integrations[i].name for i in integration_ids
         if i in view.integrations and not view.integrations[i].coralogix_id),
        key=str.casefold,
    )  # fmt: skip
    gone = sorted(i for i in integration_ids if i not in view.integrations)
    if gone:
        raise UsageError("integration_not_found", f"connectors reference integrations that do not exist: {', '.join(gone)}",
                         "Find them with: cxslack doctor --symptom local")  # fmt: skip
    if unlinked:
        first = quote(unlinked[0])
        raise UsageError(
            "integration_not_linked",
            f"{', '.join(unlinked)} {'is' if len(unlinked) == 1 else 'are'} not linked to a Coralogix integration",
            f"See the ids with: cxslack integrations list --remote; then: cxslack integrations edit {first} --coralogix-id ID",
        )
    return {i: str(view.integrations[i].coralogix_id) for i in integration_ids}
