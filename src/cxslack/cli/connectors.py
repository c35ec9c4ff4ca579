"""`cxslack connectors …`: channel routing, Notification Center export/import, render, test."""

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cxslack.cli.common import OutputOpt, YesOpt, command_group, confirm_or_require_yes
from cxslack.cli.render import Column, Output, OutputFormat, paint, when, write_json
from cxslack.connectors import (
    Connector,
    ConnectorChanges,
    ConnectorStore,
    EntityType,
    channel_label,
    missing_integration,
    parse_override,
    validate_connector_id,
)
from cxslack.errors import EXIT_PARTIAL, CxError, UsageError, batch_exit_code
from cxslack.json_input import MAX_IMPORT_BYTES, read_json_file
from cxslack.registry import quote

if TYPE_CHECKING:
    from cxslack.delivery import TestResult
    from cxslack.migration import Item
    from cxslack.registry import Registry
    from cxslack.remote.routing import RuleTarget

app = command_group(
    "Create and manage Slack connectors: channel routing, templates, fallback, tests, migration to "
    "v0.1.0, and pull/plan/push with Coralogix Notification Center."
)

NameArg = Annotated[str, typer.Argument(help="Connector name (case-insensitive) or id.", show_default=False)]
OverrideOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--override",
        help="ENTITY=TEMPLATE (alerts, cases, test-notifications): a Tera template for the channel. Repeatable.",
    ),
]


CaseReplyModeOpt = Annotated[
    str | None,
    typer.Option(
        "--case-reply-mode",
        help="How Case updates post by default: new-message, thread (default) or thread-broadcast.",
        show_default=False,
    ),
]


CaseActionsOpt = Annotated[
    bool | None,
    typer.Option(
        "--case-actions/--no-case-actions",
        help="Buttons on Case messages (Acknowledge, Assign to me, Resolve, Close); on by default, "
        "v0.1.0 integrations only.",
        show_default=False,
    ),
]


def show_connector(out: Output, connector: Connector, integration_name: str) -> None:
    pairs = [
        ("Name", connector.name),
        ("ID", connector.id),
        ("Integration", f"{integration_name} ({connector.integration})"),
        ("Channel", channel_label(connector.channel)),
        ("Fallback channel", channel_label(connector.fallback_channel)),
    ]
    if connector.description:
        pairs.append(("Description", connector.description))
    pairs.append(("Case buttons", "on" if connector.case_actions else "off"))
    for entity in EntityType:
        if entity in connector.overrides:
            pairs.append((f"Override ({entity.value})", connector.overrides[entity]))
    if connector.coralogix is not None:
        kept = ", ".join(sorted(connector.coralogix.residue)) or "nothing"
        pairs.append(("Coralogix", f"updateTime {connector.coralogix.update_time or '-'} when last pulled or pushed; "
                                   f"kept for it: {kept}"))  # fmt: skip
    pairs += [("Created", connector.created_at), ("Updated", connector.updated_at)]
    out.fields(pairs)


def _warn_unlisted(out: Output, store: ConnectorStore, connector: Connector, refs: list[str]) -> None:
    """Say which channels Slack does not list, when the integration's scopes let cxslack look
    (channels:read, groups:read); say nothing when they do not: silence is not a verdict."""
    from cxslack.connectors import normalise_channel
    from cxslack.doctor.slack_state import unlisted_channels

    integration = store.registry.view().integrations.get(connector.integration)
    if integration is None:
        return
    lookup = unlisted_channels(store.registry, integration, [normalise_channel(r) for r in refs])
    if lookup is None:
        return
    for ref in lookup.missing:
        out.warn(f"Slack does not list {channel_label(ref)} among the {lookup.searched}: "
                 "check the name; a private channel needs the app invited (/invite @Coralogix).")  # fmt: skip


