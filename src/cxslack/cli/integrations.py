"""`cxslack integrations …`: add, list, show, edit and remove Slack integrations."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cxslack.cli.common import (
    OutputOpt,
    YesOpt,
    command_group,
    confirm_or_require_yes,
    prompt_or_require,
    seconds_option,
)
from cxslack.cli.render import Column, Output, OutputFormat, is_interactive, style_status, when
from cxslack.errors import UsageError
from cxslack.model import CURRENT_VERSION, FUNCTIONALITY_LABEL, Integration
from cxslack.registry import IntegrationChanges, NewIntegration, Registry, quote

app = command_group("Add, authorize, list, show, edit and remove Slack integrations.")

if TYPE_CHECKING:
    from cxslack.oauth.flow import AuthorizeOptions

NameArg = Annotated[
    str, typer.Argument(help="Integration name (case-insensitive) or id.", show_default=False)
]


# The OAuth flow's options, shared by `integrations authorize` and `integrations add --authorize`.
RedirectUriOpt = Annotated[
    str | None,
    typer.Option(
        "--redirect-uri",
        help="OAuth redirect URI: https:// on localhost, 127.0.0.1 or [::1] (default "
        "https://localhost:8976/slack/oauth/callback), or http://127.0.0.1:PORT/... for PKCE apps. Slack "
        "requires it to be registered exactly as a Redirect URL in the app's OAuth settings.",
    ),
]
NoBrowserOpt = Annotated[
    bool, typer.Option("--no-browser", help="Print the authorize URL on stderr instead of opening a browser.")
]
PasteOpt = Annotated[
    bool, typer.Option("--paste", help="Read the redirected URL from stdin (a browser on another machine).")
]
PkceOpt = Annotated[
    bool,
    typer.Option(
        "--pkce",
        help="PKCE public client: S256 challenge, no client secret. Slack allows it only for flows "
        "without bot scopes (an access-logs-only integration).",
    ),
]
CHANNEL_LOOKUP_HELP = (
    "Also request channels:read and groups:read (cxslack's own, not the product page's) to look "
    "channels up by name: doctor's channel checks. Everything works without them."
)
EVALUATION_CHART_HELP = (
    "Share the alert evaluation chart (the alert's series, threshold and trigger) into each Case "
    "notification's thread (v0.1.0; requests files:write; draws with the charts extra)."
)
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        help="Seconds to wait for the browser to come back.",
        callback=seconds_option(),
        metavar="SECONDS",
    ),
]
CoralogixIdOpt = Annotated[
    str | None,
    typer.Option(
        "--coralogix-id",
        metavar="ID",
        help="Link to this Slack integration deployed in Coralogix (see `integrations list --remote`): "
        "export, push, pull and migrate --remote translate connectors' integrationId through it.",
        show_default=False,
    ),
]


def integration_json(integration: Integration, connectors: int) -> dict:
    return integration.to_json(connectors)


def show_integration(out: Output, integration: Integration, connectors: list[tuple[str, str]]) -> None:
    ws = integration.workspace
    status = integration.status.value.capitalize()
    if integration.status_reason:
        status += f" ({integration.status_reason})"
    out.fields(
        [
            ("Name", integration.name),
            ("ID", integration.id),
            ("Status", status),
            ("Version", integration.version),
            ("Functionality", ", ".join(FUNCTIONALITY_LABEL[f] for f in integration.functionality)),
            ("Two-way comment sync", "on" if integration.two_way_sync else "off"),
            ("Rich link previews", "on" if integration.link_previews else "off"),
            ("Channel lookup", "on" if integration.channel_lookup else "off"),
            ("Alert evaluation chart", "on" if integration.evaluation_chart else "off"),
            ("Workspace", f"{ws.team_name} ({ws.team_id})" if ws else "-"),
            ("Bot user", integration.bot_user_id or "-"),
            ("Requested scopes", ", ".join(integration.requested_scopes)),
            ("Granted scopes", ", ".join(integration.granted_scopes) or "-"),
            ("Coralogix integration", integration.coralogix_id or "not linked"),
            ("Connectors", ", ".join(name for _, name in connectors) or "none"),
            ("Created", integration.created_at),
            ("Updated", integration.updated_at),
        ]
    )


@app.command("add")
def add(
    name: Annotated[
        str | None, typer.Option("--name", help="Integration name (unique, case-insensitive).")
    ] = None,
    notifications: Annotated[
        bool,
        typer.Option(
            "--notifications/--no-notifications", help="Application functionality: Send notifications."
        ),
    ] = True,
    access_logs: Annotated[
        bool,
        typer.Option(
            "--access-logs/--no-access-logs", help="Application functionality: Collect access logs."
        ),
    ] = False,
    two_way_sync: Annotated[
        bool,
        typer.Option(
            "--two-way-sync/--no-two-way-sync",
            help="Slack thread replies become Case timeline comments (v0.1.0, needs notifications).",
        ),
    ] = False,
    link_previews: Annotated[
        bool | None,
        typer.Option(
            "--link-previews/--no-link-previews",
            help="Rich previews for Coralogix Case URLs (v0.1.0). Default: on when the version allows it.",
            show_default=False,
        ),
    ] = None,
    channel_lookup: Annotated[bool, typer.Option("--channel-lookup", help=CHANNEL_LOOKUP_HELP)] = False,
    evaluation_chart: Annotated[
        bool, typer.Option("--evaluation-chart/--no-evaluation-chart", help=EVALUATION_CHART_HELP)
    ] = False,
    consent: Annotated[
        bool,
        typer.Option(
            "--consent-us-data-transfer",
            help="Consent to U.S. data transfer (required; asked on a terminal).",
        ),
    ] = False,
    version: Annotated[
        str,
        typer.Option(
            "--integration-version",
            help="Integration version; register an earlier one (e.g. 0.0.9) to model an existing integration.",
        ),
    ] = CURRENT_VERSION,
    authorize: Annotated[
        bool | None,
        typer.Option(
            "--authorize/--no-authorize",
            help="Install the Slack app right away (default: on a terminal). See `integrations authorize`.",
            show_default=False,
        ),
    ] = None,
    redirect_uri: RedirectUriOpt = None,
    no_browser: NoBrowserOpt = False,
    paste: PasteOpt = False,
    pkce: PkceOpt = False,
    timeout: TimeoutOpt = 300.0,
    coralogix_id: CoralogixIdOpt = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Add a Slack integration; it is Pending until the Slack app is authorized (--authorize)."""
    out = Output(output)
    name = prompt_or_require(name, "Integration name", "--name")
    if not consent:
        if not is_interactive():
            raise UsageError(
                "consent_required",
                "the Slack integration requires consent to U.S. data transfer",
                "Pass --consent-us-data-transfer to confirm it.",
            )
        consent = typer.confirm("Consent to U.S. data transfer?", default=False, err=True)
    if authorize is None:
        authorize = is_interactive()
    # how the browser part happens is settled before anything is created
    options = authorize_options(out, redirect_uri, no_browser, paste, pkce, timeout) if authorize else None
    if pkce and authorize and notifications:  # refused before anything is created, as `authorize` would
        from cxslack.model import Functionality
        from cxslack.oauth.flow import refuse_pkce_with_bot_scopes

        functionality = [Functionality.NOTIFICATIONS, *([Functionality.ACCESS_LOGS] if access_logs else [])]
        refuse_pkce_with_bot_scopes(
            Integration(id="", name=name, version=version, functionality=functionality), from_settings=False
        )
    registry = Registry()
    integration = registry.add(
        NewIntegration(
            name=name,
            notifications=notifications,
            access_logs=access_logs,
            two_way_sync=two_way_sync,
            link_previews=link_previews,
            channel_lookup=channel_lookup,
            evaluation_chart=evaluation_chart,
            consent_us_data_transfer=consent,
            version=version,
            coralogix_id=coralogix_id,
        )
    )
    out.success(f"Created integration {integration.name} ({integration.version}), status Pending.")
    if options is not None:
        integration = run_authorize(out, integration.id, options)
    shown = integration
    out.emit({"integration": integration_json(shown, 0)}, lambda: show_integration(out, shown, []))
    if not authorize:
        out.info(
            f"Next: install the Slack app with: cxslack integrations authorize {quote(integration.name)}"
        )


