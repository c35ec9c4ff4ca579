"""`cxslack connectors pull | plan | push`: the local store against Coralogix Notification Center.

Registered on the `connectors` group by cli/connectors.py. Parse, call `cxslack.remote`, render.
"""

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cxslack.cli.common import OutputOpt, YesOpt, confirm_or_require_yes
from cxslack.cli.render import Output, OutputFormat, ProgressBar, paint
from cxslack.errors import batch_exit_code

if TYPE_CHECKING:
    from cxslack.registry import Registry
    from cxslack.remote import Coralogix
    from cxslack.remote.plan import Change, Plan

NamesArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Only these connectors (name or id, local or in Coralogix); default: all.", show_default=False
    ),
]
PruneOpt = Annotated[
    bool,
    typer.Option("--prune", help="Also delete Slack connectors that exist in Coralogix but not locally."),
]
MARKS = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}
LINK_HINT = "cxslack integrations list --remote; then: cxslack integrations edit NAME --coralogix-id ID"


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def pull(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; change nothing.")
    ] = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> int:
    """Bring every Slack connector of the Coralogix account into the local store (create or update by id).

    Each connector's integrationId is mapped to the local integration linked to it
    (`integrations edit NAME --coralogix-id ID`); one that matches no link is reported, not
    guessed, and not pulled (exit 5). Local-only connectors are kept and listed.
    """
    from cxslack.registry import Registry
    from cxslack.remote import Coralogix
    from cxslack.remote.sync import pull as pull_connectors

    out = Output(output)
    registry = Registry()
    with Coralogix.connect(registry.store) as coralogix:
        remote = coralogix.nc.list_connectors()
    result = pull_connectors(registry, remote, dry_run=dry_run)

    def human() -> None:
        for ident in result.created:
            out.lines(f"{paint('+', 'green', sys.stdout)} {ident}")
        for ident, fields in result.updated:
            out.lines(f"{paint('~', 'yellow', sys.stdout)} {ident}")
            for change in fields:
                out.lines(f"    {change.field}: {_show(change.before)} -> {_show(change.after)}")

    not_pulled = len(result.unmatched) + len(result.skipped)
    code = out.result(result.to_json(), human, exit_code=batch_exit_code(not_pulled, not_pulled + (
        len(result.created) + len(result.updated) + len(result.unchanged))))  # fmt: skip
    verb = "Would pull" if dry_run else "Pulled"
    out.info(f"{verb} {len(remote)} Slack connector(s) from Coralogix: {len(result.created)} new, "
             f"{len(result.updated)} changed, {len(result.unchanged)} unchanged.")  # fmt: skip
    if result.local_only:
        out.info(f"Only in the local store (kept): {', '.join(result.local_only)}. Create them in Coralogix with: "
                 "cxslack connectors push")  # fmt: skip
    if result.gone:
        out.warn(f"No longer in Coralogix (kept locally): {', '.join(result.gone)}. Recreate them with "
                 "cxslack connectors push, or remove them with cxslack connectors remove NAME.")  # fmt: skip
    for item in result.unmatched:
        out.warn(f"{item['connector']} ({item['name']}) was not pulled: its integrationId {item['integrationId']} "
                 "is linked to no local integration.")  # fmt: skip
    if result.unmatched:
        out.info(f"Link it: {LINK_HINT}")
    for item in result.skipped:
        out.warn(f"{item['connector']} ({item['name']}) was not pulled: {item['reason']}.")
    if dry_run:
        out.info("Dry run: nothing was changed.")
    return code


def _plan(registry: "Registry", coralogix: "Coralogix", names: list[str], prune: bool) -> "Plan":
    from cxslack.connectors import parse_connectors
    from cxslack.remote.plan import make_plan

    remote = coralogix.nc.list_connectors()
    view = registry.view()
    local = parse_connectors(view, registry.store.paths.config_file)
    return make_plan(view, local, remote, names, prune=prune)


def print_plan(out: Output, plan: "Plan") -> None:
    stream = sys.stdout
    for change in plan.changes:
        mark, style = MARKS[change.action]
        out.lines(f"{paint(mark, style, stream)} {change.connector}  {change.name}")
        for field in change.fields:
            if change.action == "update":
                out.lines(
                    f"    {paint('~', style, stream)} {field.field}: {_show(field.before)} -> {_show(field.after)}"
                )
            else:
                value = field.after if change.action == "create" else field.before
                out.lines(f"    {paint(mark, style, stream)} {field.field}: {_show(value)}")
    summary = plan.summary
    if plan.changes:
        out.lines(f"\nPlan: {summary['create']} to create, {summary['update']} to change, "
                  f"{summary['delete']} to delete; {summary['unchanged']} unchanged.")  # fmt: skip
    else:
        out.lines(f"No changes: Coralogix matches the local store ({summary['unchanged']} connector(s)).")