def _integration_names(store: ConnectorStore) -> dict[str, str]:
    view = store.registry.view()
    return {i.id: i.name for i in view.integrations.values()}


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Connector name (unique, case-insensitive).")],
    integration: Annotated[
        str, typer.Option("--integration", help="The integration it delivers through (name or id).")
    ],
    channel: Annotated[
        str, typer.Option("--channel", help="Main channel (name or id); test notifications go here.")
    ],
    fallback_channel: Annotated[
        str, typer.Option("--fallback-channel", help="Where messages go when delivery to the channel fails.")
    ],
    override: OverrideOpt = None,
    description: Annotated[str, typer.Option("--description", help="Free text.")] = "",
    ident: Annotated[
        str | None,
        typer.Option("--id", help="Connector id (default: derived from the name).", show_default=False),
    ] = None,
    case_reply_mode: CaseReplyModeOpt = None,
    case_actions: CaseActionsOpt = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Create a connector: a channel, a fallback channel and optional per-entity templates."""
    out = Output(output)
    store = ConnectorStore()
    overrides = dict(parse_override(o) for o in override or [])
    connector = Connector(
        id=validate_connector_id(ident) if ident else store.new_id(name),
        name=name,
        description=description,
        integration=integration,
        channel=channel,
        fallback_channel=fallback_channel,
        overrides=overrides,
        case_reply_mode=case_reply_mode,
        case_actions=case_actions is not False,
    )
    connector, _ = store.create(connector)
    _warn_unlisted(out, store, connector, [connector.channel, connector.fallback_channel])
    names = _integration_names(store)
    out.emit(
        {"connector": connector.to_json()},
        lambda: show_connector(out, connector, names.get(connector.integration, "?")),
    )
    out.success(
        f"Created connector {connector.name} → {channel_label(connector.channel)} "
        f"(fallback {channel_label(connector.fallback_channel)})."
    )
    out.info(f"Send a test notification with: cxslack connectors test {connector.id}")


@app.command("list")
def list_(
    integration: Annotated[
        str | None, typer.Option("--integration", help="Only connectors of this integration.")
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """List connectors with their integration, channels and overrides."""
    out = Output(output)
    store = ConnectorStore()
    view, connectors = store.load()
    items = sorted(connectors.values(), key=lambda c: c.name.casefold())
    if integration is not None:
        wanted = view.find(integration).id
        items = [c for c in items if c.integration == wanted]
    if out.json:
        write_json({"connectors": [c.to_json() for c in items]})
        return
    if not items:
        owners = (
            [view.find(integration)]
            if integration
            else sorted(view.integrations.values(), key=lambda i: i.name)
        )
        if not owners:
            out.info("No connectors, and no integration to deliver through yet: "
                     "cxslack integrations add --name NAME --consent-us-data-transfer")  # fmt: skip
            return
        out.info(f"No connectors. Create one with: cxslack connectors create NAME --integration {quote(owners[0].name)} "
                 "--channel CHANNEL --fallback-channel CHANNEL")  # fmt: skip
        return
    names = {i.id: i.name for i in view.integrations.values()}
    out.table(
        [
            Column("Name"),
            Column("Integration", drop=1),
            Column("Channel", key=True),
            Column("Fallback", key=True, drop=2),
            Column("Overrides", drop=3),
            Column("Updated", drop=4),
            Column("ID", key=True),
        ],
        [
            [
                c.name,
                names.get(c.integration, f"missing ({c.integration})"),
                c.channel,
                c.fallback_channel,
                ",".join(e.value for e in EntityType if e in c.overrides) or "-",
                when(c.updated_at),
                c.id,
            ]
            for c in items
        ],
    )


@app.command("show")
def show(name: NameArg, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Show one connector in full."""
    out = Output(output)
    store = ConnectorStore()
    connector = store.find(name)
    names = _integration_names(store)
    out.emit(
        {"connector": connector.to_json()},
        lambda: show_connector(out, connector, names.get(connector.integration, "missing")),
    )