def authorize_options(out: Output, redirect_uri: str | None, no_browser: bool, paste: bool, pkce: bool,
                      timeout: float, tls_cert: Path | None = None, tls_key: Path | None = None
                      ) -> "AuthorizeOptions":  # fmt: skip
    """How this run reaches a browser. A CI job that did not say would wait --timeout seconds for
    a browser nobody opens: it is refused at once instead."""
    from cxslack.cli.render import in_ci
    from cxslack.oauth.flow import AuthorizeOptions

    if not (no_browser or paste):
        if in_ci():
            raise UsageError(
                "browser_unavailable",
                "authorizing needs a browser, and this is a CI job (CI is set), so none will be opened",
                "Pass --no-browser (the URL is printed on stderr; open it elsewhere within --timeout) "
                "or --paste (paste the redirected URL on stdin).",
            )
        if not is_interactive():
            out.info("No terminal: not opening a browser (as with --no-browser).")
            no_browser = True
    return AuthorizeOptions(redirect_uri=redirect_uri, pkce=pkce, open_browser=not (no_browser or paste),
                            paste=paste, timeout=timeout, tls_cert=tls_cert, tls_key=tls_key)  # fmt: skip


def run_authorize(out: Output, ref: str, options: "AuthorizeOptions") -> Integration:
    """The OAuth install, with the person-facing parts: URL on stderr, browser, paste prompt."""
    import webbrowser

    from cxslack.oauth.flow import FlowIO, authorize
    from cxslack.scopes import FEATURE_CONSEQUENCE

    def announce(url: str) -> None:
        if options.open_browser:
            out.info("Authorize the Coralogix Slack app in your browser (opening it now):")
        else:
            out.info("Open this URL in a browser and select Allow:")
        out.info(url)  # on a line of its own, so it can be copied or scripted
        if options.paste:
            out.info("Then paste the full URL the browser was sent to (its address bar), and press Enter.")
        else:
            out.info("Waiting for Slack to redirect back …")

    def read_paste() -> str:
        if is_interactive():
            return str(typer.prompt("Redirected URL", err=True))
        return sys.stdin.readline()

    io = FlowIO(announce=announce, open_url=webbrowser.open, read_paste=read_paste)
    outcome = authorize(Registry(), ref, options, io)
    integration = outcome.integration
    ws = integration.workspace
    where = f"{ws.team_name} ({ws.team_id})" if ws else "the workspace"
    out.success(f"Slack app installed in {where}: {integration.name} is Active.")
    for feature, scopes in outcome.declined.items():
        verb = "was" if len(scopes) == 1 else "were"
        out.warn(f"{', '.join(scopes)} {verb} declined, so {FEATURE_CONSEQUENCE[feature]}.")
    if outcome.declined:
        out.info(f"To grant them, authorize again: cxslack integrations authorize {quote(integration.name)}")
    return integration


