"""`cxslack coralogix …`: which Coralogix account cxslack talks to, and with which keys."""

import os
import sys
from typing import Annotated

import typer

from cxslack.cli.common import OutputOpt, command_group
from cxslack.cli.render import Output, OutputFormat, is_interactive
from cxslack.errors import UsageError

app = command_group(
    "Connect cxslack to Coralogix: region and keys, named as Coralogix's own cx CLI names them."
)

RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        metavar="REGION|URL",
        help="eu1 eu2 us1 us2 us3 ap1 ap2 ap3, or a custom environment's https:// API URL.",
    ),
]
LABELS = {
    "region": "Region",
    "api_url": "API URL",
    "ingress_url": "Ingress URL",
    "team_id": "Team id",
    "profile": "cx profile",
    "api_key": "API key",
    "send_key": "Send-Your-Data key",
}
# Settings from the environment win over what `configure` stores, as in the cx CLI.
OVERRIDING_ENV = ("CX_REGION", "CX_API_KEY", "CX_SEND_KEY", "CX_PROFILE", "CX_TEAM_ID")


@app.command("configure")
def configure(
    region: RegionOpt = None,
    api_key_stdin: Annotated[
        bool, typer.Option("--api-key-stdin", help="Read the API key from stdin (for scripts).")
    ] = False,
    send_key_stdin: Annotated[
        bool,
        typer.Option(
            "--send-key-stdin",
            help="Read the Send-Your-Data key (log ingestion) from stdin; after the API key when both.",
        ),
    ] = False,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            metavar="NAME",
            help="cx profile to fall back to for what is not stored (~/.cx/profiles/NAME.toml).",
        ),
    ] = None,
    team_id: Annotated[
        str | None,
        typer.Option(
            "--team-id",
            metavar="ID",
            help="The Coralogix team whose members Slack users act as on Case buttons (a number).",
        ),
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Store the Coralogix region, team id and keys: region and team id in config.toml, keys only
    in credentials.toml.

    Keys never come from a flag's value: on a terminal they are asked for with hidden input.

    Scripts pass them on stdin, one per line (the API key first when both flags are given).

    CX_REGION, CX_API_KEY, CX_SEND_KEY, CX_PROFILE and CX_TEAM_ID, when set, win over what is
    stored here.
    """
    from cxslack.coralogix.config import REGIONS, save_settings
    from cxslack.store import Store

    out = Output(output)
    store = Store()
    api_key = sys.stdin.readline() if api_key_stdin else None
    send_key = sys.stdin.readline() if send_key_stdin else None
    if is_interactive():
        current = store.read_config().get("coralogix", {})
        if region is None:
            region = str(
                typer.prompt(
                    f"Coralogix region ({' '.join(REGIONS)}) or https:// URL",
                    default=current.get("region") or None,
                    err=True,
                )
            )
        if team_id is None:
            stored_team = current.get("team_id")
            answer = typer.prompt(
                "Coralogix team id, for Case buttons in Slack (optional; Enter leaves it as it is)",
                default=str(stored_team) if stored_team else "",
                show_default=bool(stored_team),
                err=True,
            )
            team_id = str(answer).strip() or None
        if api_key is None:
            api_key = _ask_secret("Coralogix API key")
        if send_key is None:
            send_key = _ask_secret("Send-Your-Data key for log ingestion (optional)")
    elif (region, profile, api_key, send_key, team_id) == (None, None, None, None, None):
        raise UsageError(
            "missing_value",
            "nothing to configure: pass --region, --team-id, --api-key-stdin, --send-key-stdin or --profile",
            "Run it on a terminal to be asked, or see: cxslack coralogix configure --help",
        )
    stored = save_settings(
        store, region=region, profile=profile, api_key=api_key, send_key=send_key, team_id=team_id
    )
    doc = {"coralogix": stored.to_json()}
    out.emit(doc, lambda: out.fields([(LABELS[k], str(v or "-")) for k, v in doc["coralogix"].items()]))
    if not stored.api_key_stored and not os.environ.get("CX_API_KEY"):
        out.warn("No API key stored: pass --api-key-stdin, or set CX_API_KEY.")
    for name in OVERRIDING_ENV:
        if os.environ.get(name):
            out.warn(f"{name} is set in the environment and wins over the stored setting.")
    out.success("Coralogix settings saved.")


def _ask_secret(question: str) -> str | None:
    """A hidden prompt; Enter keeps the stored value."""
    answer = typer.prompt(
        f"{question} (input hidden; Enter leaves it as it is)",
        default="",
        show_default=False,
        hide_input=True,
        err=True,
    )
    return str(answer) or None


@app.command("show")
def show(
    region: RegionOpt = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", metavar="NAME", help="cx profile to read (~/.cx/profiles/NAME.toml)."),
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Show the Coralogix connection cxslack would use and where each value comes from (keys masked).

    Precedence: flags > environment (CX_REGION, CX_API_KEY, CX_TEAM_ID, …) > `configure` > the cx
    profile.
    """
    from cxslack.coralogix.config import NOT_SET, resolve_settings
    from cxslack.redact import mask

    out = Output(output)
    settings = resolve_settings(region=region, profile=profile)
    cx = settings.cx_profile
    values = {
        "region": settings.region,
        "api_url": settings.api_url,
        "ingress_url": settings.ingress_url,
        "team_id": settings.team_id,
        "api_key": mask(settings.api_key) if settings.api_key else None,
        "send_key": mask(settings.send_key) if settings.send_key else None,
        "profile": cx.name if cx else None,
    }
    origins = dict(settings.origins)
    if cx:
        origins["profile"] += f", {cx.path}{'' if cx.path.is_file() else ' (not found)'}"

    def human() -> None:
        out.fields([(LABELS[k], f"{v}  ({origins[k]})" if v else NOT_SET) for k, v in values.items()])

    out.emit({"coralogix": {**values, "sources": origins}}, human)