@app.command("edit")
def edit(
    name: NameArg,
    new_name: Annotated[str | None, typer.Option("--name", help="Rename.")] = None,
    description: Annotated[str | None, typer.Option("--description", help="New description.")] = None,
    integration: Annotated[
        str | None,
        typer.Option("--integration", help="Deliver through another integration (see also `migrate`)."),
    ] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="New main channel.")] = None,
    fallback_channel: Annotated[
        str | None, typer.Option("--fallback-channel", help="New fallback channel.")
    ] = None,
    override: OverrideOpt = None,
    clear_override: Annotated[
        list[str] | None,
        typer.Option("--clear-override", help="Remove an entity type's override. Repeatable."),
    ] = None,
    case_reply_mode: CaseReplyModeOpt = None,
    case_actions: CaseActionsOpt = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Change a connector's name, channels, overrides, integration or Case settings."""
    out = Output(output)
    store = ConnectorStore()
    connector = store.edit(
        name,
        ConnectorChanges(
            name=new_name,
            description=description,
            integration=integration,
            channel=channel,
            fallback_channel=fallback_channel,
            set_overrides=dict(parse_override(o) for o in override or []),
            clear_overrides=[EntityType.parse(e) for e in clear_override or []],
            case_reply_mode=case_reply_mode,
            case_actions=case_actions,
        ),
    )
    if channel is not None or fallback_channel is not None or integration is not None:
        _warn_unlisted(out, store, connector, [c for c in (channel, fallback_channel) if c] or
                       [connector.channel, connector.fallback_channel])  # fmt: skip
    names = _integration_names(store)
    out.emit(
        {"connector": connector.to_json()},
        lambda: show_connector(out, connector, names.get(connector.integration, "?")),
    )
    out.success(f"Updated connector {connector.name}.")


