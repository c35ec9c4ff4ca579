"""Move connectors to a v0.1.0 integration one at a time, as the product's migration steps say.

For each connector: (optionally) send a test notification through the *target* integration to
the connector's channel; only when it lands, switch the connector's integration. Both
integrations keep delivering throughout.

Durability: every step is appended to a journal in the state dir and fsync'd before the next
one starts; a `switched` record is the commit point of a connector's move. config.toml catches
up in batches (rewriting it per connector would cost ~70 ms at 1,000 connectors), always under
the store lock and only for a connector nobody changed since it was switched (still on its old
integration, its updated_at as it was). A test whose outcome is unknown (the answer lost, or the
process died mid-call) is found by its message metadata in the channel's history, so a switch
never costs two test notifications; when that history cannot be read (no channel ID known, no
*:history scope, the app not in the channel), the connector is in doubt and nothing is sent:
`--no-test` switches it if the test did arrive, `--resend` sends one more if it did not.

The journal records history, not commands: a run replays only the switches of runs that never
ended (killed before their last catch-up), never an earlier run's switch of a connector a person
has changed since. When a run ends, the journal is compacted: the runs are merged into one
`start` per (from, to) pair, and each connector keeps only the events of its latest attempt
towards each target (what `--status` and a rerun read), then one `end`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from cxslack.connectors import Connector, ConnectorStore, channel_label, find_connector, parse_connectors
from cxslack.errors import EXIT_OK, EXIT_PARTIAL, AuthError, CxError, UsageError
from cxslack.model import Integration, Status
from cxslack.registry import ConfigView, Registry, quote
from cxslack.state import open_state
from cxslack.state.interface import MigrationJournal, State
from cxslack.state.records import MigrationEvent

FLUSH_INTERVAL = 2.0  # seconds between config.toml catch-ups during a run
TEST_EVENT = "cxslack_migration_test"


class Item(Protocol):
    """What a migration moves: a local connector, or a connector in Coralogix (`--remote`)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def channel(self) -> str: ...


ItemT = TypeVar("ItemT", bound=Item)


@dataclass
class Plan:
    target: Integration
    source: Integration | None
    to_move: Sequence[Item]
    already: Sequence[Item]

    def to_json(self, test: bool) -> dict[str, Any]:
        return {
            "to": self.target.id,
            "from": self.source.id if self.source else None,
            "dry_run": True,
            "migrate": [c.id for c in self.to_move],
            "already_on_target": [c.id for c in self.already],
            "test": test,
            "migrated": [],
            "failed": [],
            "skipped": [c.id for c in self.already],
            "remaining": [c.id for c in self.to_move],
            "in_doubt": [],  # the shape of a real run's document: nothing sent, nothing in doubt
        }


def example_migration(view: ConfigView, target: Integration | None = None) -> str:
    """A migrate command line with this store's real names: an earlier-version integration that
    has connectors, and a v0.1.0 one (Active first) to move them to."""
    counts: dict[str, int] = {}
    for body in view.connectors.values():
        integration_id = str(body.get("integration", "")) if isinstance(body, dict) else ""
        counts[integration_id] = counts.get(integration_id, 0) + 1
    integrations = sorted(view.integrations.values(), key=lambda i: i.name.casefold())
    olds = [i for i in integrations if not i.supports_cases_features and counts.get(i.id)]
    if target is None:
        news = sorted(
            (i for i in integrations if i.supports_cases_features),
            key=lambda i: i.status is not Status.ACTIVE,
        )
        target = news[0] if news else None
    if not olds:
        return "No connector is on an earlier-version integration: there is nothing to migrate."
    if target is None:
        return "Add a v0.1.0 integration to move them to: cxslack integrations add --name NAME --consent-us-data-transfer"
    old = olds[0]
    return (f"Move all {counts[old.id]} connector(s) of {old.name}: "
            f"cxslack connectors migrate --from {quote(old.name)} --to {quote(target.name)} --test")  # fmt: skip


