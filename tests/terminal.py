"""Run the real `cxslack` with one of its streams on a pseudo-terminal (tables, progress bars and
colour are only drawn for a terminal)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass


@dataclass
class TerminalRun:
    exit_code: int
    terminal: str  # what the terminal showed (CRLF as LF)
    other: str  # the stream that was piped


def on_terminal(
    *args: str, stream: str = "stdout", columns: int = 80, env: dict[str, str] | None = None
) -> TerminalRun:
    """`cxslack ARGS` with `stream` (stdout or stderr) on a terminal `columns` wide, the other piped."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, stream: follower}
    proc = subprocess.Popen([sys.executable, "-m", "cxslack", *args], stdin=subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": str(columns), **(env or {})}, **streams)  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    piped = proc.stderr if stream == "stdout" else proc.stdout
    assert piped is not None
    other = piped.read().decode()
    return TerminalRun(proc.wait(timeout=60), b"".join(chunks).decode().replace("\r\n", "\n"), other)