@app.command("remove")
def remove(name: NameArg, yes: YesOpt = False, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Remove a connector; Case notification settings and routing rules that use it stop delivering."""
    out = Output(output)
    store = ConnectorStore()
    connector = store.find(name)
    out.warn(
        f"Case notification settings and Notification Center routing rules that target connector {connector.id} "
        f"({connector.name}) will stop delivering until they are pointed at another connector."
    )
    rules = warn_routing(out, store.registry, {connector.id})
    confirm_or_require_yes(f"Remove connector {connector.name}?", yes)
    store.remove(connector.id)
    out.emit(
        {"removed": {"connector": connector.id, "routing_rules": [r.to_json() for r in rules]}}, lambda: None
    )
    out.success(f"Removed connector {connector.name}.")
    if connector.coralogix is not None:
        out.info(f"It stays in Coralogix until: cxslack connectors push --prune {connector.id}")


def warn_routing(out: Output, registry: "Registry", connector_ids: set[str],
                 through: str | None = None) -> "list[RuleTarget]":  # fmt: skip
    """Name the Notification Center routing rules that target these connectors (or, with `through`,
    any connector of that Coralogix integration) before anything is removed."""
    if not connector_ids and not through:
        return []
    from cxslack.remote.routing import rules_targeting

    rules, problem = rules_targeting(registry.store, connector_ids, through)
    if problem:
        out.info(f"(The routing rules in Coralogix that target them were not checked: {problem}.)")
    for rule in rules:
        out.warn(
            f"Routing rule: {rule.describe()} targets connector {rule.connector_id} and stops delivering."
        )
    return rules


class ExportFormat(StrEnum):
    CORALOGIX = "coralogix"
    CXSLACK = "cxslack"


@app.command("export")
def export(
    names: Annotated[
        list[str] | None, typer.Argument(help="Connectors to export (default: all).", show_default=False)
    ] = None,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="coralogix: Notification Center's {\"connector\": {…}} JSON; cxslack: this tool's shape.",
        ),
    ] = ExportFormat.CORALOGIX,
) -> None:
    """Print connectors as JSON, ready for git or for Coralogix's Notification Center API.

    One NAME prints one document; several (or none, meaning all) print a JSON array.
    """
    from cxslack.cli.render import say
    from cxslack.connectors import find_connector
    from cxslack.remote.shape import compose

    store = ConnectorStore()
    view, connectors = store.load()
    chosen = (
        [find_connector(connectors, n) for n in names]
        if names
        else sorted(connectors.values(), key=lambda c: c.id)
    )
    unlinked: set[str] = set()

    def coralogix(connector: Connector) -> dict[str, Any]:
        integration = view.integrations.get(connector.integration)
        if integration is None or not integration.coralogix_id:
            unlinked.add(integration.name if integration else connector.integration)
        linked = integration.coralogix_id if integration else None
        return {"connector": compose(connector, linked or connector.integration)}

    convert = coralogix if fmt is ExportFormat.CORALOGIX else (lambda c: {"connector": c.to_json()})
    docs = [convert(c) for c in chosen]
    write_json(docs[0] if names and len(names) == 1 else docs)
    if unlinked:
        say(
            f"! {', '.join(sorted(unlinked))} {'is' if len(unlinked) == 1 else 'are'} not linked to a Coralogix "
            "integration, so integrationId is cxslack's own id there. Link: cxslack integrations edit "
            f"{quote(sorted(unlinked)[0])} --coralogix-id ID (ids: cxslack integrations list --remote)"
        )


@app.command("import")
def import_(
    file: Annotated[
        str,
        typer.Argument(
            help="A JSON file ('-' for stdin): one {\"connector\": {…}} or an array of them, "
            "as `connectors export` prints (either --format)."
        ),
    ],
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Create or update connectors from a file, all or nothing.

    The whole file is checked first (fields, integrations, an id or a name twice, a name another
    connector has), every problem reported at once; then it is written in one transaction.
    """
    from cxslack.importing import import_connectors

    out = Output(output)
    doc = read_json_file(file, "connector file", max_bytes=MAX_IMPORT_BYTES)
    source = "stdin" if file == "-" else file
    with out.progress("Importing connectors") as bar:
        bar.start(len(doc) if isinstance(doc, list) else 1)
        result = import_connectors(ConnectorStore(), doc, source, lambda: bar.update(advance=1))
    counts = ", ".join(f"{result.count(a):,} {a}" for a in ("created", "updated", "unchanged"))
    out.emit(result.to_json(), lambda: None)
    out.success(f"Imported {len(result.actions):,} connector(s) from {source}: {counts}.")


from cxslack.cli import connectors_remote  # noqa: E402  (pull, plan, push: the Coralogix side)

app.command("pull")(connectors_remote.pull)
app.command("plan")(connectors_remote.plan)
app.command("push")(connectors_remote.push)


@app.command("render")
def render_cmd(
    name: NameArg,
    entity_type: Annotated[str, typer.Option("--entity-type", help="alerts, cases or test-notifications.")],
    payload: Annotated[
        str | None,
        typer.Option(
            "--payload",
            help="JSON file ('-' for stdin) used as the template context; default: a shipped sample.",
        ),
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Show where a message of this entity type would go, step by step."""
    from cxslack.delivery import resolve_channel
    from cxslack.templating import sample_payload

    out = Output(output)
    entity = EntityType.parse(entity_type)
    connector = ConnectorStore().find(name)
    context = read_json_file(payload, "payload") if payload else sample_payload(entity.value)
    if not isinstance(context, dict):
        raise UsageError("invalid_payload", "the payload must be a JSON object")
    resolution = resolve_channel(connector, entity, context)

    def human() -> None:
        for n, step in enumerate(resolution.steps, 1):
            if step["step"] == "override" and step["outcome"] == "none":
                out.lines(f"{n}. override ({entity.value}): none")
            elif step["step"] == "override":
                out.lines(f"{n}. override ({entity.value}): {step['template']}")
                if step["outcome"] == "used":
                    out.lines(f"   rendered {step['rendered']!r} → {channel_label(step['channel'])}")
                elif step["outcome"] == "empty":
                    out.lines("   rendered empty → falls back to the channel")
                else:
                    out.lines(
                        f"   {paint('error', 'red', sys.stdout)}: {step['error']['message']} → falls back to the channel"
                    )
            else:
                out.lines(f"{n}. channel: {channel_label(step['channel'])}")
        out.lines(
            f"→ {channel_label(resolution.channel)} (from the {resolution.source}); "
            f"if delivery fails there: {channel_label(connector.fallback_channel)}"
        )

    out.emit(resolution.to_json(), human)


def _print_test_result(out: Output, result: "TestResult") -> None:
    name, primary = result.connector.name, result.primary_error
    cross = paint("✘", "red", sys.stderr)
    if primary is not None:  # the main channel failed; say why, with its remedy
        out.info(
            f"{cross if not result.ok else paint('!', 'yellow', sys.stderr)} {name}: {channel_label(result.connector.channel)}: {primary.message}"
        )
        if primary.hint:
            out.info(f"  {primary.hint}")
    if result.ok:
        where = (
            f"only the fallback, {channel_label(result.channel)} (the channel failed)"
            if result.fallback_used
            else channel_label(result.channel)
        )
        out.success(f"{name}: delivered to {where}" + (f" (ts {result.ts})" if result.ts else ""))
        if result.recovered:
            out.info(
                "  Slack's answer to it was lost; cxslack found it in the channel and sent no second one."
            )
        return
    assert result.error is not None
    label = (
        f"fallback {channel_label(result.channel)}"
        if primary is not None
        else (channel_label(result.channel) if result.channel else "delivery")
    )
    out.info(f"{cross} {name}: {label}: {result.error.message}")
    if result.error.hint:
        out.info(f"  {result.error.hint}")


@app.command("test")
def test(
    name: Annotated[
        str | None, typer.Argument(help="Connector name or id (or use --all).", show_default=False)
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Test every connector (with --integration: that integration's).")
    ] = False,
    integration: Annotated[
        str | None, typer.Option("--integration", help="With --all: only this integration's connectors.")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="With --all: concurrent deliveries (each channel stays under Slack's limit).",
            min=1,
            max=64,
        ),
    ] = 16,
    resend: Annotated[
        bool,
        typer.Option(
            "--resend",
            help="An earlier test whose arrival cxslack could not tell did not arrive (you looked): send "
            "a new one (a duplicate if it did arrive).",
        ),
    ] = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> int:
    """Send a test notification through the connector's integration to its channel (fallback on failure).

    When Slack's answer is lost (a timeout, a dropped connection), the test is looked for in the
    channel's history; when that cannot be read it is reported in doubt (exit 5) and nothing more
    is sent for it, here or in the fallback channel, until a rerun can tell or --resend."""
    from cxslack.delivery import Deliverer, send_test, send_tests

    out = Output(output)
    if (name is None) == (not all_):
        raise UsageError(
            "usage_error", "give a connector NAME or --all", "See: cxslack connectors test --help"
        )
    store = ConnectorStore()
    view, connectors = store.load()
    if not all_:
        assert name is not None
        connector = store.find(name)
        chosen = view.integrations.get(connector.integration)
        if chosen is None:
            raise missing_integration(connector)
        result = send_test(Deliverer(store.registry, chosen), connector, resend=resend)
        return out.result(
            result.to_json(), lambda: _print_test_result(out, result), exit_code=result.exit_code
        )
    items = sorted(connectors.values(), key=lambda c: c.name.casefold())
    if integration is not None:
        wanted = view.find(integration).id
        items = [c for c in items if c.integration == wanted]
    results = _run_with_progress(out, store, items, view.integrations, workers, send_tests, resend)
    failed = [r for r in results if not r.ok]
    in_doubt = [r for r in failed if r.to_json()["in_doubt"]]
    fell_back = [r for r in results if r.ok and r.fallback_used]
    summary = {"total": len(results), "success": len(results) - len(failed), "failure": len(failed),
               "fallback": len(fell_back), "in_doubt": len(in_doubt)}  # fmt: skip

    def human() -> None:
        for result in results:
            _print_test_result(out, result)

    # a delivery only the fallback channel got is a primary that failed, and one in doubt may have
    # arrived: partial, for CI; 1 only when every one certainly failed
    certain = len(failed) - len(in_doubt)
    code = (
        batch_exit_code(certain, len(results)) if certain else (EXIT_PARTIAL if in_doubt or fell_back else 0)
    )
    code = out.result({"results": [r.to_json() for r in results], "summary": summary}, human, exit_code=code)
    out.info(f"{summary['success']} of {summary['total']} delivered"
             + (f" ({len(fell_back)} only to the fallback channel)" if fell_back else "")
             + f", {summary['failure']} failed" + (f" ({len(in_doubt)} of them in doubt)" if in_doubt else "")
             + ".")  # fmt: skip
    return code


def _run_with_progress(out: Output, store: ConnectorStore, items: list[Connector], integrations: dict[str, Any],
                       workers: int, send_tests: Any, resend: bool) -> "list[TestResult]":  # fmt: skip
    with out.progress("Testing connectors") as bar:
        bar.start(len(items))

        def advance(result: "TestResult") -> None:
            bar.update(result.connector.name, advance=1)

        return list(
            send_tests(store.registry, items, integrations, workers=workers, on_done=advance, resend=resend)
        )


@app.command("migrate")
def migrate(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Connectors to migrate (default with --from: all of OLD's).", show_default=False),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="The v0.1.0 integration to move them to (must be Active).")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--from", help="The earlier-version integration to move connectors off.")
    ] = None,
    test: Annotated[
        bool | None,
        typer.Option(
            "--test/--no-test",
            help="Send a test notification through the new integration before each switch (default on a terminal).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first connector that fails.")
    ] = False,
    status: Annotated[
        bool,
        typer.Option("--status", help="Show what the runs (for --from) did, failed, left in doubt and left."),
    ] = False,
    resend_test: Annotated[
        bool,
        typer.Option(
            "--resend",
            "--resend-test",
            help="A test notification whose arrival cxslack could not tell did not arrive (you looked): "
            "send another (a duplicate if it did arrive).",
        ),
    ] = False,
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="Migrate the connectors in Coralogix Notification Center (--from/--to: linked integrations): "
            "pre-test with connectors:testConfig, PUT with only integrationId changed, confirm with connectors:test.",
        ),
    ] = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> int:
    """Move connectors to a v0.1.0 integration one at a time; safe to interrupt and to rerun.

    Each connector is tested through the new integration (with --test) and switched only when
    the test lands; the old integration keeps delivering for everything not yet moved.

    With --remote the connectors are Coralogix's own: each is pre-tested with the new
    integrationId (connectors:testConfig), saved with only integrationId changed, and confirmed
    with connectors:test (put back on the old integration if that fails). Local copies follow.
    """
    from contextlib import ExitStack

    from cxslack.cli.render import is_interactive
    from cxslack.migration import Migrator, Mover, migration_status, plan_migration
    from cxslack.registry import Registry, quote

    out = Output(output)
    registry = Registry()
    if status:
        doc = migration_status(registry, source, remote=remote)
        return out.result(doc, lambda: _print_status(out, doc))
    if to is None:
        from cxslack.migration import example_migration

        raise UsageError("missing_value", "--to is required", example_migration(registry.view()))
    if test is None:
        if not is_interactive() and not dry_run:
            raise UsageError("missing_value", "--test or --no-test is required when not running on a terminal",
                             "CI scripts say explicitly whether each switch is proven by a test notification.")  # fmt: skip
        test = True
    with ExitStack() as stack:
        mover: Mover | None = None
        if remote:
            from cxslack.remote import Coralogix
            from cxslack.remote.migrate import RemoteMover, plan_remote_migration

            coralogix = stack.enter_context(Coralogix.connect(registry.store))
            plan = plan_remote_migration(registry, coralogix, names or [], to, source)
            mover = RemoteMover(registry, coralogix)
        else:
            plan = plan_migration(registry, names or [], to, source)
        if dry_run:
            return out.result(plan.to_json(test), lambda: _print_plan(out, plan, test))
        outcome = Migrator(registry, progress=_progress(out), mover=mover).run(
            plan, test=test, fail_fast=fail_fast, resend_test=resend_test
        )

    def human() -> None:
        for failure in outcome.failed:
            err = failure["error"]
            out.info(f"{paint('✘', 'red', sys.stderr)} {failure['connector']}: {err['message']}")
            if err.get("hint"):
                out.info(f"  {err['hint']}")

    code = out.result(outcome.to_json(), human, exit_code=outcome.exit_code)
    out.info(
        f"{len(outcome.migrated)} migrated to {plan.target.name}{' in Coralogix' if remote else ''}, "
        f"{len(outcome.failed)} failed, {len(outcome.skipped)} already there, {len(outcome.remaining)} not attempted."
    )
    if outcome.unconfirmed:
        out.warn(f"Switched, but the confirming test's outcome was lost in an interruption (never sent twice): "
                 f"{', '.join(outcome.unconfirmed)}. Check them in Slack, or in Coralogix with Send test notification.")  # fmt: skip
    if outcome.failed:
        out.info(
            "Connectors that failed stay on their old integration and keep delivering; fix the cause and rerun."
        )
    if outcome.source_empty is not None:
        old = outcome.source_empty
        out.success(
            f"{old.name} has no connectors left. It can be removed: cxslack integrations remove {quote(old.name)} --yes"
        )
    return code


def _print_plan(out: Output, plan: Any, test: bool) -> None:
    out.lines(f"Plan: move {len(plan.to_move)} connector(s) to {plan.target.name} ({plan.target.version})"
              + (", each after a test notification through it" if test else ", without test notifications"))  # fmt: skip
    for connector in plan.to_move:
        out.lines(
            f"  → {connector.name} ({connector.id}) {channel_label(connector.channel)}"
            + ("  [test]" if test else "")
        )
    for connector in plan.already:
        out.lines(f"  = {connector.name} ({connector.id}) already on {plan.target.name}")
    out.info("Dry run: nothing was changed.")


def _print_status(out: Output, doc: dict[str, Any]) -> None:
    if doc["runs"] == 0:
        out.info("No migration has run yet.")
        return
    out.fields([
        ("Target", f"{doc['to_name'] or 'an integration removed since'} ({doc['to']})"),
        ("From", f"{doc['from_name'] or 'an integration removed since'} ({doc['from']})" if doc["from"] else "-"),
        ("Done", ", ".join(doc["done"]) or "-"),
        ("Failed", ", ".join(f["connector"] for f in doc["failed"]) or "-"),
        ("In doubt", ", ".join(f["connector"] for f in doc["in_doubt"]) or "-"),
        ("Remaining", ", ".join(doc["remaining"]) or "-"),
        *([("Moved since", ", ".join(doc["moved_since"]))] if doc.get("moved_since") else []),
    ])  # fmt: skip
    for doubt in doc["in_doubt"]:
        out.info(f"{doubt['connector']} in doubt: {doubt['error'].get('message', '')}")


def _progress(out: Output) -> Any:
    """A Rich progress bar on a terminal (stderr); nothing when piped or in JSON mode."""
    from cxslack.migration import Progress

    def waiting() -> None:
        out.info("Another `connectors migrate` is running; waiting for it to finish …")

    bar = out.progress("Migrating")

    def step(connector: "Item", what: str) -> None:
        bar.update(f"{connector.name}: {what}")

    def done(connector: "Item", result: str, error: CxError | None) -> None:
        bar.update(f"{connector.name}: {result}", advance=1)

    return Progress(start=bar.start, step=step, done=done, finish=bar.stop, waiting=waiting)
