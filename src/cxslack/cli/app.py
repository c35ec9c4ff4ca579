"""The root `cxslack` app and the one mapping from errors to messages and exit codes."""

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer import _click  # Typer vendors click; its exception types live here
from typer.core import TyperGroup

from cxslack import __version__
from cxslack.cli import render
from cxslack.cli.common import APP_SETTINGS
from cxslack.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, CxError
from cxslack.redact import redact

# Command groups load on first use, so `cxslack integrations list` imports only what it runs.
LAZY_GROUPS = {
    "access-logs": "cxslack.cli.access_logs",
    "app": "cxslack.cli.slack_app",
    "cases": "cxslack.cli.cases",
    "config": "cxslack.cli.config",
    "connectors": "cxslack.cli.connectors",
    "coralogix": "cxslack.cli.coralogix",
    "integrations": "cxslack.cli.integrations",
    "sandbox": "cxslack.cli.sandbox",
    "state": "cxslack.cli.state",
}


# Top-level commands that are one command, not a group: module → its Typer with one command.
LAZY_COMMANDS: dict[str, str] = {
    "doctor": "cxslack.cli.doctor",
    "listen": "cxslack.cli.listen",
    "sync": "cxslack.cli.sync",
}


class Interrupted(Exception):
    """Ctrl-C while a command ran (raised past Typer, which would swallow KeyboardInterrupt)."""


