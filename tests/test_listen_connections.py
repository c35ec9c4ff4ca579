"""`listen` over HTTP under misbehaving clients: one log line for a dropped client, and a bounded
pool of threads however many connections are open."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest

from cxslack.listen.http import POOL_SIZE

from .test_listen import FakeHandler, Running, envelope, events_dir, listen  # noqa: F401 (fixtures)


def abort_mid_request(port: int) -> None:
    """Headers promising a body, part of it, then a reset (SO_LINGER 0) instead of the rest."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"X-Slack-Signature: v0=00\r\nX-Slack-Request-Timestamp: 1\r\nContent-Length: 100000\r\n\r\n"
                 b'{"type": "event_')  # fmt: skip
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def test_a_dropped_client_is_one_log_line_not_a_traceback(
    listen: Callable[..., Running],  # noqa: F811 (the fixture)
    capfd: pytest.CaptureFixture[str],
) -> None:
    running = listen(FakeHandler())
    for _ in range(50):
        abort_mid_request(running.port)
    deadline = time.monotonic() + 10
    while sum("dropped" in line for line in running.log) < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.post(envelope(1)).status_code == 200  # still serving
    assert running.listener.drain(5)
    err = capfd.readouterr().err
    assert "Traceback" not in err
    dropped = [line for line in running.log if "dropped" in line]
    assert len(dropped) == 50, running.log
    assert all(line.count("\n") == 0 and "connection from 127.0.0.1 dropped" in line for line in dropped)


def test_many_slow_clients_use_a_bounded_pool_of_threads(
    listen: Callable[..., Running],  # noqa: F811 (the fixture)
) -> None:
    running = listen(FakeHandler())
    before = threading.active_count()
    slow = []
    for _ in range(150):  # each sends half a request line and then nothing
        conn = socket.create_connection(("127.0.0.1", running.port))
        conn.sendall(b"POST /slack/ev")
        slow.append(conn)
    time.sleep(0.5)
    assert threading.active_count() - before <= POOL_SIZE + 2
    for conn in slow:
        conn.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the pool frees itself as the clients go
        try:
            if running.post(envelope(2)).status_code == 200:
                break
        except OSError:
            time.sleep(0.1)
    assert running.listener.drain(5)
