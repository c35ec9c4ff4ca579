"""`cxslack app …`: the Slack app's credentials, and a manifest to create the app with."""

import sys
from enum import StrEnum
from typing import Annotated

import typer

from cxslack.cli.common import OutputOpt, command_group
from cxslack.cli.render import Output, OutputFormat, is_interactive, write_json, write_yaml
from cxslack.errors import UsageError

app = command_group("Configure the Slack app's credentials and print its manifest.")


@app.command("configure")
def configure(
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="The Slack app's client id (Basic Information).")
    ] = None,
    secret_stdin: Annotated[
        bool,
        typer.Option(
            "--client-secret-stdin",
            help="Read the client secret from stdin (for scripts); on a terminal it is prompted for.",
        ),
    ] = False,
    redirect_uri: Annotated[
        str | None,
        typer.Option(
            "--redirect-uri", help="The redirect URL registered in the Slack app (default for authorize)."
        ),
    ] = None,
    pkce: Annotated[
        bool | None,
        typer.Option(
            "--pkce/--no-pkce", help="The app is a PKCE public client (no client secret).", show_default=False
        ),
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Store the Slack app's client id and secret (the secret goes to credentials.toml, never to a flag).

    CXSLACK_SLACK_CLIENT_ID and CXSLACK_SLACK_CLIENT_SECRET, when set, win over what is stored.
    """
    from cxslack.oauth.redirect import parse_redirect_uri
    from cxslack.redact import register_secret
    from cxslack.store import Store

    out = Output(output)
    store = Store()
    current = store.read_config().get("app", {})
    is_pkce = pkce if pkce is not None else bool(current.get("pkce"))
    if redirect_uri is not None:
        parse_redirect_uri(redirect_uri, pkce=is_pkce)
    if client_id is None and not current.get("client_id"):
        if not is_interactive():
            raise UsageError("missing_value", "--client-id is required when not running on a terminal")
        client_id = str(typer.prompt("Slack app client id", err=True))
    secret: str | None = None
    if secret_stdin:
        secret = sys.stdin.readline().strip()
    elif is_interactive() and not is_pkce:
        secret = str(
            typer.prompt("Slack app client secret (input hidden)", hide_input=True, err=True)
        ).strip()
    if secret is not None:
        if not secret:
            raise UsageError("invalid_secret", "the client secret is empty")
        register_secret(secret)
    with store.transaction() as docs:
        settings = docs.config.setdefault("app", {})
        if client_id is not None:
            settings["client_id"] = client_id.strip()
        if redirect_uri is not None:
            settings["redirect_uri"] = redirect_uri
        if pkce is not None:
            settings["pkce"] = pkce
        if secret is not None:
            docs.credentials.setdefault("app", {})["client_secret"] = secret
        has_secret = bool(docs.credentials.get("app", {}).get("client_secret"))
        doc = {"app": {**settings, "client_secret": "stored" if has_secret else "not set"}}
    settings_doc = doc["app"]
    out.emit(
        doc,
        lambda: out.fields([(k.replace("_", " ").capitalize(), str(v)) for k, v in settings_doc.items()]),
    )
    if not has_secret and not settings_doc.get("pkce"):
        out.warn("No client secret stored: pass --client-secret-stdin, or use --pkce for a PKCE app.")
    out.success("Slack app settings saved.")


class ManifestFormat(StrEnum):
    JSON = "json"
    YAML = "yaml"


@app.command("manifest")
def manifest(
    integration: Annotated[
        str | None, typer.Option("--integration", help="Take the features from this integration.")
    ] = None,
    two_way_sync: Annotated[
        bool, typer.Option("--two-way-sync", help="Include two-way comment sync.")
    ] = False,
    link_previews: Annotated[
        bool, typer.Option("--link-previews", help="Include rich Case URL previews.")
    ] = False,
    access_logs: Annotated[
        bool, typer.Option("--access-logs", help="Include Slack access logs (user scopes).")
    ] = False,
    channel_lookup: Annotated[
        bool,
        typer.Option(
            "--channel-lookup",
            help="Include channels:read and groups:read (cxslack's own, for looking channels up by name).",
        ),
    ] = False,
    evaluation_chart: Annotated[
        bool,
        typer.Option("--evaluation-chart", help="Include the alert evaluation chart (files:write)."),
    ] = False,
    redirect_uri: Annotated[
        str | None, typer.Option("--redirect-uri", help="Redirect URL (default: the configured one).")
    ] = None,
    events_url: Annotated[
        str | None,
        typer.Option(
            "--events-url",
            help="Public URL of `cxslack listen --http` (…/slack/events); default Socket Mode.",
        ),
    ] = None,
    interactivity_url: Annotated[
        str | None,
        typer.Option(
            "--interactivity-url",
            help="Public URL of `cxslack listen --http` (…/slack/interactivity) for Case buttons; "
            "default: beside --events-url, else Socket Mode.",
        ),
    ] = None,
    case_actions: Annotated[
        bool | None,
        typer.Option(
            "--case-actions/--no-case-actions",
            help="Interactivity for the buttons on Case messages (default: on; with --integration, "
            "on for v0.1.0).",
            show_default=False,
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="App and bot display name.")] = "Coralogix",
    fmt: Annotated[
        ManifestFormat | None,
        typer.Option(
            "--format", help="json or yaml (default: yaml; json with -o json).", case_sensitive=False
        ),
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Print a Slack app manifest with the scopes, events and interactivity for the chosen features.

    Paste it at api.slack.com/apps → Create New App → From an app manifest. Events and button
    clicks reach `cxslack listen` at the request URLs given, or over Socket Mode without them.
    """
    from cxslack.manifest import build_manifest
    from cxslack.oauth.redirect import DEFAULT_REDIRECT_URI
    from cxslack.registry import Registry
    from cxslack.scopes import Feature
    from cxslack.store import Store

    store = Store()
    buttons = True if case_actions is None else case_actions
    if integration is not None:
        found = Registry(store).view().find(integration)
        features = found.features
        buttons = found.supports_cases_features if case_actions is None else case_actions
    else:
        features = {Feature.ALWAYS}
        for on, feature in (
            (two_way_sync, Feature.TWO_WAY_SYNC),
            (link_previews, Feature.LINK_PREVIEWS),
            (access_logs, Feature.ACCESS_LOGS),
            (channel_lookup, Feature.CHANNEL_LOOKUP),
            (evaluation_chart, Feature.EVALUATION_CHART),
        ):
            if on:
                features.add(feature)
    uri = redirect_uri or store.read_config().get("app", {}).get("redirect_uri") or DEFAULT_REDIRECT_URI
    doc = build_manifest(features, uri, name=name, events_url=events_url, case_actions=buttons,
                         interactivity_url=interactivity_url)  # fmt: skip
    if fmt is None:  # -o json (or CXSLACK_OUTPUT=json) means one JSON document, as on every command
        fmt = ManifestFormat.JSON if output is OutputFormat.JSON else ManifestFormat.YAML
    if fmt is ManifestFormat.JSON:
        write_json(doc)
    else:
        write_yaml(doc)
