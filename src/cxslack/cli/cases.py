"""`cxslack cases …`: show a Case, post its notifications to Slack, and its per-Case settings."""

import sys
from typing import Annotated, Any

import typer

from cxslack.cli.common import OutputOpt, StateUrlOpt, command_group
from cxslack.cli.render import Output, OutputFormat, paint
from cxslack.errors import EXIT_OK, EXIT_PARTIAL, CxError, UsageError
from cxslack.registry import quote

app = command_group(
    "Coralogix Cases in Slack: show a Case, notify a connector, draw its alert evaluation chart, "
    "per-Case settings (reply mode, sync, buttons)."
)

CaseArg = Annotated[
    str, typer.Argument(help="Case id: a UUID or a readable id like CASE-123.", show_default=False)
]
CaseJsonOpt = Annotated[
    str | None,
    typer.Option(
        "--case-json", help="Read the Case from this JSON file ('-' for stdin) instead of Coralogix."
    ),
]


def case_from_json(case_json: str, case_id: str) -> dict[str, Any]:
    """The Case named CASE from a JSON file or stdin, checked like the Cases API's."""
    from cxslack.cases.model import case_from_doc
    from cxslack.json_input import read_json_file

    where = "the Case JSON on stdin" if case_json == "-" else f"Case JSON {case_json}"
    return case_from_doc(read_json_file(case_json, "Case JSON"), where, case_id)


def coralogix() -> Any:
    from cxslack.coralogix.client import CoralogixClient
    from cxslack.coralogix.config import resolve_settings
    from cxslack.store import Store

    return CoralogixClient(resolve_settings(store=Store()))


@app.command("show")
def show(case_id: CaseArg, output: OutputOpt = OutputFormat.TABLE, state_url: StateUrlOpt = None) -> None:
    """Show a Case: status, priority, assignee, labels and its Coralogix link."""
    from cxslack.cases.model import case_key, case_title_line, label_text, priority_label, status_label
    from cxslack.cases.people import People
    from cxslack.connectors import channel_label
    from cxslack.state import open_state
    from cxslack.store import Store

    out = Output(output)
    with coralogix() as client:
        case = client.get_case(case_id)
        link = client.case_deep_link(case_key(case))
        people = People(client)
        assignee = people.assignee(case)
    threads = [
        {"connector": t.connector, **t.to_json()} for t in open_state(Store()).threads.of_case(case_key(case))
    ]
    doc = {"case": case, "link": link, "assignee": assignee.shown, "slack_threads": threads}
    if assignee.shown:
        who = assignee.shown
    elif not assignee.assigned:
        who = "unassigned"
    elif people.team_id is None:
        who = "assigned (to name them: cxslack coralogix configure --team-id ID)"
    else:
        who = f"assigned to someone who is not a member of Coralogix team {people.team_id}"
    out.emit(
        doc,
        lambda: out.fields(
            [
                ("Case", case_title_line(case)),
                ("Title", str(case.get("title", ""))),
                ("Status", status_label(case)),
                ("Priority", priority_label(case)),
                ("Assignee", who),
                ("Labels", label_text(case)),
                ("Link", link or "-"),
                (
                    "In Slack",
                    ", ".join(
                        f"{t['connector']} → {channel_label(t['channel'])} (ts {t['ts']})" for t in threads
                    )
                    or "-",
                ),
            ]
        ),
    )


