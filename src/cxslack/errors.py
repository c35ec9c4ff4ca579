"""Domain errors: a stable code, a one-line message, a hint, and the exit code they map to.

The CLI has exactly one place that turns these into output and exit codes (cli/app.py).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_AUTH = 4
EXIT_PARTIAL = 5
EXIT_INTERRUPTED = 130


def batch_exit_code(failed: int, total: int) -> int:
    """A batch's outcome: 0 when nothing failed, 5 when some items did, 1 when all did."""
    if not failed:
        return EXIT_OK
    return EXIT_PARTIAL if failed < total else EXIT_FAILED


class CxError(Exception):
    """An expected failure with a stable snake_case code; never carries a secret."""

    exit_code = EXIT_FAILED

    def __init__(self, code: str, message: str, hint: str | None = None, *, exit_code: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class UsageError(CxError):
    exit_code = EXIT_USAGE


class NotFoundError(CxError):
    exit_code = EXIT_NOT_FOUND


class AuthError(CxError):
    exit_code = EXIT_AUTH


class ConfigError(CxError):
    """A config or credentials file that cannot be used; the file is left untouched."""

    exit_code = EXIT_FAILED
