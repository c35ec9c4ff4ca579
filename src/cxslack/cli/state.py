"""`cxslack state …`: the PostgreSQL state that `listen` replicas share — create it, fill it."""

from pathlib import Path
from typing import Annotated

import typer

from cxslack.cli.common import OutputOpt, command_group
from cxslack.cli.render import Column, Output, OutputFormat
from cxslack.errors import UsageError
from cxslack.state.postgres.db import EXAMPLE_URL

app = command_group(
    "Shared state in PostgreSQL for running listen as replicas: migrate the schema, copy files over."
)

UrlArg = Annotated[
    str | None,
    typer.Option(
        "--state-url",
        envvar="CXSLACK_STATE_URL",
        metavar="URL",
        help="The PostgreSQL database: postgresql://HOST[:PORT]/DATABASE?user=USER (libpq's URI form; the "
        "password from PGPASSWORD or ~/.pgpass).",
        show_default=False,
    ),
]


def _required(url: str | None, flag: str) -> str:
    if not url:
        raise UsageError(
            "missing_state_url",
            f"{flag} is required (or set CXSLACK_STATE_URL)",
            f"For example: cxslack state migrate {flag} {EXAMPLE_URL}",
        )
    return url


@app.command("migrate")
def migrate(
    state_url: UrlArg = None,
    reset_key: Annotated[
        bool,
        typer.Option(
            "--reset-key",
            help="The key the database's tokens and events were encrypted with is lost: forget what it "
            "encrypted (shared rotating tokens: credentials.toml or a reinstall takes over; waiting events: "
            "dead-lettered) and encrypt with this machine's key from now on.",
        ),
    ] = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Create or upgrade cxslack's tables in the database (versioned; safe to run again, and from
    several replicas at once: each migration is applied once), and bring the encrypted tokens and
    events to this machine's key: what is in plain text is encrypted, and what the previous key
    encrypted (CXSLACK_STATE_PREVIOUS_KEY) is encrypted again with the current one."""
    from cxslack.state.postgres.db import Database
    from cxslack.state.postgres.schema import migrate as run
    from cxslack.state.postgres.sealing import Keys
    from cxslack.store import Store

    out = Output(output)
    db = Database(_required(state_url, "--state-url"))
    try:
        result = run(db, Keys.load(Store()), reset_key=reset_key)
    finally:
        db.close()
    secrets = result.secrets
    doc = {"database": db.label, "before": result.before, "after": result.after,
           "applied": [{"version": m.version, "name": m.name} for m in result.applied],
           "secrets": secrets.to_json() if secrets else None}  # fmt: skip
    out.emit(doc, lambda: None)
    for m in result.applied:
        out.success(f"applied migration {m.version}: {m.name}")
    if secrets and secrets.sealed:
        out.success(f"encrypted {secrets.sealed} token(s) and event(s) stored in plain text.")
    if secrets and secrets.resealed:
        out.success(f"encrypted {secrets.resealed} token(s) and event(s) again, with this machine's key.")
    if secrets and secrets.forgotten:
        out.warn(f"forgot {secrets.forgotten} token(s) and event(s) encrypted with the lost key.")
    if result.applied:
        out.success(f"{db.label} is at schema version {result.after} (was {result.before}).")
    elif not (secrets and (secrets.sealed or secrets.resealed or secrets.forgotten)):
        out.success(f"{db.label} is already at schema version {result.after}: nothing to do.")


@app.command("copy")
def copy(
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            envvar="CXSLACK_STATE_URL",
            metavar="URL",
            help="The PostgreSQL database to copy into (migrated first with `cxslack state migrate`).",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            metavar="DIR",
            help="Another cxslack home to copy from (default: this one, CXSLACK_HOME).",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Copy the file state of a cxslack home into the database: Case threads, settings, the sync
    ledger, previews, and the event inbox. Rows the database has already are kept; nothing in
    the files changes. Stop `cxslack listen` on that home first."""
    from cxslack.state.postgres import database
    from cxslack.state.postgres.copy import copy_file_state
    from cxslack.store import Paths, Store

    out = Output(output)
    url = _required(to, "--to")
    if source is not None:
        home = source.expanduser().absolute()
        if not home.is_dir():
            raise UsageError("invalid_home", f"--from {source} is not a directory",
                             "Give the cxslack home to copy from (the directory CXSLACK_HOME pointed to).")  # fmt: skip
        paths = Paths(config_dir=home, state_dir=home / "state")
    else:
        paths = Store().paths
    if not paths.state_dir.is_dir():
        raise UsageError("no_state", f"there is no cxslack state under {paths.state_dir} to copy",
                         "Give the home that `listen`, `sync` and `cases notify` used: --from DIR.")  # fmt: skip
    from cxslack.state.postgres import close
    from cxslack.state.postgres.sealing import Sealer

    try:
        db = database(url)
        report = copy_file_state(paths.state_dir, db, Sealer(db, Store()))
    finally:
        close(url)
    doc = report.to_json()

    def human() -> None:
        out.table(
            [Column("part", key=True), Column("found"), Column("copied")],
            [[part.replace("_", " "), str(n.found), str(n.copied)] for part, n in report.parts.items()],
        )

    out.emit(doc, human)
    copied = sum(n.copied for n in report.parts.values())
    kept = sum(n.found - n.copied for n in report.parts.values())
    out.success(
        f"copied {copied} record(s) from {paths.state_dir} into {report.database}"
        + (f" ({kept} were there already)" if kept else "")
        + ". Point listen, sync and cases notify at it with --state-url or CXSLACK_STATE_URL."
    )