@app.command("notify")
def notify(
    case_ids: Annotated[
        list[str],
        typer.Argument(help="One or more Case ids (or '-' with --case-json -).", show_default=False),
    ],
    connector: Annotated[
        str, typer.Option("--connector", help="The connector whose channel routing to use.")
    ],
    event: Annotated[
        str | None,
        typer.Option(
            "--event",
            help="activated, acknowledged, resolved, closed, priority-changed or assignee-changed (default: from the status).",
            show_default=False,
        ),
    ] = None,
    case_json: CaseJsonOpt = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Cases notified at once (each channel stays under Slack's limit).",
            min=1,
            max=64,
        ),
    ] = 8,
    root_link: Annotated[
        str | None,
        typer.Option(
            "--root-link",
            help="Adopt this Slack message (its link: …/archives/C…/p…) as the Case's root on the connector, "
            "e.g. after a root whose post was in doubt turned up.",
            show_default=False,
        ),
    ] = None,
    resend: Annotated[
        bool,
        typer.Option(
            "--resend",
            "--repost-root",
            help="A message whose post was in doubt (the root, or this update) is not in Slack (you looked): "
            "post it again (a duplicate if it is there).",
        ),
    ] = False,
    chart: Annotated[
        bool | None,
        typer.Option(
            "--chart/--no-chart",
            help="Share (or not) the alert evaluation chart into the Case's thread this run "
            "(default: the integration's --evaluation-chart).",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
    state_url: StateUrlOpt = None,
) -> int:
    """Post a Case to Slack: the first notification posts the root message, later ones follow the
    Case's reply mode (thread by default), and the root is edited to show the current status.

    With the alert evaluation chart on, each alert trigger's chart is shared into the Case's
    thread once; when it cannot be drawn or shared, the notification goes out without it and
    the reason is reported (`charts` in -o json)."""
    from concurrent.futures import ThreadPoolExecutor

    from cxslack.cases.model import case_key, event_for
    from cxslack.cases.notify import CaseNotifier, NotifyResult
    from cxslack.cases.people import People
    from cxslack.connectors import ConnectorStore, channel_label, missing_integration
    from cxslack.delivery import Deliverer

    out = Output(output)
    store = ConnectorStore()
    chosen = store.find(connector)
    view = store.registry.view()
    integration = view.integrations.get(chosen.integration)
    if integration is None:
        raise missing_integration(chosen)
    preset = None
    for flag, given in (("--root-link", root_link is not None), ("--resend", resend)):
        if given and len(case_ids) != 1:
            raise UsageError("usage_error", f"{flag} takes exactly one CASE argument")
    if root_link is not None and resend:
        raise UsageError("usage_error", "--root-link and --resend exclude each other")
    if case_json is not None:
        if len(case_ids) != 1:
            raise UsageError("usage_error", "--case-json takes exactly one CASE argument",
                             f"Notify one Case at a time from JSON: cxslack cases notify {case_ids[0]} "
                             f"--connector {quote(chosen.name)} --case-json {case_json}")  # fmt: skip
        preset = case_from_json(case_json, case_ids[0])
    deliverer = Deliverer(store.registry, integration)
    unusable: CxError | None = None
    try:  # one Coralogix client (Cases, links, the team directory), shared by every Case
        directory: Any = coralogix()
    except CxError as exc:  # its settings cannot be read: each Case fails saying why
        directory, unusable = None, exc
    charts = None
    if integration.evaluation_chart if chart is None else chart:
        from cxslack.cases.charts import CaseCharts

        charts = CaseCharts(deliverer, chosen.id, directory, resend=resend)
    notifier = CaseNotifier(
        store.registry, chosen, deliverer, People(directory, slack=deliverer.access), charts
    )

    def one(case_id: str) -> NotifyResult:
        if unusable is not None:
            raise unusable
        case = preset if preset is not None else directory.get_case(case_id)
        link = _deep_link(directory, case_key(case))
        from cxslack.cases.previews import refresh_previews

        result = notifier.notify(case, event_for(case, event), link, root_link=root_link, resend=resend)
        refresh_previews(store.registry, case, directory)  # pasted Case URLs show the new status too
        return result

    results: list[NotifyResult] = []
    failed: list[dict[str, Any]] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(case_ids)))) as pool:
            futures = [(case_id, pool.submit(one, case_id)) for case_id in case_ids]
            errors: list[CxError] = []
            for case_id, future in futures:
                try:
                    results.append(future.result())
                except CxError as exc:
                    errors.append(exc)
                    failed.append({"case": case_id, "error": exc.to_dict()})
    finally:
        if directory is not None:
            directory.close()

    def human() -> None:
        for r in results:
            what = {
                "root": "posted the root message",
                "reply": "replied in the thread",
                "new-message": "posted a new message",
            }[r.action]
            extra = " (root updated)" if r.root_updated else ""
            out.success(
                f"{r.case}: {what} in {channel_label(r.channel)} (ts {r.ts}){extra}"
                + (" via the fallback channel" if r.fallback_used else "")
                + (
                    " — Slack's answer was lost; found in the channel, not posted twice"
                    if r.recovered
                    else ""
                )
            )
            for c in (c for c in r.charts if c.status != "already_shared"):  # in -o json, not said again
                say = out.success if c.status == "shared" else out.warn
                say(f"{r.case}: {c.line}")
                hint = (c.reason or {}).get("hint")
                if c.status in ("skipped", "in_doubt") and hint:
                    out.info(f"  {hint}")
        for f in failed:
            out.info(f"{paint('✘', 'red', sys.stderr)} {f['case']}: {f['error']['message']}")
            if f["error"].get("hint"):
                out.info(f"  {f['error']['hint']}")

    if len(case_ids) == 1 and errors:
        raise errors[0]
    doc = {"notifications": [r.to_json() for r in results], "failed": failed}
    in_doubt = any(c.status == "in_doubt" for r in results for c in r.charts)
    return out.result(doc, human, exit_code=EXIT_PARTIAL if failed or in_doubt else EXIT_OK)