@app.command("authorize")
def authorize_cmd(
    name: NameArg,
    channel_lookup: Annotated[
        bool | None,
        typer.Option(
            "--channel-lookup/--no-channel-lookup",
            help="Turn channel lookup on (or off) before installing. " + CHANNEL_LOOKUP_HELP,
            show_default=False,
        ),
    ] = None,
    redirect_uri: RedirectUriOpt = None,
    no_browser: NoBrowserOpt = False,
    paste: PasteOpt = False,
    pkce: PkceOpt = False,
    timeout: TimeoutOpt = 300.0,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert", help="Certificate for the https callback (e.g. from mkcert).", dir_okay=False
        ),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="Key for --tls-cert.", dir_okay=False)
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Install (or reinstall) the Coralogix Slack app for an integration through Slack OAuth.

    On a terminal it opens the browser. In CI (`CI` set) say how the browser part happens:
    --no-browser (the URL is printed; open it elsewhere within --timeout) or --paste. Without a
    terminal otherwise, it behaves as --no-browser and says so.
    """
    out = Output(output)
    options = authorize_options(out, redirect_uri, no_browser, paste, pkce, timeout, tls_cert, tls_key)
    if channel_lookup is not None:
        Registry().edit(name, IntegrationChanges(channel_lookup=channel_lookup))
    integration = run_authorize(out, name, options)
    connectors = Registry().view().connectors_of(integration.id)
    out.emit(
        {"integration": integration_json(integration, len(connectors))},
        lambda: show_integration(out, integration, connectors),
    )


@app.command("list")
def list_(
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="The Slack integrations deployed in the Coralogix account: id, version, status "
            "(Coralogix's messages when Failing), last updated, and the local integration linked to each.",
        ),
    ] = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """List integrations with status, version, functionality and connectors."""
    out = Output(output)
    if remote:
        _list_remote(out)
        return
    view = Registry().view()
    counts = view.connector_counts()
    integrations = sorted(view.integrations.values(), key=lambda i: i.name.casefold())
    if out.json:
        out.emit({"integrations": [integration_json(i, counts.get(i.id, 0)) for i in integrations]})
        return
    if not integrations:
        out.info(
            "No integrations yet. Add one with: cxslack integrations add --name NAME --consent-us-data-transfer"
        )
        return
    rows = [
        [
            i.name,
            i.status.value.capitalize(),
            i.version,
            ", ".join(FUNCTIONALITY_LABEL[f] for f in i.functionality),
            str(counts.get(i.id, 0)),
            when(i.updated_at),
            (when(str(i.extra.get("access_logs_last_collected") or "")) or "never")
            if i.collects_access_logs
            else "-",
            i.id,
        ]
        for i in integrations
    ]
    out.table(
        [
            Column("Integration Name"),
            Column("Status", style=lambda s: style_status(s.lower())),
            Column("Integration Version", drop=3),
            Column("Application Functionality", drop=2),
            Column("Connectors", drop=4),
            Column("Last Updated", drop=5),
            Column("Access Logs", drop=6),
            Column("ID", key=True),
        ],
        rows,
    )


def _list_remote(out: Output) -> None:
    from cxslack.remote import Coralogix
    from cxslack.remote.links import overview

    registry = Registry()
    with Coralogix.connect(registry.store) as coralogix:
        instances = coralogix.integrations.slack_instances()
    found = overview(registry.view(), instances)
    if out.json:
        out.emit(found.to_json())
        return
    if not found.instances:
        out.info(
            "Coralogix has no Slack integration deployed. Add one in Coralogix: Data Flow → Integrations → Slack."
        )
    else:
        out.table(
            [
                Column("ID", key=True),
                Column("Integration Version"),
                Column("Status", style=lambda s: style_status(s.lower())),
                Column("Last Updated", drop=2),
                Column("Linked To"),
                Column("Messages", drop=1),
            ],
            [
                [
                    r.id,
                    r.version,
                    r.status.capitalize(),
                    when(r.last_updated),
                    local.name if local else "-",
                    "; ".join(r.messages) or "-",
                ]
                for r, local in found.instances
            ],  # fmt: skip
        )
    unlinked = [r for r, local in found.instances if local is None]
    if unlinked:
        out.info(
            f"Link one to a local integration with: cxslack integrations edit NAME --coralogix-id {unlinked[0].id} "
            "(or add it: cxslack integrations add --name NAME --coralogix-id ID --no-authorize --consent-us-data-transfer)"
        )
    for missing in found.missing:
        out.warn(
            f"{missing.name} is linked to Coralogix integration {missing.coralogix_id}, which Coralogix no longer has: "
            f"cxslack integrations edit {quote(missing.name)} --unlink-coralogix"
        )


@app.command("show")
def show(name: NameArg, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Show one integration in full: status and reason, features, workspace, scopes, connectors."""
    out = Output(output)
    view = Registry().view()
    integration = view.find(name)
    connectors = view.connectors_of(integration.id)
    out.emit(
        {"integration": integration_json(integration, len(connectors))},
        lambda: show_integration(out, integration, connectors),
    )


