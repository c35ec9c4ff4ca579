"""Throughput of the Slack sandbox against a same-run baseline.

The sandbox runs in its own process with rate limits off. Eight client threads, each on one
persistent http.client connection, call `auth.test` and then `chat.postMessage` for a few
seconds (or a bounded number of calls) each. The baseline is a bare stdlib ThreadingHTTPServer
(HTTP/1.1 keep-alive, same socket options) answering a fixed JSON body, driven the same way, so
the ratio shows what the sandbox's own work costs. Target: ≥ 1,000 requests/s for both methods.

    python benchmarks/sandbox.py [--seconds S] [--clients N]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report

TARGET = 1000.0
MAX_CALLS_PER_CLIENT = 50_000


def serve_sandbox(ready: Queue[tuple[int, str]]) -> None:
    from cxslack.sandbox import SlackSandbox

    sandbox = SlackSandbox(rate_limits=False).start()
    ready.put((sandbox.port, sandbox.issue_token()["access_token"]))
    threading.Event().wait()  # until the parent terminates this process


class FixedJson(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    body = b'{"ok":true}'

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_baseline(ready: Queue[tuple[int, str]]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FixedJson)
    server.daemon_threads = True
    ready.put((server.server_address[1], ""))
    server.serve_forever()


def start(target: Callable[[Queue[tuple[int, str]]], None]) -> tuple[multiprocessing.Process, int, str]:
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no threads inherited
    ready: Queue[tuple[int, str]] = context.Queue()
    process = context.Process(target=target, args=(ready,), daemon=True)
    process.start()
    port, token = ready.get(timeout=60)
    return process, port, token


def hammer(port: int, path: str, body: bytes, token: str, clients: int, seconds: float) -> float:
    """Requests per second that `clients` threads on keep-alive connections get through."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {token}"}
    counts = [0] * clients
    failures: list[str] = []
    go = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.connect()
        go.wait()
        while counts[index] < MAX_CALLS_PER_CLIENT and time.perf_counter() < deadline[0]:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200 or b'"ok":true' not in answer:
                failures.append(f"{response.status} {answer[:120]!r}")
                break
            counts[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    go.wait()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{path}: {failures[0]}")
    return sum(counts) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement (default 3)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    args = parser.parse_args()

    baseline_process, baseline_port, _ = start(serve_baseline)
    sandbox_process, sandbox_port, token = start(serve_sandbox)
    try:
        baseline = hammer(baseline_port, "/api/auth.test", b"", "", args.clients, args.seconds)
        auth_test = hammer(sandbox_port, "/api/auth.test", b"", token, args.clients, args.seconds)
        post_body = urlencode({"channel": "general", "text": "Case P1 opened"}).encode()
        post = hammer(sandbox_port, "/api/chat.postMessage", post_body, token, args.clients, args.seconds)
    finally:
        for process in (baseline_process, sandbox_process):
            process.terminate()
            process.join()

    report(
        [
            ("clients", f"{args.clients} threads, keep-alive, {args.seconds:g} s per measurement"),
            ("baseline (stdlib server, fixed JSON)", f"{baseline:,.0f} req/s"),
            ("sandbox auth.test", f"{auth_test:,.0f} req/s ({auth_test / baseline:.2f}× baseline)"),
            ("sandbox chat.postMessage", f"{post:,.0f} req/s ({post / baseline:.2f}× baseline)"),
            ("target", f"≥ {TARGET:,.0f} req/s: {'met' if min(auth_test, post) >= TARGET else 'MISSED'}"),
        ]
    )
    return 0 if min(auth_test, post) >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