def plan_migration(registry: Registry, names: list[str], to: str, source_ref: str | None) -> Plan:
    """Check everything before anything changes (exit 3/4/2 as the contract says)."""
    store = ConnectorStore(registry)
    view, connectors = store.load()
    target = view.find(to)
    source = view.find(source_ref) if source_ref else None
    if source is not None and source.id == target.id:
        raise UsageError("same_integration", "--from and --to name the same integration")
    if not names and source is None:  # the command line first, then the target's state
        raise nothing_to_migrate(example_migration(view, target))
    hint = f"cxslack integrations authorize {quote(target.name)}"
    if not target.supports_cases_features:
        raise AuthError(
            "target_not_v0_1_0",
            f"{target.name} is on version {target.version}; connectors can only be migrated to a v0.1.0 integration",
            "Add one with: cxslack integrations add --name NAME --consent-us-data-transfer, then migrate --to it.",
        )
    if target.status is not Status.ACTIVE:
        raise AuthError(
            "target_not_active",
            f"{target.name} is {target.status.value.capitalize()}"
            + (f" ({target.status_reason})" if target.status_reason else "")
            + ": it must be Active before connectors move to it",
            f"Install the Slack app first: {hint}",
        )
    if names:
        chosen = [find_connector(connectors, n) for n in names]
        if source is not None:
            strangers = [c.name for c in chosen if c.integration not in (source.id, target.id)]
            if strangers:
                raise UsageError(
                    "not_on_source",
                    f"{', '.join(strangers)} {'is' if len(strangers) == 1 else 'are'} not on {source.name}",
                )
    else:
        assert source is not None  # checked above
        chosen = [c for c in connectors.values() if c.integration in (source.id,)]
    return sorted_plan(target, source, chosen, lambda c: c.integration == target.id)


def nothing_to_migrate(hint: str | None = None) -> UsageError:
    return UsageError(
        "nothing_to_migrate", "name connectors to migrate, or --from OLD for all of its connectors", hint
    )


def sorted_plan(target: Integration, source: Integration | None, chosen: Sequence[ItemT],
                there: Callable[[ItemT], bool]) -> Plan:  # fmt: skip
    """The chosen connectors, each once and by name, split by whether they are `there` already."""
    unique = sorted({c.id: c for c in chosen}.values(), key=lambda c: c.name.casefold())
    return Plan(target, source, [c for c in unique if not there(c)], [c for c in unique if there(c)])


@dataclass
class Outcome:
    to: str
    dry_run: bool = False
    migrated: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    source_empty: Integration | None = None  # the old integration, when it has no connectors left
    unconfirmed: list[str] | None = None  # --remote: switched, the confirming test's outcome lost in a crash

    @property
    def exit_code(self) -> int:
        """5 when any connector failed (those stay on their old integration), else 0."""
        return EXIT_PARTIAL if self.failed else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        doc = {
            "to": self.to,
            "dry_run": self.dry_run,
            "migrated": self.migrated,
            "failed": self.failed,
            "skipped": self.skipped,
            "remaining": self.remaining,
            # failed with a test that may have arrived: nothing is sent for them until someone looks
            "in_doubt": [f["connector"] for f in self.failed if f["error"].get("code") == "test_in_doubt"],
        }
        if self.unconfirmed is not None:
            doc["unconfirmed"] = self.unconfirmed
        return doc


@dataclass
class Progress:
    """Callbacks the CLI uses to show progress; all optional."""

    start: Callable[[int], None] = lambda total: None
    step: Callable[[Item, str], None] = lambda connector, what: None
    done: Callable[[Item, str, CxError | None], None] = lambda connector, result, error: None
    finish: Callable[[], None] = lambda: None
    waiting: Callable[[], None] = lambda: None  # another migrate run holds the lock