class CxGroup(TyperGroup):
    """Runs the command tree and turns every way out into an exit code and a message."""

    _loaded: dict[str, Any] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_GROUPS, *LAZY_COMMANDS})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        module_name = LAZY_GROUPS.get(cmd_name) or LAZY_COMMANDS.get(cmd_name)
        if module_name is None:
            return super().get_command(ctx, cmd_name)
        if cmd_name not in self._loaded:
            import importlib

            module = importlib.import_module(module_name)
            build = typer.main.get_group if cmd_name in LAZY_GROUPS else typer.main.get_command
            command = build(module.app)
            command.name = cmd_name
            self._loaded[cmd_name] = command
        return self._loaded[cmd_name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """Typer suggests only among loaded commands; the lazy ones count too."""
        try:
            return super().resolve_command(ctx, args)
        except _click.exceptions.UsageError as exc:
            from difflib import get_close_matches

            matches = get_close_matches(args[0], self.list_commands(ctx), n=1) if args else []
            if matches and "Did you mean" not in exc.message:
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {matches[0]!r}?"
            raise

    def invoke(self, ctx: Any) -> Any:
        # Typer turns Ctrl-C into a silent exit 130; carry it out to main(), which says so (and
        # prints the error document that -o json promises)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise Interrupted from exc

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:  # fmt: skip
        argv = list(sys.argv[1:] if args is None else args)
        from cxslack import notices

        notices.listen(render.warn)  # domain code's warnings, on stderr
        render.json_written = False
        try:
            rv = super().main(argv, prog_name or "cxslack", complete_var, False, windows_expand_args, **extra)
            code = rv if isinstance(rv, int) else 0
        except CxError as exc:
            code = report(exc, argv)
        except _click.exceptions.UsageError as exc:
            code = report(
                CxError("usage_error", exc.format_message(), usage_hint(exc, argv), exit_code=EXIT_USAGE),
                argv,
            )
        except _click.exceptions.ClickException as exc:
            code = report(CxError("usage_error", exc.format_message(), exit_code=exc.exit_code), argv)
        except (Interrupted, KeyboardInterrupt, typer.Abort):
            if wants_json(argv) and not render.json_written:  # a script still gets its one document
                render.write_json(
                    {"error": CxError("interrupted", "interrupted before it finished").to_dict()}
                )
            render.say("Interrupted.")
            code = EXIT_INTERRUPTED
        except BrokenPipeError:
            code = EXIT_FAILED
        except OSError as exc:
            code = report(_os_error(exc), argv)
        except Exception as exc:  # a bug, not a user mistake: short message, traceback on request
            code = report(_bug(exc), argv)
        sys.exit(code)


def _os_error(exc: OSError) -> CxError:
    """A full disk, a permission problem, a read-only file system: the user's to fix, not a bug.
    (The state primitives raise these as StorageErrors already; this catches any other write.)"""
    from pathlib import Path

    from cxslack.state.files import USER_ERRNOS, storage_error

    if exc.errno in USER_ERRNOS:
        return storage_error(exc, Path(exc.filename) if exc.filename else Path("a file"))
    return _bug(exc)


def _bug(exc: BaseException) -> CxError:
    if os.environ.get("CXSLACK_DEBUG"):
        import traceback

        render.say(redact("".join(traceback.format_exception(exc))))
    return CxError(
        "internal_error",
        f"unexpected {type(exc).__name__}: {exc}",
        "This is a bug in cxslack; rerun with CXSLACK_DEBUG=1 for details and report it.",
    )


# Options of the root command: they go before the command (`cxslack --no-color integrations list`).
ROOT_OPTIONS = ("--no-color", "--version")


def usage_hint(exc: Any, argv: Sequence[str]) -> str | None:
    """What to run after a mistake on the command line (the command's --help, at least)."""
    import shlex

    ctx, param = exc.ctx, getattr(exc, "param", None)
    if ctx is None:
        return None
    misplaced = getattr(exc, "option_name", None)
    if misplaced in ROOT_OPTIONS and ctx.parent is not None:
        rest = [a for a in argv if a != misplaced]
        return f"{misplaced} goes before the command: {shlex.join(['cxslack', misplaced, *rest])}" + (
            " (or set NO_COLOR=1)" if misplaced == "--no-color" else ""
        )
    if param is not None and "--output" in param.opts:
        takes_file = any("--file" in p.opts for p in ctx.command.params)
        return f"--output/-o is the output format: {', '.join(render.OutputFormat)}." + (
            " To write to a file, use --file FILE (or --file - for stdout)." if takes_file else ""
        )
    return f"See: {ctx.command_path} --help"


def wants_json(argv: Sequence[str]) -> bool:
    """Did the command line ask for JSON output? (Read from argv: parsing may be what failed.)"""
    for i, arg in enumerate(argv):
        if arg in ("-o", "--output", "--format") and i + 1 < len(argv) and argv[i + 1].lower() == "json":
            return True
        if arg.startswith(("--output=", "--format=")) and arg.split("=", 1)[1].lower() == "json":
            return True
        if (
            arg.startswith("-o")
            and len(arg) > 2
            and not arg.startswith("--")
            and arg[2:].lstrip("=").lower() == "json"
        ):
            return True
    return os.environ.get("CXSLACK_OUTPUT", "").lower() == "json"


def report(exc: CxError, argv: Sequence[str]) -> int:
    """The single error renderer: JSON document on stdout in -o json, lines on stderr always."""
    if wants_json(argv):
        render.write_json({"error": exc.to_dict()})
    err = sys.stderr
    render.say(f"{render.paint('Error:', 'red bold', err)} {exc.message}")
    if exc.hint:
        render.say(f"{render.paint('Hint:', 'dim', err)} {exc.hint}")
    # `plan --detailed-exitcode` gives 2 the meaning "changes" (Terraform's), so any error is 1 there
    return EXIT_FAILED if "--detailed-exitcode" in argv else exc.exit_code


app = typer.Typer(
    cls=CxGroup,
    name="cxslack",
    help="Operator CLI for the Coralogix Slack integration: integrations and the app's OAuth install, "
    "connectors (locally and in Coralogix Notification Center), migration to v0.1.0, diagnosis, Case "
    "notifications and buttons, two-way sync and previews, access logs, and a built-in sandbox.",
    no_args_is_help=True,
    **APP_SETTINGS,
)


def _version(value: bool) -> None:
    if value:
        render.write_text(f"cxslack {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="Disable colour (NO_COLOR works too).")
    ] = False,
) -> None:
    render.set_no_color(no_color)


@app.command("completion")
def completion(
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.", metavar="SHELL")],
) -> None:
    """Print a shell completion script (the files in completions/ are its output)."""
    from cxslack.cli.completion import print_script

    print_script(shell)


def main() -> None:
    typer.main.get_command(app).main(prog_name="cxslack")
