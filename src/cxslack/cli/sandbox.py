"""`cxslack sandbox …`: run the built-in Slack Web API sandbox."""

import signal
import threading
from typing import Annotated

import typer

from cxslack.cli.common import OutputOpt, command_group, seconds_option
from cxslack.cli.render import Output, OutputFormat, say
from cxslack.errors import CxError, UsageError

app = command_group(
    "Run the built-in sandbox: a local emulator of Slack's Web API and the Coralogix APIs cxslack uses, "
    "for tests and demos."
)


@app.command("serve")
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless --allow-remote).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port; 0 picks a free one.")] = 0,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote", help="Allow a non-loopback --host (anyone who reaches it can use it)."
        ),
    ] = False,
    no_rate_limits: Annotated[
        bool,
        typer.Option("--no-rate-limits", help="Never answer 429 (Slack allows ~1 message/s per channel)."),
    ] = False,
    latency: Annotated[
        float,
        typer.Option(
            "--latency",
            metavar="SECONDS",
            help="Delay added to every Web API call.",
            callback=seconds_option(0, inclusive=True),
        ),  # fmt: skip
    ] = 0.0,
    auto_approve: Annotated[
        bool,
        typer.Option(
            "--auto-approve",
            help="Press Allow on every OAuth authorize request: the authorize URL redirects straight to "
            "the callback with a code, so `integrations authorize` completes without a click "
            "(or follow the URL with curl: see below).",
        ),
    ] = False,
    redirect_urls: Annotated[
        list[str] | None,
        typer.Option(
            "--redirect-url",
            metavar="URL",
            help="A Redirect URL registered in the sandbox app's OAuth settings (repeatable; replaces the "
            "default: https://localhost:8976/slack/oauth/callback and the configured `app.redirect_uri`). "
            "Authorize sends codes only to these, exactly. https:// only, unless --pkce.",
        ),
    ] = None,
    pkce: Annotated[
        bool,
        typer.Option(
            "--pkce",
            help="The sandbox app has PKCE enabled (a public client): http://localhost and 127.0.0.1 "
            "redirect URLs are allowed, but such installs cannot get bot scopes.",
        ),
    ] = False,
) -> None:
    """Serve the sandbox until Ctrl-C or SIGTERM, printing the environment that points cxslack at it.

    The sandbox app has Redirect URLs like a real Slack app's: by default cxslack's default
    redirect URI (https://localhost:8976/slack/oauth/callback) and the configured `app.redirect_uri`;
    --redirect-url (repeatable) or POST /_sandbox/redirect-urls changes them. An unregistered
    redirect_uri gets Slack's error page, not a code.

    Completing OAuth: with --auto-approve, `cxslack integrations authorize NAME --no-browser` waits
    for the callback, and opening the printed URL anywhere (a browser, or `curl -skL URL`: -k for
    cxslack's self-signed localhost certificate) finishes the install. Without it, the authorize
    page shows the scopes and Allow/Deny buttons, as Slack does.

    The admin API (JSON in and out, not part of Slack; `GET /_sandbox/` lists it):

    \b
    GET  /_sandbox/messages?channel=C    a channel's messages, replies, metadata
    POST /_sandbox/post {channel,text}   a person posts (links get an unfurl_id)
    POST /_sandbox/reply {channel,thread_ts,text}   a person replies in a thread
    POST /_sandbox/edit, /delete {channel,ts}       a person edits or deletes
    POST /_sandbox/compose {text,user?}  a person types links in the composer
    POST /_sandbox/revoke {token?}       revoke one token, or all of them
    POST /_sandbox/uninstall             the workspace removes the app
    POST /_sandbox/archive, /unarchive {channel}    archive or restore
    POST /_sandbox/invite, /kick {channel}          add or remove the bot
    POST /_sandbox/channels {name,private?,bot_member?}   create a channel
    POST /_sandbox/faults {kind,method,count,after?,...}   fail the next calls
         (kind: status, ratelimit, latency, drop, late, lost;
         {"clear": true} clears)
    GET|POST /_sandbox/settings          app and traffic settings: token_rotation,
         pkce_enabled, redirect_urls, decline_scopes, paid, auto_approve,
         rate_limits, ...
    GET|POST /_sandbox/redirect-urls {redirect_urls | add, pkce_enabled?}   the
         app's Redirect URLs: replace the list or add one
    POST /_sandbox/tokens {scopes,user_scopes}   install without the browser
    POST /_sandbox/access-logs {count,...}       add team.accessLogs logins
    POST /_sandbox/clock {advance}       move the clock (token expiry)
    GET  /_sandbox/calls                 the call log (arrival times) and faults
    POST /_sandbox/reset                 back to the seeded workspace
    POST /_sandbox/app-token             an xapp- token for Socket Mode
    POST /_sandbox/events/subscribe {url,interactivity_url}   deliver Events
         API requests (after url answers a url_verification) and clicks
    GET  /_sandbox/events                deliveries and their answers
    POST /_sandbox/events/redeliver, /events/disconnect   retries, drops
    POST /_sandbox/click {channel,ts,action_id,user?,confirm?}   a person
         clicks a message's button (block_actions to the app)
    GET  /_sandbox/ephemeral?user=U      messages only that person sees
    GET|POST /_sandbox/coralogix/cases, POST /_sandbox/coralogix/cases/update
    GET  /_sandbox/coralogix/comments, /logs, /syncs;  POST .../reset
    GET  /_sandbox/coralogix/actions     acknowledge, assign, resolve, close
    GET|POST /_sandbox/coralogix/team/members {username,status?}, POST
         .../team/remove {username}   the Coralogix team (team id 4242)
    GET|POST /_sandbox/coralogix/permissions {permissions}   the API key's
         case:* permissions
    GET|POST /_sandbox/coralogix/integrations {version,id?,status?}  Slack
         integrations deployed in Coralogix; POST .../status, .../remove
    GET|POST /_sandbox/coralogix/nc/connectors, POST .../nc/routers   save
         a connector or router as a person in Coralogix's UI would
    POST .../nc/test-failures {connectorId}  the next connectors:test fails
    GET  /_sandbox/coralogix/nc/log      every NC write and test; .../nc/reset
    GET  /_sandbox/files, /files/content?id=F   uploads (shares, alt_txt); bytes
    GET|POST /_sandbox/coralogix/alerts {alert}, POST .../alerts/indicator
         {case,alert_id,trigger_time?}   alert definitions; a Case's trigger
    POST /_sandbox/coralogix/metrics {query,points}, .../log-counts
         {lucene,counts}   the series query_range and DataPrime answer
    GET|POST /_sandbox/coralogix/data-permissions {permissions}   what the
         API key may read: alerts, metrics, logs
    """
    from cxslack.hosts import is_loopback, is_valid_host
    from cxslack.oauth.redirect import DEFAULT_REDIRECT_URI
    from cxslack.sandbox import CLIENT_ID, CLIENT_SECRET, SIGNING_SECRET, SlackSandbox
    from cxslack.sandbox.case_actions import CORALOGIX_TEAM_ID
    from cxslack.sandbox.coralogix import CORALOGIX_API_KEY, CORALOGIX_SEND_KEY

    if not is_valid_host(host):
        raise UsageError("invalid_host", f"--host takes an IP address or a host name, not {host!r}",
                         "For example: --host 127.0.0.1 (the default) or --host ::1.")  # fmt: skip
    if not allow_remote and not is_loopback(host):
        raise UsageError(
            "non_loopback_host",
            f"refusing to serve the sandbox on {host}: it has no real authentication",
            "Use --host 127.0.0.1 or ::1, or pass --allow-remote to expose it on purpose.",
        )
    registered = redirect_urls or _default_redirect_urls(pkce)
    try:
        sandbox = SlackSandbox(host, port, rate_limits=not no_rate_limits, latency=latency,
                               auto_approve=auto_approve, redirect_urls=registered, pkce=pkce)  # fmt: skip
    except ValueError as exc:
        raise UsageError(
            "invalid_redirect_url",
            f"Slack's app settings would refuse this Redirect URL: {exc}",
            "Use https://localhost:PORT/PATH, or add --pkce for an http://127.0.0.1 (PKCE) app.",
        ) from None
    try:
        sandbox.start()
    except OSError as exc:
        raise CxError(
            "sandbox_bind_failed",
            f"cannot listen on {host} port {port}: {exc.strerror or exc}",
            "Pick another --port, or leave it out to get a free one.",
        ) from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        say(f"Slack sandbox listening on {sandbox.url} (rate limits {'off' if no_rate_limits else 'on'})")
        say(f"  Web API:    {sandbox.api_url}")
        say(
            f"  Authorize:  {sandbox.authorize_url}"
            + ("  (auto-approve: Allow is pressed for you)" if auto_approve else "")
        )
        say(f"  Admin API:  {sandbox.url}/_sandbox/ (lists its routes; see `cxslack sandbox serve --help`)")
        say(
            f"  Redirect URLs registered in the app{' (PKCE enabled)' if pkce else ''}: {', '.join(registered)}"
        )
        say("Point cxslack at it:")
        say(f"export CXSLACK_SLACK_API_URL={sandbox.api_url}")
        say(f"export CXSLACK_SLACK_AUTHORIZE_URL={sandbox.authorize_url}")
        say(f"export CXSLACK_SLACK_CLIENT_ID={CLIENT_ID}")
        say(f"export CXSLACK_SLACK_CLIENT_SECRET={CLIENT_SECRET}")
        say(f"export CXSLACK_CORALOGIX_API_URL={sandbox.url}")
        say(f"export CXSLACK_CORALOGIX_INGRESS_URL={sandbox.url}")
        say(f"export CX_API_KEY={CORALOGIX_API_KEY}")
        say(f"export CX_SEND_KEY={CORALOGIX_SEND_KEY}")
        say(f"export CX_TEAM_ID={CORALOGIX_TEAM_ID}")
        say(f"export CXSLACK_SLACK_SIGNING_SECRET={SIGNING_SECRET}")
        say("Events and Case-button clicks for `cxslack listen`: start it, then subscribe its request URLs")
        say("(Slack checks the events URL with a url_verification challenge first), or get an app token")
        say("for --socket-mode:")
        subscription = (
            '{"url": "http://127.0.0.1:3000/slack/events", '
            '"interactivity_url": "http://127.0.0.1:3000/slack/interactivity"}'
        )
        say(f"curl -s {sandbox.url}/_sandbox/events/subscribe -d '{subscription}'")
        read_token = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])'"
        say(
            f"export CXSLACK_SLACK_APP_TOKEN=$(curl -s -X POST {sandbox.url}/_sandbox/app-token | {read_token})"
        )
        flag = "" if registered[0] == DEFAULT_REDIRECT_URI else f" --redirect-uri {registered[0]}"
        if auto_approve:
            say("Install the app: every authorize request is approved at once; open the URL that")
            say(f"`cxslack integrations authorize NAME{flag} --no-browser` prints")
            say(
                "in any browser, or fetch it with `curl -skL URL` (-k: cxslack's self-signed localhost certificate)."
            )
        else:
            say(f"Install the app: `cxslack integrations authorize NAME{flag}`, then")
            say("press Allow on the page it opens (or restart with --auto-approve for no click).")
        say("Press Ctrl-C to stop.")
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sandbox.stop()
    say("Sandbox stopped.")


