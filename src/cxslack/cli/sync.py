"""`cxslack sync`: two-way comment sync by polling, for cron and CI (no listener needed)."""

from typing import Annotated

import typer

from cxslack.cli.common import OutputOpt, StateUrlOpt, single_command
from cxslack.cli.render import Output, OutputFormat

app = single_command()


@app.command()
def sync(
    cases: Annotated[
        list[str] | None,
        typer.Argument(help="Only these Cases (default: every tracked thread).", show_default=False),
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
    state_url: StateUrlOpt = None,
) -> None:
    """Copy new Slack replies in Case notification threads into the Case timelines.

    Reads conversations.replies from each thread's checkpoint, so every reply is synced once,
    whether it arrived here or through `cxslack listen`.
    """
    from cxslack.cases.twoway import ReplySync
    from cxslack.coralogix.client import CoralogixClient, check_case_id
    from cxslack.coralogix.config import resolve_settings
    from cxslack.oauth.flow import bot_access
    from cxslack.registry import Registry

    out = Output(output)
    wanted = {check_case_id(c) for c in cases or []} or None
    registry = Registry()
    counts = {"comment": 0, "edit": 0, "delete": 0, "skipped": 0}
    synced: list[dict[str, str | None]] = []
    with CoralogixClient(resolve_settings(store=registry.store)) as coralogix:
        for integration in registry.view().integrations.values():
            if not ReplySync.enabled_for(integration):
                continue
            for result in ReplySync(registry, integration, bot_access(registry, integration), coralogix).poll(
                wanted
            ):
                counts[result.action] += 1
                if result.action != "skipped":
                    synced.append(
                        {"case": result.case, "case_name": result.case_name, "action": result.action}
                    )
    out.emit({"synced": synced, "counts": counts}, lambda: None)
    out.success(
        f"{counts['comment']} new comment(s) synced into Cases ({counts['skipped']} replies already synced or skipped)."
    )
