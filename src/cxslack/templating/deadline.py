"""A CPU-time deadline for template code."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import FrameType


TEMPLATE_FILENAME = "<template>"  # jinja's filename for from_string(); the tracer keys on it


class RenderTimeout(BaseException):
    """Raised inside template code; a BaseException so no `except Exception` on the way swallows it."""


@contextlib.contextmanager
def cpu_deadline(seconds: float) -> Iterator[None]:
    """Abort template code once this thread has spent `seconds` of CPU time.

    SandboxedEnvironment bounds nothing in time, and a loop in a template is a plain Python loop. A
    tracer sees every line the compiled template executes and raises once the thread's CPU time is
    past the deadline; it traces template code only, so filters and jinja's runtime (bounded by the
    size limits) run at full speed. CPU rather than wall time, so renders running side by side in
    other threads do not time each other out. The thread's previous tracer is restored afterwards.
    """
    deadline = time.thread_time() + seconds
    next_check = time.monotonic()

    def trace_template(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal next_check
        # The thread's CPU clock costs ~1 µs a read, the monotonic clock ~0.2 µs: read it every 5 ms.
        if time.monotonic() >= next_check:
            if time.thread_time() > deadline:
                raise RenderTimeout
            next_check = time.monotonic() + 0.005
        return trace_template

    def trace_calls(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == TEMPLATE_FILENAME:
            return trace_template(frame, event, arg)
        return None

    previous = sys.gettrace()
    sys.settrace(trace_calls)
    try:
        yield
    finally:
        sys.settrace(previous)