class Mover:
    """How one kind of migration tests and switches a connector; the Migrator runs the loop.

    Every step a mover takes is journaled (fsync'd) before the next; `history` is the journal
    as it stood when the run got the lock, so a rerun can tell what a killed run left in doubt."""

    journal: MigrationJournal
    progress: Progress
    resend_test = False  # the operator looked: in-doubt test notifications never arrived

    def journal_of(self, state: State) -> MigrationJournal:
        return state.migrations

    def queue(self, plan: Plan, history: list[MigrationEvent]) -> list[Item]:
        return list(plan.to_move)

    def already(self, item: Item, plan: Plan, history: list[MigrationEvent]) -> bool:
        raise NotImplementedError

    def move(self, item: Item, plan: Plan, test: bool, history: list[MigrationEvent]) -> CxError | None:
        """Test (when asked) and switch one connector; the error that stopped it, if any."""
        raise NotImplementedError

    def maybe_flush(self) -> None:
        """Let the local store catch up now and then."""

    def flush(self) -> None:
        """Let the local store catch up with everything switched so far."""

    def outcome(self, outcome: Outcome) -> None:
        """Add what only this kind of migration reports."""


class Migrator:
    def __init__(self, registry: Registry, *, progress: Progress | None = None, mover: Mover | None = None):
        self.registry = registry
        self.progress = progress or Progress()
        self.mover = mover or LocalMover(registry)
        self.journal = self.mover.journal_of(open_state(registry.store))
        self.mover.journal, self.mover.progress = self.journal, self.progress

    def run(self, plan: Plan, *, test: bool, fail_fast: bool, resend_test: bool = False) -> Outcome:
        """Migrate the plan's connectors; a concurrent run waits, then finds its work done."""
        self.mover.resend_test = resend_test
        with self.journal.exclusive(self.progress.waiting):
            try:
                return self._run(plan, test, fail_fast)
            finally:
                self.progress.finish()

    def _run(self, plan: Plan, test: bool, fail_fast: bool) -> Outcome:
        outcome = Outcome(to=plan.target.id, skipped=[c.id for c in plan.already])
        run_id = uuid.uuid4().hex[:12]
        history = self.journal.events()
        self.journal.append(
            MigrationEvent(
                "start",
                run=run_id,
                to=plan.target.id,
                from_=plan.source.id if plan.source else None,
                connectors=tuple(c.id for c in plan.to_move),
                test=test,
            )  # fmt: skip
        )
        queue = self.mover.queue(plan, history)
        self.progress.start(len(queue))
        stopped = False
        try:
            for index, item in enumerate(queue):
                if stopped:
                    outcome.remaining.extend(c.id for c in queue[index:])
                    break
                if self.mover.already(item, plan, history):
                    outcome.skipped.append(item.id)  # another run (or an earlier one) moved it
                    self.progress.done(item, "skipped", None)
                    continue
                error = self.mover.move(item, plan, test, history)
                if error is None:
                    outcome.migrated.append(item.id)
                else:
                    self.journal.append(
                        MigrationEvent("failed", connector=item.id, to=plan.target.id, error=error.to_dict())
                    )
                    outcome.failed.append({"connector": item.id, "error": error.to_dict()})
                    stopped = fail_fast
                self.progress.done(item, "migrated" if error is None else "failed", error)
                self.mover.maybe_flush()
        finally:
            self.mover.flush()
            self.journal.append(MigrationEvent("end", run=run_id))
        self.journal.replace(compact(self.journal.events()))  # every run has ended: all history now
        if plan.source is not None:
            view = self.registry.view()
            if not view.connectors_of(plan.source.id):
                outcome.source_empty = view.integrations.get(plan.source.id)
        self.mover.outcome(outcome)
        return outcome


