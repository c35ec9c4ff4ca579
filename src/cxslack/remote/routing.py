"""Global routers and the rules in them that target connectors.

A rule's targets (`rules[].targets[]`), a router's fallback (`fallback[]`) and its fallback
targets (`fallbackTargets[].target`) each point at one connector by `connectorId`. Removing a
connector silently stops every one of them, so cxslack names them before it removes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cxslack.errors import CxError
from cxslack.store import Store


@dataclass(frozen=True)
class RuleTarget:
    router_id: str
    router: str  # the router's name
    rule: str  # the rule's name, or "fallback"
    connector_id: str

    def describe(self) -> str:
        return f"router {self.router!r} {'fallback' if self.rule == 'fallback' else f'rule {self.rule!r}'}"

    def to_json(self) -> dict[str, str]:
        return {
            "router": self.router_id,
            "router_name": self.router,
            "rule": self.rule,
            "connector": self.connector_id,
        }


def targets(routers: Iterable[dict[str, Any]]) -> Iterator[RuleTarget]:
    for router in routers:
        ident, name = str(router.get("id", "")), str(router.get("name") or router.get("id", "?"))
        for n, rule in enumerate(_dicts(router.get("rules")), 1):
            label = str(rule.get("name") or f"#{n}")
            for target in _dicts(rule.get("targets")):
                if isinstance(target.get("connectorId"), str):
                    yield RuleTarget(ident, name, label, target["connectorId"])
        fallbacks = [*_dicts(router.get("fallback")),
                     *(t.get("target") for t in _dicts(router.get("fallbackTargets")))]  # fmt: skip
        for target in _dicts(fallbacks):
            if isinstance(target.get("connectorId"), str):
                yield RuleTarget(ident, name, "fallback", target["connectorId"])


def targeting(routers: Iterable[dict[str, Any]], connector_ids: set[str]) -> list[RuleTarget]:
    """Every rule (and fallback) that targets one of these connectors, once each."""
    return list(dict.fromkeys(t for t in targets(routers) if t.connector_id in connector_ids))


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def rules_targeting(store: Store, connector_ids: set[str], integration_id: str | None = None
                    ) -> tuple[list[RuleTarget], str | None]:  # fmt: skip
    """The rules in Coralogix that target these connectors, or any connector delivering through
    the Coralogix integration `integration_id`; (rules, why they could not be read)."""
    from cxslack.remote import Coralogix
    from cxslack.remote.shape import integration_of

    with Coralogix.connect(store, advisory=True) as coralogix:
        if not coralogix.configured:
            return [], "Coralogix is not configured (cxslack coralogix configure)"
        try:
            ids = set(connector_ids)
            if integration_id:
                ids |= {
                    str(b.get("id"))
                    for b in coralogix.nc.list_connectors()
                    if integration_of(b) == integration_id
                }
            return (targeting(coralogix.nc.list_routers(), ids) if ids else []), None
        except CxError as exc:
            return [], exc.message
