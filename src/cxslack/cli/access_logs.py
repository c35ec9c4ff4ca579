"""`cxslack access-logs …`: read Slack's access logs and deliver each login once, to Coralogix or as NDJSON."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cxslack.access_logs import collect as collection
from cxslack.access_logs.checkpoint import Checkpoint
from cxslack.access_logs.collect import (
    DEFAULT_APPLICATION,
    DEFAULT_BATCH,
    DEFAULT_SUBSYSTEM,
    CollectResult,
    Progress,
)
from cxslack.access_logs.sinks import CoralogixSink, NdjsonSink, Sink
from cxslack.access_logs.times import parse_time
from cxslack.cli.common import OutputOpt, command_group, seconds_option
from cxslack.cli.render import Output, OutputFormat, ProgressBar
from cxslack.errors import UsageError
from cxslack.registry import Registry, quote

if TYPE_CHECKING:
    from cxslack.model import Integration

app = command_group(
    "Collect Slack access logs (team.accessLogs) and forward them to Coralogix, or write them as NDJSON."
)


@app.command("collect")
def collect(
    integration: Annotated[
        str,
        typer.Argument(
            help="Integration name (case-insensitive) or id.", metavar="INTEGRATION", show_default=False
        ),
    ],
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="TIME",
            help="Oldest login to read (by first seen): RFC 3339 or relative (24h, 7d). Default: where "
            "the last run stopped; on the first run, all that Slack keeps.",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", metavar="TIME", help="Newest login to read (RFC 3339 or relative). Default: now."
        ),
    ] = None,
    forward: Annotated[
        bool,
        typer.Option(
            "--forward",
            help="Send to Coralogix's log ingestion (key: CX_SEND_KEY or cxslack coralogix configure --send-key-stdin).",
        ),
    ] = False,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            metavar="FILE|-",
            help="Append one JSON record per login to FILE (created 0600); - writes them to stdout, alone.",
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", help="Keep collecting every --interval until SIGINT or SIGTERM (then exit 0)."
        ),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            metavar="SECONDS",
            help="With --follow: seconds between runs (at least 1).",
            callback=seconds_option(1, inclusive=True),
        ),  # fmt: skip
    ] = 300.0,
    application: Annotated[
        str, typer.Option("--application-name", help="Coralogix applicationName of the forwarded logs.")
    ] = DEFAULT_APPLICATION,
    subsystem: Annotated[
        str, typer.Option("--subsystem-name", help="Coralogix subsystemName of the forwarded logs.")
    ] = DEFAULT_SUBSYSTEM,
    no_checkpoint: Annotated[
        bool,
        typer.Option(
            "--no-checkpoint",
            help="With --file: read exactly --since to --until, neither reading nor advancing the checkpoint.",
        ),
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            min=1,
            metavar="N",
            help="Entries per request or write at most; after a crash at most one batch is sent again.",
        ),
    ] = DEFAULT_BATCH,
    max_runs: Annotated[int | None, typer.Option("--max-runs", min=1, hidden=True)] = None,
    fmt: OutputOpt = OutputFormat.TABLE,
    legacy_fmt: Annotated[
        OutputFormat | None,
        # `-o/--format` named the summary's format before --output did (kept for existing scripts)
        typer.Option("--format", hidden=True, case_sensitive=False, show_default=False),
    ] = None,
) -> None:
    """Read the integration's access logs and deliver each login entry once.

    Reads with the integration's user token (scope admin); Slack keeps access logs only for paid plans.

    A checkpoint in the state dir lets each run continue where the last stopped, skipping what it delivered.

    Coralogix gets one info log per login: the entry as JSON text, with team_id and integration_id.

    --file writes the same JSON records, one line per login (--output/-o is the summary's format,
    as everywhere; with --file - there is no summary on stdout).
    """
    out = Output(legacy_fmt or fmt)
    if forward == (output_file is not None):
        raise UsageError(
            "destination_required",
            "choose one destination: --forward (Coralogix) or --file FILE|- (NDJSON)",
            f"Example: cxslack access-logs collect {quote(integration)} --forward",
        )
    if no_checkpoint and forward:
        raise UsageError(
            "checkpoint_required",
            "--forward always uses the checkpoint: it is what keeps an entry from being forwarded twice",
        )
    if follow and until is not None:
        raise UsageError("conflicting_options", "--until and --follow do not go together")
    now = time.time()
    since_at = parse_time(since, "--since", now) if since else None
    until_at = parse_time(until, "--until", now) if until else None
    if since_at is not None and until_at is not None and since_at > until_at:
        raise UsageError("invalid_time", "--since is later than --until")

    registry = Registry()
    found = collection.find_collecting(registry, integration)
    to_stdout = str(output_file) == "-"
    stop = threading.Event()
    sink = _open_sink(registry, found, output_file, application, subsystem)
    checkpoint = (
        Checkpoint(None, sink.name)
        if no_checkpoint
        else Checkpoint.for_integration(registry.store, found.id, sink.name)
    )
    where = "to Coralogix" if forward else f"to {'stdout' if to_stdout else output_file}"
    bar = out.progress(found.name)
    progress = _progress(out, bar, found.name, "forwarding" if forward else "writing")

    def run_once() -> CollectResult:
        current = collection.find_collecting(registry, found.id)  # a --follow job sees edits
        try:
            result = collection.collect(
                registry,
                current,
                sink,
                checkpoint,
                since=since_at,
                until=until_at,
                batch_size=batch_size,
                progress=progress,
                should_stop=stop.is_set,
            )
        finally:
            bar.stop()
        _say(out, current.name, result, where)
        return result

    if follow:
        with _stop_on(stop):
            total = collection.follow(
                run_once,
                interval=interval,
                stop=stop,
                max_runs=max_runs,
                on_error=lambda exc: out.warn(f"{exc.message}; trying again in {interval:g} s"),
            )
        total = total or CollectResult(found.id, sink.kind, runs=0)
        out.info(f"Stopped after {total.runs} run(s); {total.delivered:,} new entries in all.")
    else:
        total = run_once()
    if out.json and not to_stdout:
        doc: dict[str, Any] = total.to_json()
        if follow:
            doc["runs"] = total.runs
        out.emit(doc)


def _open_sink(
    registry: Registry,
    integration: Integration,
    output_file: Path | None,
    application: str,
    subsystem: str,
) -> Sink:
    if str(output_file) == "-":
        return NdjsonSink(sys.stdout)
    if output_file is not None:
        return NdjsonSink.append_to(output_file)
    import httpx

    from cxslack.coralogix.client import CoralogixClient
    from cxslack.coralogix.config import resolve_settings

    settings = resolve_settings(store=registry.store)
    settings.ingestion()  # no key or region: say so now, before reading Slack
    # Each batch goes out from a forked child with a client of its own. They share the TLS context,
    # built once here (the CA bundle takes ~50 ms to load): settings, not connections.
    tls = httpx.create_ssl_context()

    def connect() -> CoralogixClient:
        return CoralogixClient(settings, transport=httpx.HTTPTransport(verify=tls))

    computer = integration.workspace.team_id if integration.workspace else integration.name
    return CoralogixSink(connect, computer=computer, application=application, subsystem=subsystem)


def _say(out: Output, name: str, result: CollectResult, where: str) -> None:
    read = f"read {result.collected:,} entries in {result.pages} page(s)"
    if result.stopped:
        out.info(f"{name}: stopped; {result.delivered:,} new entries delivered {where} before that.")
    elif result.delivered:
        verb = "forwarded" if result.kind == "forward" else "wrote"
        out.success(
            f"{name}: {verb} {result.delivered:,} new access-log entries {where} "
            f"({read}; {result.skipped_duplicates:,} delivered before)."
        )
    else:
        out.success(f"{name}: nothing new ({read}, all delivered before).")


def _progress(out: Output, bar: ProgressBar, name: str, verb: str) -> Progress:
    """Pages read, then entries delivered, on the one progress bar (silent when piped or JSON)."""

    def waiting() -> None:
        bar.stop()
        out.info(f"Another collection of {name} to the same destination is running; waiting for it …")

    return Progress(
        read=lambda pages, entries: bar.update(f"reading: {pages} page(s), {entries:,} entries"),
        delivered=lambda done, total: bar.update(verb, completed=done, total=total),
        waiting=waiting,
    )


@contextmanager
def _stop_on(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM end a --follow job at the next page or batch, with what it did recorded.

    The handler only sets the event (printing from a signal handler can collide with a print it
    interrupted).
    """

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)