class LocalMover(Mover):
    """Local connectors: a Slack test notification through the new integration, then the switch
    in config.toml (journaled at once, written in batches)."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._deliverer: Any = None
        # connector → (from, to, its updated_at when switched): journaled, not yet in config.toml
        self._pending: dict[str, tuple[str, str, str | None]] = {}
        self._kept: list[str] = []  # switched, but changed by a person meanwhile: left as they set it
        self._last_flush = time.monotonic()

    def queue(self, plan: Plan, history: list[MigrationEvent]) -> list[Item]:
        self._replay(history)
        connectors = ConnectorStore(self.registry).load()[1]  # as they are now that we hold the lock
        return [connectors[c.id] for c in plan.to_move if c.id in connectors]

    def already(self, item: Item, plan: Plan, history: list[MigrationEvent]) -> bool:
        assert isinstance(item, Connector)  # config.toml has caught up with every committed switch
        return item.integration == plan.target.id

    def move(self, item: Item, plan: Plan, test: bool, history: list[MigrationEvent]) -> CxError | None:
        assert isinstance(item, Connector)
        attempt = None
        if test:
            if self._deliverer is None:
                from cxslack.delivery import Deliverer

                self._deliverer = Deliverer(self.registry, plan.target)
            error, attempt = self._test(self._deliverer, item, plan.target, history)
            if error is not None:
                return error
        self._switch(item, plan.target.id, attempt)
        return None

    # -- one connector -----------------------------------------------------------------------
    def _test(self, deliverer: Any, connector: Connector, target: Integration,
              history: list[MigrationEvent]) -> tuple[CxError | None, str | None]:  # fmt: skip
        """Send the test notification; (error, attempt id). Success is journaled by the switch."""
        from cxslack.delivery import Unsettled
        from cxslack.slack.client import SlackError
        from cxslack.slack.messages import build_test_message

        in_doubt = _in_doubt_attempt(history, connector.id, target.id)
        if in_doubt is not None and not self.resend_test:
            landed = self._landed(deliverer, in_doubt)
            if isinstance(landed, CxError):
                return landed, in_doubt.attempt  # cannot tell: send nothing
            if landed:
                return None, in_doubt.attempt  # it did land before the crash: do not send another
        attempt = uuid.uuid4().hex
        self.progress.step(connector, f"testing {channel_label(connector.channel)}")
        self.journal.append(
            MigrationEvent(
                "testing", connector=connector.id, to=target.id, attempt=attempt, channel=connector.channel
            )
        )
        text, blocks = build_test_message(connector, target)
        metadata = {
            "event_type": TEST_EVENT,
            "event_payload": {"connector": connector.id, "attempt": attempt},
        }
        try:
            deliverer.post_once(connector.channel, text, blocks, metadata=metadata, post=attempt)
        except Unsettled as unsettled:  # sent, answer lost, history unreadable: the rerun decides
            return self._in_doubt(unsettled.described("test_in_doubt", *self._doubt_text(connector.id, target.id)),
                                  connector.id, target.id), attempt  # fmt: skip
        except SlackError as exc:
            if exc.token_invalid:
                from cxslack.oauth.flow import mark_failing_if_token_error

                mark_failing_if_token_error(self.registry, target.id, exc)
            return exc, attempt
        return None, attempt

    @staticmethod
    def _doubt_text(connector: str, to: str) -> tuple[str, str]:
        return (
            f"The test notification for {connector}",
            f"cxslack connectors migrate {connector} --to {to} --test",
        )

    @staticmethod
    def _in_doubt(error: CxError, connector: str, to: str) -> CxError:
        error.hint = (f"{error.hint} If it did arrive, switch without another test: "
                      f"cxslack connectors migrate {connector} --to {to} --no-test.")  # fmt: skip
        return error

    def _landed(self, deliverer: Any, attempt: MigrationEvent) -> bool | CxError:
        """Did the in-doubt test message reach Slack? Its metadata in the channel's history says;
        a CxError when the history cannot be read, so that nobody gets a second test."""
        from cxslack.delivery import in_doubt_error, metadata_of

        def is_test(message: dict[str, Any]) -> bool:
            kind, payload = metadata_of(message)
            return kind == TEST_EVENT and payload.get("attempt") == attempt.attempt

        found = deliverer.find_posted([attempt.channel or ""], float(attempt.at or 0), is_test)
        if found.certain:
            return found.message is not None
        connector, to = str(attempt.connector), str(attempt.to)
        what, rerun = self._doubt_text(connector, to)
        error = in_doubt_error("test_in_doubt", what, [attempt.channel or ""], float(attempt.at or 0),
                               "its answer was lost, or cxslack stopped before it came", found.unsearchable,
                               rerun)  # fmt: skip
        return self._in_doubt(error, connector, to)

    def _switch(self, connector: Connector, target_id: str, attempt: str | None) -> None:
        self.journal.append(
            MigrationEvent(
                "switched",
                connector=connector.id,
                from_=connector.integration,
                to=target_id,
                attempt=attempt,
                before=connector.updated_at,
            )  # fmt: skip
        )
        self._pending[connector.id] = (connector.integration, target_id, connector.updated_at)
        connector.integration = target_id

    # -- config.toml catch-up ------------------------------------------------------------------
    def _replay(self, history: list[MigrationEvent]) -> None:
        """Switches of runs that never ended (killed before config.toml caught up with them)."""
        for event in unended_switches(history):
            if event.connector and event.from_ and event.to:
                self._pending[event.connector] = (event.from_, event.to, event.before)
        self.flush()

    def maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        from cxslack.model import utc_now

        pending, self._pending = self._pending, {}
        kept: list[tuple[str, str]] = []
        with self.registry.editing() as (view, _):
            now = utc_now()
            for ident, (old, new, before) in pending.items():
                body = view.connectors.get(ident)
                current = body.get("integration") if isinstance(body, dict) else None
                if (
                    isinstance(body, dict)
                    and current == old
                    and new in view.integrations
                    and (before is None or body.get("updated_at") == before)
                ):
                    body["integration"] = new
                    body["updated_at"] = now
                elif current != new:  # a person changed it since it was switched: theirs stands
                    kept.append((ident, new))
        for ident, new in kept:
            self._kept.append(ident)
            self.journal.append(
                MigrationEvent("failed", connector=ident, to=new, error=_changed(ident).to_dict())
            )

    def outcome(self, outcome: Outcome) -> None:
        for ident in self._kept:
            if ident in outcome.migrated:
                outcome.migrated.remove(ident)
                outcome.failed.append({"connector": ident, "error": _changed(ident).to_dict()})


def _changed(ident: str) -> CxError:
    return CxError(
        "changed_meanwhile",
        f"{ident} was changed (or removed) by someone after it was switched and before config.toml caught "
        "up; it was left as it is now",
        f"Review it: cxslack connectors show {ident}; migrate it again if it should move.",
    )


def unended_switches(history: Sequence[MigrationEvent]) -> list[MigrationEvent]:
    """`switched` events of runs with a `start` and no `end`: what a killed run committed."""
    ended = {e.run for e in history if e.event == "end" and e.run}
    run: str | None = None
    out = []
    for event in history:
        if event.event == "start":
            run = event.run
        elif event.event == "switched" and run not in ended:
            out.append(event)
    return out


def _settles(event: MigrationEvent) -> bool:
    """An event after which a connector's earlier steps towards that target no longer matter."""
    return event.event == "reverted" or (
        event.event == "failed" and (event.error or {}).get("code") != "test_in_doubt"
    )


