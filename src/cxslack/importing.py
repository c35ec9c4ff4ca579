"""`connectors import`: a whole file checked first, then applied in one store transaction.

Both export formats come back in: Notification Center's `{"connector": {…, "connectorConfig": …}}`
(`export --format coralogix`, and what Coralogix's API gives) and cxslack's own
`{"connector": {…, "channel": …}}` (`export --format cxslack`), one document or an array.

Every problem in the file is found before anything changes (a bad field, an unknown integration,
an id or a name twice in the file, a name another connector already has), and reported
together; then every connector is written in one transaction, so an import is all or nothing and
costs one config write however many connectors it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cxslack.connectors import Connector, ConnectorStore, RemoteState, parse_connectors
from cxslack.errors import EXIT_NOT_FOUND, EXIT_USAGE, CxError, UsageError
from cxslack.model import utc_now
from cxslack.registry import ConfigView

MAX_LISTED = 10  # problems named in the error; the rest are counted


@dataclass
class ImportResult:
    actions: list[tuple[str, str]] = field(default_factory=list)  # (connector id, created|updated|unchanged)

    def count(self, action: str) -> int:
        return sum(1 for _, done in self.actions if done == action)

    def to_json(self) -> dict[str, Any]:
        return {
            "imported": [{"connector": ident, "action": action} for ident, action in self.actions],
            "summary": {
                "total": len(self.actions),
                **{action: self.count(action) for action in ("created", "updated", "unchanged")},
            },
        }


class _Problems:
    def __init__(self) -> None:
        self.errors: list[tuple[str, CxError]] = []

    def add(self, where: str, error: CxError) -> None:
        self.errors.append((where, error))

    def raise_any(self, source: str) -> None:
        if not self.errors:
            return
        lines = [f"{where}: {_without_where(where, err.message)}" for where, err in self.errors[:MAX_LISTED]]
        more = len(self.errors) - MAX_LISTED
        if more > 0:
            lines.append(f"… and {more} more")
        codes = {err.code for _, err in self.errors}
        exits = {err.exit_code for _, err in self.errors}
        first = self.errors[0][1]
        raise CxError(
            codes.pop() if len(codes) == 1 else "invalid_import",
            f"{source}: {len(self.errors)} problem(s), so nothing was imported:\n  " + "\n  ".join(lines),
            first.hint
            if len(self.errors) == 1
            else "Fix the file and import it again; it is applied all or nothing.",
            exit_code=EXIT_NOT_FOUND if exits == {EXIT_NOT_FOUND} else EXIT_USAGE,
        )


def _without_where(where: str, message: str) -> str:
    return message.removeprefix(f"{where}: ")


def import_connectors(store: ConnectorStore, doc: Any, source: str,
                      checked: Callable[[], None] = lambda: None) -> ImportResult:  # fmt: skip
    """Check every connector of `doc` (calling `checked` after each), then write them all in one
    transaction. Raises one CxError naming every problem; changes nothing then."""
    view, existing = store.load()
    incoming = _read(doc, source, view, existing, checked)
    with store.registry.editing() as (view, _):
        current = parse_connectors(view, store.source)  # as it is now, under the lock
        problems = _Problems()
        _check_names(incoming, current, problems)
        problems.raise_any(source)
        result = ImportResult()
        now = utc_now()
        for _, connector in incoming:
            before = current.get(connector.id)
            if before is not None:
                connector.created_at = before.created_at
                connector.updated_at = before.updated_at
                if connector.to_toml() == before.to_toml():
                    result.actions.append((connector.id, "unchanged"))
                    continue
            connector.updated_at = now
            if before is None and not connector.created_at:
                connector.created_at = now
            view.connectors[connector.id] = connector.to_toml()
            result.actions.append((connector.id, "created" if before is None else "updated"))
    return result


def _read(doc: Any, source: str, view: ConfigView, existing: dict[str, Connector],
          checked: Callable[[], None]) -> list[tuple[str, Connector]]:  # fmt: skip
    items = doc if isinstance(doc, list) else [doc]
    problems = _Problems()
    out: list[tuple[str, Connector]] = []
    first_at: dict[str, str] = {}
    for n, item in enumerate(items):
        where = f"{source}[{n}]" if isinstance(doc, list) else source
        try:
            connector = _connector(item, where, view, existing)
            connector.validate()
        except CxError as exc:
            problems.add(where, exc)
        else:
            if connector.id in first_at:
                problems.add(where, UsageError("duplicate_in_file", f"id {connector.id!r} is also at {first_at[connector.id]}",
                                               "Each connector once per file."))  # fmt: skip
            else:
                first_at[connector.id] = where
                out.append((where, connector))
        checked()
    _check_names(out, existing, problems)
    problems.raise_any(source)
    return out


def _connector(item: Any, where: str, view: ConfigView, existing: dict[str, Connector]) -> Connector:
    """One `{"connector": {…}}` in either export format, its integration resolved to a local id."""
    body = item.get("connector") if isinstance(item, dict) else None
    if not isinstance(body, dict):
        raise UsageError("invalid_import", f'{where}: not a {{"connector": {{...}}}} object',
                         "Expected what `cxslack connectors export` prints (either --format).")  # fmt: skip
    if "connectorConfig" in body or "type" in body:  # Notification Center's shape
        from cxslack.remote.shape import split

        incoming = split(body, where, code="invalid_import", id_required=False)
        # integrationId: a linked Coralogix integration, else a local integration (id or name)
        linked = view.linked(incoming.integration_id)
        integration = linked or view.find(incoming.integration_id)
        before = existing.get(incoming.id)
        connector = incoming.to_connector(integration.id, before)
        if before and before.coralogix and not incoming.update_time:  # the last pull's base stays
            connector.coralogix = RemoteState(before.coralogix.update_time, incoming.residue)
        return connector
    connector = Connector.from_json(body, where)
    connector.integration = view.find(connector.integration).id
    return connector


def _check_names(
    incoming: list[tuple[str, Connector]], others: dict[str, Connector], problems: _Problems
) -> None:
    """Names stay unique (case-insensitively) once the file is applied: within the file, and
    against every connector the file does not replace."""
    replaced = {c.id for _, c in incoming}
    taken = {c.name.casefold(): c for c in others.values() if c.id not in replaced}
    seen: dict[str, str] = {}
    for where, connector in incoming:
        folded = connector.name.casefold()
        if folded in seen:
            problems.add(where, UsageError("duplicate_in_file", f"name {connector.name!r} is also used at {seen[folded]}",
                                           "Connector names are unique, case-insensitively."))  # fmt: skip
        elif folded in taken:
            other = taken[folded]
            problems.add(where, UsageError(
                "duplicate_name", f"name {connector.name!r} belongs to existing connector {other.id}",
                f"Give it another name, or import it with id {other.id!r} to update that connector.",
            ))  # fmt: skip
        seen.setdefault(folded, where)