def plan(
    names: NamesArg = None,
    prune: PruneOpt = False,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help="Exit 0 when there are no changes, 2 when there are, 1 on any error (Terraform's meaning).",
        ),
    ] = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> int:
    """What pushing would change in Coralogix, connector by connector and field by field.

    + create, ~ update (old -> new), - delete (only with --prune). Compared the way Coralogix's
    Terraform provider does: createTime, updateTime, teamId and diagnostics ignored, config
    fields and overrides compared as sets. Exit 0; with --detailed-exitcode 0 no changes,
    2 changes, 1 error.
    """
    from cxslack.registry import Registry
    from cxslack.remote import Coralogix

    out = Output(output)
    registry = Registry()
    with Coralogix.connect(registry.store) as coralogix:
        found = _plan(registry, coralogix, names or [], prune)
    code = out.result(
        found.to_json(),
        lambda: print_plan(out, found),
        exit_code=2 if detailed_exitcode and found.changes else 0,
    )
    if found.remote_only:
        out.info(f"{len(found.remote_only)} Slack connector(s) exist only in Coralogix: {', '.join(found.remote_only[:10])}"
                 f"{' …' if len(found.remote_only) > 10 else ''} (pull them, or --prune to delete them).")  # fmt: skip
    return code


def push(
    names: NamesArg = None,
    prune: PruneOpt = False,
    yes: YesOpt = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Overwrite connectors that changed in Coralogix since the last pull."),
    ] = False,
    workers: Annotated[int, typer.Option("--workers", help="Connectors written at once.", min=1, max=16)] = 4,
    output: OutputOpt = OutputFormat.TABLE,
) -> int:
    """Apply the plan to Coralogix: POST new connectors, PUT changed ones (whole), DELETE only with --prune.

    Right before each PUT the connector is read again; one that changed in Coralogix since the last
    pull is refused (exit 1, named) unless --force. When some changes fail, it exits 5 and says
    which were applied.
    """
    from cxslack.cli.connectors import warn_routing
    from cxslack.registry import Registry
    from cxslack.remote import Coralogix
    from cxslack.remote.sync import Pusher, refuse_stale

    out = Output(output)
    registry = Registry()
    with Coralogix.connect(registry.store) as coralogix:
        found = _plan(registry, coralogix, names or [], prune)
        if not found.changes:
            Pusher(registry, coralogix).heal(found)
            return out.result({"applied": [], "refused": [], "failed": [], "summary": found.summary},
                              lambda: print_plan(out, found))  # fmt: skip
        if not out.json:
            print_plan(out, found)
        if not force:
            refuse_stale(found)  # before anything changes, and before asking
        deleted = {c.connector for c in found.changes if c.action == "delete"}
        if deleted:
            warn_routing(out, registry, deleted)
        confirm_or_require_yes(f"Apply {len(found.changes)} change(s) to Coralogix?", yes)
        bar, on_done = _progress(out, found)
        try:
            result = Pusher(registry, coralogix, force=force, workers=workers, on_done=on_done).push(found)
        finally:
            bar.stop()
    not_applied = len(result.refused) + len(result.failed)
    code = out.result({**result.to_json(), "summary": found.summary}, lambda: None,
                      exit_code=batch_exit_code(not_applied, not_applied + len(result.applied)))  # fmt: skip
    applied = [f"{a['connector']} ({a['action']}d)" for a in result.applied]
    if applied:
        out.success(f"Applied {len(applied)}: {', '.join(applied)}.")
    for refused in result.refused:
        out.warn(f"{refused['connector']} not pushed: {refused['reason']}.")
    if result.refused:
        out.info("See what changed: cxslack connectors pull --dry-run; then pull, or push --force.")
    for failed in result.failed:
        out.info(
            f"{paint('✘', 'red', sys.stderr)} {failed['connector']} ({failed['action']}): {failed['error']['message']}"
        )
    return code


def _progress(out: Output, found: "Plan") -> "tuple[ProgressBar, Callable[[Change, str], None]]":
    """The one progress bar (stderr, terminal only), advanced as each connector is written."""
    bar = out.progress("Pushing")
    bar.start(len(found.changes))

    def on_done(change: "Change", outcome: str) -> None:
        bar.update(f"{change.connector}: {outcome}", advance=1)

    return bar, on_done