COMPACTED = "compacted"


def compact(events: Sequence[MigrationEvent]) -> list[MigrationEvent]:
    """The journal of ended runs, as little as `--status` and later runs need: one `start` per
    (from, to) pair (runs counted, connectors merged, in the order they were last used), each
    connector's events since its last settled attempt towards each target, and one `end`."""
    starts: dict[tuple[str | None, str | None], MigrationEvent] = {}
    kept: dict[tuple[str, str | None], list[int]] = {}
    for index, event in enumerate(events):
        if event.event == "start":
            key = (event.from_, event.to)
            earlier = starts.pop(key, None)
            connectors = tuple(dict.fromkeys((*(earlier.connectors if earlier else ()), *event.connectors)))
            runs = ((earlier.runs or 1) if earlier else 0) + (event.runs or 1)
            starts[key] = replace(event, run=COMPACTED, connectors=connectors, runs=runs)
        elif event.connector is not None:
            steps = kept.setdefault((event.connector, event.to), [])
            if _settles(event):
                steps.clear()
            steps.append(index)
    keep = sorted(i for steps in kept.values() for i in steps)
    end = MigrationEvent("end", run=COMPACTED, at=events[-1].at if events else None)
    return [*starts.values(), *(events[i] for i in keep), end]


def _in_doubt_attempt(history: list[MigrationEvent], connector: str, target: str) -> MigrationEvent | None:
    """The last `testing` for this connector and target, if nothing after it says how it ended."""
    last: MigrationEvent | None = None
    for event in history:
        if event.connector != connector:
            continue
        if event.event == "testing" and event.to == target and event.attempt:
            last = event
        elif event.event == "switched" or (
            event.event == "failed" and (event.error or {}).get("code") != "test_in_doubt"
        ):
            last = None  # settled (a failure that was only "cannot tell" settles nothing)
    return last


