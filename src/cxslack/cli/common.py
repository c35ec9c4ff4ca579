"""Options and helpers shared by every command group."""

from collections.abc import Callable
from typing import Annotated, Any

import typer

from cxslack.cli.render import OutputFormat, is_interactive
from cxslack.errors import UsageError

# Click's plain help, not Rich's panels: at 80 columns Rich squeezes its option table until flag
# names end in "…", while click gives a long flag its own line and wraps only the help text.
APP_SETTINGS: dict[str, Any] = {
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
    "context_settings": {"help_option_names": ["-h", "--help"]},
}


def command_group(help: str) -> typer.Typer:
    """A command group with the settings every group shares."""
    return typer.Typer(help=help, no_args_is_help=True, **APP_SETTINGS)


def single_command() -> typer.Typer:
    """The Typer of a top-level command that is one command, not a group (doctor, listen, sync)."""
    return typer.Typer(**APP_SETTINGS)


OutputOpt = Annotated[
    OutputFormat,
    typer.Option(
        "--output",
        "-o",
        envvar="CXSLACK_OUTPUT",
        case_sensitive=False,
        help="Output format: table for people, json for scripts (one document on stdout).",
        show_default=True,
    ),
]


def _use_state_url(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """The command runs with its state at `value` (`cxslack.state.use_state_url`): the database is
    checked before the command starts, and its pool closed when the command ends."""
    if value:
        from cxslack.state import use_state_url

        ctx.with_resource(use_state_url(value))
    return value


StateUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--state-url",
        envvar="CXSLACK_STATE_URL",
        metavar="URL",
        help="Keep what listen replicas share in this PostgreSQL database (a postgresql:// URL) instead "
        "of files; needs cxslack[postgres] and `cxslack state migrate` once.",
        show_default=False,
        callback=_use_state_url,
    ),
]

YesOpt = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (required when not on a terminal)."),
]


def confirm_or_require_yes(question: str, yes: bool) -> None:
    """Destructive commands ask on a terminal and need --yes otherwise."""
    if yes:
        return
    if not is_interactive():
        raise UsageError(
            "confirmation_required",
            "this command changes or removes data and needs confirmation",
            "Pass --yes to confirm when not running on a terminal.",
        )
    if not typer.confirm(question, default=False, err=True):
        raise UsageError("aborted", "nothing was changed", exit_code=1)


def prompt_or_require(value: str | None, question: str, flag: str) -> str:
    """Use the value, prompt for it on a terminal, or fail naming the flag."""
    if value is not None:
        return value
    if not is_interactive():
        raise UsageError("missing_value", f"{flag} is required when not running on a terminal")
    return str(typer.prompt(question, err=True))


def seconds_option(minimum: float = 0.0, *, inclusive: bool = False) -> Callable[..., float | None]:
    """A typer callback for a duration flag: a finite number of seconds above `minimum` (or at
    least it, when `inclusive`). inf, nan and negative numbers parse as floats; they are refused."""
    import math

    def check(ctx: typer.Context, param: typer.CallbackParam, value: float | None) -> float | None:
        if value is None or (math.isfinite(value) and (value >= minimum if inclusive else value > minimum)):
            return value
        name = param.opts[0] if param.opts else "the value"
        bound = f"at least {minimum:g}" if inclusive else f"above {minimum:g}"
        raise UsageError("invalid_value", f"{name} must be a number of seconds {bound}, not {value:g}",
                         f"Example: {name} {max(minimum, 1) * 300:g}")  # fmt: skip

    return check