@app.command("edit")
def edit(
    name: NameArg,
    new_name: Annotated[str | None, typer.Option("--name", help="Rename the integration.")] = None,
    notifications: Annotated[
        bool | None,
        typer.Option("--notifications/--no-notifications", help="Send notifications.", show_default=False),
    ] = None,
    access_logs: Annotated[
        bool | None,
        typer.Option("--access-logs/--no-access-logs", help="Collect access logs.", show_default=False),
    ] = None,
    two_way_sync: Annotated[
        bool | None,
        typer.Option("--two-way-sync/--no-two-way-sync", help="Two-way comment sync.", show_default=False),
    ] = None,
    link_previews: Annotated[
        bool | None,
        typer.Option("--link-previews/--no-link-previews", help="Rich link previews.", show_default=False),
    ] = None,
    channel_lookup: Annotated[
        bool | None,
        typer.Option("--channel-lookup/--no-channel-lookup", help=CHANNEL_LOOKUP_HELP, show_default=False),
    ] = None,
    evaluation_chart: Annotated[
        bool | None,
        typer.Option(
            "--evaluation-chart/--no-evaluation-chart", help=EVALUATION_CHART_HELP, show_default=False
        ),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--integration-version",
            help=f"Upgrade the integration (e.g. to {CURRENT_VERSION}); needs re-authorizing.",
        ),
    ] = None,
    webhook_url_stdin: Annotated[
        bool,
        typer.Option(
            "--webhook-url-stdin",
            help="Read an incoming-webhook URL from stdin (earlier-version integrations that deliver through one).",
        ),
    ] = False,
    coralogix_id: CoralogixIdOpt = None,
    unlink_coralogix: Annotated[
        bool, typer.Option("--unlink-coralogix", help="Forget the link to the Coralogix integration.")
    ] = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Change an integration's name, functionality, notification settings, version or webhook."""
    out = Output(output)
    registry = Registry()
    changes = IntegrationChanges(
        name=new_name,
        notifications=notifications,
        access_logs=access_logs,
        two_way_sync=two_way_sync,
        link_previews=link_previews,
        channel_lookup=channel_lookup,
        evaluation_chart=evaluation_chart,
        version=version,
        coralogix_id="" if unlink_coralogix else coralogix_id,
    )
    if unlink_coralogix and coralogix_id is not None:
        raise UsageError("usage_error", "--coralogix-id and --unlink-coralogix contradict each other")
    warnings: list[str] = []
    if webhook_url_stdin:
        integration = registry.set_webhook(name, sys.stdin.readline().strip())
        out.success(f"Stored the incoming-webhook URL for {integration.name}.")
    if not webhook_url_stdin or not changes.is_empty():
        integration, warnings = registry.edit(name, changes)
    view = registry.view()
    connectors = view.connectors_of(integration.id)
    out.emit(
        {"integration": integration_json(integration, len(connectors))},
        lambda: show_integration(out, integration, connectors),
    )
    out.success(f"Updated integration {integration.name}.")
    for warning in warnings:
        out.warn(warning)


@app.command("remove")
def remove(name: NameArg, yes: YesOpt = False, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Remove an integration and its connectors (routing that used them stops delivering)."""
    out = Output(output)
    registry = Registry()
    plan = registry.plan_removal(name)
    if plan.connectors:
        names = ", ".join(n for _, n in plan.connectors)
        out.warn(
            f"{plan.integration.name} still has {len(plan.connectors)} connector(s): {names}. Removing it removes them "
            "too, and Case notification settings and Notification Center routing rules that use them stop delivering."
        )
    from cxslack.cli.connectors import warn_routing

    rules = warn_routing(
        out, registry, {i for i, _ in plan.connectors}, through=plan.integration.coralogix_id
    )
    confirm_or_require_yes(f"Remove integration {plan.integration.name}?", yes)
    removal = registry.remove(plan.integration.id)
    out.emit(
        {
            "removed": {
                "integration": removal.integration.id,
                "connectors": [i for i, _ in removal.connectors],
                "routing_rules": [r.to_json() for r in rules],
            }
        },
        lambda: None,
    )
    out.success(
        f"Removed integration {removal.integration.name}"
        + (f" and connector(s) {', '.join(n for _, n in removal.connectors)}." if removal.connectors else ".")
    )