def migration_status(registry: Registry, source_ref: str | None, *, remote: bool = False) -> dict[str, Any]:
    """What the runs towards the last run's target (for --from OLD, if given) did, failed, left in
    doubt and left, from the journal (compacted or not) and, locally, config.toml (`remote`: the
    runs inside Coralogix, from their journal alone)."""
    state = open_state(registry.store)
    events = (state.remote_migrations if remote else state.migrations).events()
    view = registry.view()
    source = view.find(source_ref) if source_ref else None
    starts = [e for e in events if e.event == "start" and (source is None or e.from_ == source.id)]
    if not starts:
        return {"to": None, "from": source.id if source else None, "done": [], "failed": [], "in_doubt": [],
                "remaining": [], "runs": 0}  # fmt: skip
    to = starts[-1].to
    planned: list[str] = []
    for start in starts:
        if start.to == to:
            planned += [c for c in start.connectors if c not in planned]
    connectors = {} if remote else parse_connectors(view, registry.store.paths.config_file)
    last = last_steps(events, to)
    done = [
        c
        for c in planned
        if last.get(c, ("",))[0] == "done" or (c in connectors and connectors[c].integration == to)
    ]
    failed = [{"connector": c, "error": last[c][1].error or {}} for c in planned
              if c not in done and last.get(c, ("",))[0] == "failed"]  # fmt: skip
    in_doubt = [{"connector": c, "error": _doubt_of(last[c][1])} for c in planned
                if c not in done and last.get(c, ("",))[0] == "in_doubt"]  # fmt: skip
    settled = set(done) | {f["connector"] for f in failed} | {d["connector"] for d in in_doubt}
    remaining = [c for c in planned if c not in settled and (remote or c in connectors)]

    def name_of(integration_id: str | None) -> str | None:
        found = view.integrations.get(integration_id or "")
        return found.name if found else None

    doc: dict[str, Any] = {
        "to": to,
        "to_name": name_of(to),
        "from": starts[-1].from_,
        "from_name": name_of(starts[-1].from_),
        "done": done,
        "failed": failed,
        "in_doubt": in_doubt,
        "remaining": remaining,
        "runs": sum(s.runs or 1 for s in starts),
    }
    if not remote:  # migrated by a run, since moved elsewhere by a person
        doc["moved_since"] = [c for c in done if c in connectors and connectors[c].integration != to]
    return doc


Step = tuple[str, MigrationEvent]  # done | failed | in_doubt, and the event that says so


def last_steps(events: Sequence[MigrationEvent], to: str | None) -> dict[str, Step]:
    """Each connector's standing towards `to`, as the journal tells it: switched (done), failed,
    or in doubt — a test or a switch that was sent and never settled."""
    last: dict[str, Step] = {}
    for event in events:
        if event.connector is None or event.to != to:
            continue
        if event.event == "switched":
            last[event.connector] = ("done", event)
        elif event.event == "failed":
            doubt = (event.error or {}).get("code") == "test_in_doubt"
            last[event.connector] = ("in_doubt" if doubt else "failed", event)
        elif event.event in ("testing", "switching"):  # until something says how it ended
            last[event.connector] = ("in_doubt", event)
        elif event.event == "reverted":
            last.pop(event.connector, None)  # back where it was; the `failed` that follows says why
    return last


def _doubt_of(event: MigrationEvent) -> dict[str, Any]:
    if event.error:
        return event.error
    from cxslack.model import utc_now

    what = "its test notification" if event.event == "testing" else "its switch in Coralogix"
    when = f" at {utc_now(event.at)}" if event.at else ""
    return {"code": "interrupted", "message": f"a run stopped while sending {what}{when}",
            "hint": "Rerun the migration: it settles this first."}  # fmt: skip