@app.command("chart")
def chart(
    case_id: CaseArg,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            metavar="FILE.png|-",
            help="Where to write the PNG (default: CASE-alert-evaluation.png here); - writes it to stdout.",
            show_default=False,
        ),
    ] = None,
    alert: Annotated[
        str | None,
        typer.Option(
            "--alert", metavar="ALERT_ID", help="Chart this alert's trigger (default: the latest trigger)."
        ),
    ] = None,
    case_json: CaseJsonOpt = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Draw a Case's alert evaluation chart locally, without Slack: the alert's series around its
    trigger, the threshold, and the trigger and resolve markers (needs the charts extra).

    With -o json it also describes what it drew: every plotted point, the threshold and the markers."""
    out = Output(output)
    if file == "-" and out.json:
        raise UsageError("usage_error", "--file - writes the PNG to stdout, where -o json would go too",
                         "Write the PNG to a file (--file chart.png) to have the JSON on stdout.")  # fmt: skip
    if file == "-" and sys.stdout.isatty():
        raise UsageError("usage_error", "--file - would write a PNG to the terminal",
                         "Redirect it (--file - > chart.png) or name a file: --file chart.png")  # fmt: skip
    from pathlib import Path

    from cxslack.cases.model import case_name
    from cxslack.charts.fetch import chart_data, pick_trigger
    from cxslack.charts.render import render, require_charts

    require_charts()
    with coralogix() as client:
        case = case_from_json(case_json, case_id) if case_json is not None else client.get_case(case_id)
        data = chart_data(client, case, pick_trigger(case, alert))
    picture = render(data)
    target = file or picture.filename
    if target == "-":
        sys.stdout.buffer.write(picture.png)
        sys.stdout.buffer.flush()
    else:
        from cxslack.state.files import atomic_write

        atomic_write(Path(target), picture.png, mode=0o644)
    shown = "stdout" if target == "-" else target
    doc = {"case": case_name(case), "file": None if target == "-" else str(Path(target).resolve()),
           "chart": {**data.to_json(), "picture": picture.to_json()}}  # fmt: skip
    if target != "-":
        out.emit(doc, lambda: _show_chart(out, data, picture, shown))
    out.success(
        f"Wrote the alert evaluation chart of {case_name(case)} to {shown} ({len(picture.png):,} bytes)."
    )


def _show_chart(out: Output, data: Any, picture: Any, where: str) -> None:
    from cxslack.charts.render import subtitle

    alert = data.alert
    threshold = f"{alert.operator or ''} {alert.threshold:g}".strip() if alert.threshold is not None else "-"
    out.fields(
        [
            ("Case", data.case),
            ("Alert", f"{alert.name} ({alert.type.replace('_', ' ').lower()}, {alert.alert_id})"),
            ("Query", alert.query),
            ("Range", subtitle(data).split(" · ", 1)[1]),
            (
                "Series",
                ", ".join(f"{s['label']} ({len(s['points'])} points)" for s in picture.drawn["series"]),
            ),
            ("Threshold", threshold),
            ("Markers", ", ".join(f"{m['kind']} {m['at']}" for m in picture.drawn["markers"]) or "-"),
            ("Picture", f"{where}, {picture.width}×{picture.height} px, {len(picture.png):,} bytes"),
            ("Alt text", picture.alt_text),
        ]
    )


def _on_off(value: bool | None, unset: str) -> str:
    return unset if value is None else "on" if value else "off"


def _deep_link(client: Any, case_id: str) -> str | None:
    """The Case's link for the message; a Case without Coralogix access still posts, unlinked."""
    try:
        return client.case_deep_link(case_id)
    except CxError:
        return None


@app.command("settings")
def settings(
    case_id: CaseArg,
    reply_mode: Annotated[
        str | None,
        typer.Option("--reply-mode", help="new-message, thread or thread-broadcast.", show_default=False),
    ] = None,
    mute_sync: Annotated[
        bool | None,
        typer.Option(
            "--mute-sync/--unmute-sync",
            help="Stop or resume syncing Slack replies into this Case.",
            show_default=False,
        ),
    ] = None,
    case_actions: Annotated[
        bool | None,
        typer.Option(
            "--case-actions/--no-case-actions",
            help="Show or hide the buttons on this Case's messages (default: the connector's setting).",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
    state_url: StateUrlOpt = None,
) -> None:
    """Show or change a Case's Slack settings: reply mode for updates, two-way sync mute, buttons.

    A change of buttons shows on the Case's root message at its next notification; a click on a
    button turned off meanwhile is refused.
    """
    from cxslack.cases.model import ReplyMode
    from cxslack.coralogix.client import check_case_id
    from cxslack.state import open_state
    from cxslack.state.records import CaseSettings
    from cxslack.store import Store

    out = Output(output)
    ref = check_case_id(case_id)
    book = open_state(Store()).settings
    mode = None
    if reply_mode is not None:
        try:
            mode = ReplyMode(reply_mode).value
        except ValueError:
            raise UsageError("invalid_reply_mode", f"unknown reply mode {reply_mode!r}",
                             "Use one of: new-message, thread, thread-broadcast.") from None  # fmt: skip
    changes = CaseSettings(mode, mute_sync, case_actions)
    changed = changes != CaseSettings()
    current = book.update(ref, changes) if changed else book.get(ref)
    doc = {"case": ref, "reply_mode": current.reply_mode, "mute_sync": bool(current.mute_sync),
           "case_actions": current.case_actions}  # fmt: skip
    out.emit(
        doc,
        lambda: out.fields(
            [
                ("Case", ref),
                (
                    "Reply mode",
                    str(
                        doc["reply_mode"] or "connector default (thread unless the connector says otherwise)"
                    ),
                ),
                ("Two-way sync", "muted" if doc["mute_sync"] else "on"),
                ("Case buttons", _on_off(current.case_actions, "connector default")),
            ]
        ),
    )
    if changed:
        out.success(f"Saved Slack settings for {ref}.")