def _default_redirect_urls(pkce: bool) -> list[str]:
    """What a Slack app set up for cxslack has registered: the default redirect URI and the one
    `cxslack app configure --redirect-uri` stored (when Slack's settings would take it)."""
    from cxslack.oauth.redirect import DEFAULT_REDIRECT_URI
    from cxslack.sandbox.redirects import registration_problem
    from cxslack.store import Store

    urls = [DEFAULT_REDIRECT_URI]
    try:
        configured = Store().read_config().get("app", {}).get("redirect_uri")
    except CxError:  # an unreadable config is `cxslack config`'s business, not the sandbox's
        configured = None
    if isinstance(configured, str) and configured not in urls:
        if registration_problem(configured, pkce=pkce) is None:
            urls.append(configured)
        else:
            say(f"Not registering the configured app.redirect_uri {configured}: Slack would refuse it "
                f"for an app {'with' if pkce else 'without'} PKCE.")  # fmt: skip
    return urls


@app.command("demo")
def demo(output: OutputOpt = OutputFormat.TABLE) -> None:
    """Run the main job end to end against a throw-away sandbox: add and install an integration,
    create a connector, send a test notification, post a Case and sync a Slack reply into it,
    migrate an earlier-version integration's connectors, and let doctor catch and clear a
    revoked token."""
    from cxslack.sandbox.demo import run_demo

    out = Output(output)
    results = run_demo(say)
    ok = bool(results) and all(r.ok for r in results)
    out.emit({"ok": ok, "steps": [r.to_json() for r in results]}, lambda: None)
    if ok:
        out.success(f"Demo finished: all {len(results)} steps worked.")
    else:
        failed = next((r for r in results if not r.ok), None)
        raise CxError("demo_failed", f"the demo stopped at: {failed.command if failed else 'start-up'}",
                      "Rerun with CXSLACK_DEBUG=1, or run that command yourself against `cxslack sandbox serve`.")  # fmt: skip
