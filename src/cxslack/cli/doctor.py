"""`cxslack doctor`: diagnose the product's Troubleshooting symptoms and local health."""

import sys
from typing import Annotated

import typer

from cxslack.cli.common import OutputOpt, single_command
from cxslack.cli.render import Output, OutputFormat, paint
from cxslack.doctor.report import CheckStatus, Report, Symptom
from cxslack.errors import UsageError

app = single_command()

MARKS = {
    CheckStatus.OK: ("✔", "green"),
    CheckStatus.WARN: ("!", "yellow"),
    CheckStatus.FAIL: ("✘", "red"),
    CheckStatus.SKIP: ("-", "dim"),
}


@app.command()
def doctor(
    integration: Annotated[
        str | None,
        typer.Argument(help="Only this integration (name or id).", metavar="INTEGRATION", show_default=False),
    ] = None,
    symptom: Annotated[
        Symptom | None,
        typer.Option(
            "--symptom",
            case_sensitive=False,
            metavar="SYMPTOM",
            help=f"Run one row of the troubleshooting table: {', '.join(Symptom)} (local: files and "
            "credentials only).",
            show_default=False,
        ),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Call Slack not at all: local state and template routing only.")
    ] = False,
    payload: Annotated[
        str | None,
        typer.Option(
            "--payload",
            help="JSON file ('-' for stdin) used as the template context instead of the shipped samples.",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> int:
    """Diagnose integrations and connectors: token, two-way sync, link previews, routing, Case
    buttons, the evaluation chart, local files.

    Exits 1 when any check fails (warnings allowed), so CI can gate on it.
    """
    from cxslack.doctor.context import DoctorOptions
    from cxslack.doctor.runner import diagnose
    from cxslack.json_input import read_json_file
    from cxslack.registry import Registry

    out = Output(output)
    context = read_json_file(payload, "payload") if payload else None
    if payload and not isinstance(context, dict):
        raise UsageError("invalid_payload", "the payload must be a JSON object")
    report = diagnose(Registry(), DoctorOptions(integration, symptom, offline, context))
    return out.result(
        report.to_json(), lambda: print_report(out, report, symptom), exit_code=report.exit_code
    )


def print_report(out: Output, report: Report, symptom: Symptom | None) -> None:
    """Sections of ✔ / ! / ✘ / - rows, the remediation under each failure and warning (and under a
    skipped check that names what would let it run, once per section), a summary."""
    stream = sys.stdout
    if symptom is not None:
        out.lines(paint(f"Symptom: {symptom.label}", "bold", stream) + "\n")
    section: str | None = None
    group: str | None = None
    skip_remedies: set[str] = set()  # a skip's remedy repeats per connector: say it once a section
    for check in report.ordered():
        subject = check.subject
        if subject.section != section:
            if section is not None:
                out.lines("")
            section, group = subject.section, None
            skip_remedies.clear()
            out.lines(paint(section, "bold", stream))
        if subject.group != group:
            group = subject.group
            if group is not None:
                out.lines(f"  {group}")
        indent = "    " if group else "  "
        mark, style = MARKS[check.status]
        out.lines(f"{indent}{paint(mark, style, stream)} {check.message}  {paint(check.id, 'dim', stream)}")
        if check.remediation and check.status in (CheckStatus.FAIL, CheckStatus.WARN):
            out.lines(f"{indent}  → {check.remediation}")
        elif (
            check.remediation and check.status is CheckStatus.SKIP and check.remediation not in skip_remedies
        ):
            skip_remedies.add(check.remediation)
            out.lines(f"{indent}  → {check.remediation}")
    counts = report.counts()
    total, warnings = len(report.checks), counts[CheckStatus.WARN]
    summary = (
        f"{total} check{_s(total)}: {counts[CheckStatus.OK]} ok, {warnings} warning{_s(warnings)}, "
        f"{counts[CheckStatus.FAIL]} failed"
    )
    if counts[CheckStatus.SKIP]:
        summary += f", {counts[CheckStatus.SKIP]} skipped"
    out.lines("\n" + paint(summary, "green" if report.healthy else "red bold", stream))


def _s(count: int) -> str:
    return "" if count == 1 else "s"
