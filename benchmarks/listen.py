"""`cxslack listen` over HTTP: 1,000 thread replies delivered as fast as the listener acks them.

The listener runs in its own process (durable inbox in a temp dir, fsync per event) with a fake
handler that counts comments, so the figure is the transport's: verify the signature, store the
event, answer 200, process in order. A few concurrent senders post signed `message` events (thread
replies) over keep-alive connections, plus Slack-style retries (`X-Slack-Retry-Num`) of a tenth of
them. Reported: ack latency p50/p99 (target p99 < 100 ms), comments processed per second, lost
and duplicated events (both must be 0), against a same-run baseline: a bare stdlib HTTP server in
its own process that answers 200 without verifying or storing anything.

    python benchmarks/listen.py [--events N] [--senders K] [--retries FRACTION]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report

SECRET = "benchmark-signing-secret"
THREAD_TS = "1700000000.000100"


def _listener(ready: Any, stop: Any, handled_out: Any, inbox_dir: str) -> None:
    from cxslack.listen import Listener
    from cxslack.state.inbox import Inbox

    handled: list[str] = []
    listener = Listener(
        lambda envelope: handled.append(envelope["event_id"]),
        Inbox(Path(inbox_dir)),
        signing_secret=SECRET,
        log=lambda line: None,
    )
    ready.put(listener.serve_http("127.0.0.1", 0))
    stop.wait()
    listener.stop()
    handled_out.put(handled)


def _bare(ready: Any, stop: Any, handled_out: Any, inbox_dir: str) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Answer200(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer200)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ready.put(server.server_address[1])
    stop.wait()
    handled_out.put([])


@contextmanager
def server_process(target: Any) -> Iterator[tuple[int, Any]]:
    """Run `target` in its own process (its own GIL); yields its port and a function that stops it
    and returns the event ids its handler saw."""
    ctx = multiprocessing.get_context("spawn")
    ready, handled, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    with tempfile.TemporaryDirectory() as tmp:
        proc = ctx.Process(target=target, args=(ready, stop, handled, str(Path(tmp) / "events")), daemon=True)
        proc.start()

        def finish() -> list[str]:
            stop.set()
            return list(handled.get(timeout=60))

        try:
            yield ready.get(timeout=30), finish
        finally:
            stop.set()
            proc.join(timeout=30)


def deliveries(count: int, retries: float) -> list[bytes]:
    """`count` thread replies, then Slack's retries of every 1/retries-th of them."""
    bodies = []
    for n in range(count):
        event = {
            "type": "message",
            "channel": "C0CASES",
            "user": "U0BOB",
            "text": f"comment {n}",
            "ts": f"1700000001.{n:06d}",
            "thread_ts": THREAD_TS,
            "parent_user_id": "U0SANDBOXBOT",
        }
        envelope = {
            "type": "event_callback",
            "event_id": f"EvBENCH{n:06d}",
            "event_time": 1700000001,
            "team_id": "T0SANDBOX",
            "api_app_id": "A0SANDBOX",
            "event": event,
        }
        bodies.append(json.dumps(envelope).encode())
    step = max(1, round(1 / retries)) if retries else 0
    return bodies + (bodies[::step] if step else [])


def send_all(port: int, bodies: list[bytes], senders: int, originals: int) -> list[float]:
    """Post every body from `senders` threads, each on its own keep-alive connection; ack latencies in s."""
    from cxslack.sandbox.events import signed_headers

    latencies: list[float] = []
    lock = threading.Lock()
    cursor = iter(enumerate(bodies))

    def sender() -> None:
        with httpx.Client(timeout=10, trust_env=False) as client:
            while True:
                with lock:
                    item = next(cursor, None)
                if item is None:
                    return
                index, body = item
                headers = signed_headers(SECRET, body, retry_num=1 if index >= originals else 0)
                started = time.perf_counter()
                status = client.post(
                    f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers
                ).status_code
                elapsed = time.perf_counter() - started
                if status != 200:
                    raise SystemExit(f"delivery {index} answered {status}")
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def percentile(samples: list[float], p: float) -> float:
    return (
        statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1]
        if len(samples) > 1
        else samples[0]
    )


def wait_processed(port: int, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10, trust_env=False) as client:
        while client.get(f"http://127.0.0.1:{port}/healthz").json()["processed"] < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"not all {count} events were processed within {timeout:.0f} s")
            time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--retries", type=float, default=0.1, help="fraction of events Slack sends twice")
    args = parser.parse_args()
    bodies = deliveries(args.events, args.retries)

    with server_process(_bare) as (port, finish):
        send_all(port, bodies[:50], args.senders, args.events)  # warm-up: connections, imports
        started = time.perf_counter()
        bare = send_all(port, bodies, args.senders, args.events)
        bare_wall = time.perf_counter() - started
        finish()

    with server_process(_listener) as (port, finish):
        started = time.perf_counter()
        acks = send_all(port, bodies, args.senders, args.events)
        ack_wall = time.perf_counter() - started
        wait_processed(port, args.events)
        processed_wall = time.perf_counter() - started
        handled = finish()

    wanted = {f"EvBENCH{n:06d}" for n in range(args.events)}
    lost, duplicated = len(wanted - set(handled)), len(handled) - len(set(handled))
    p99, bare_p99 = percentile(acks, 99), percentile(bare, 99)
    ms = 1000
    report([
        ("deliveries", f"{len(bodies)} ({args.events} thread replies + {len(bodies) - args.events} Slack retries), {args.senders} senders"),
        ("ack latency p50 / p99 / max", f"{percentile(acks, 50) * ms:6.2f} / {p99 * ms:6.2f} / {max(acks) * ms:6.2f} ms  (target p99 < 100 ms)"),
        ("baseline p50 / p99 (bare 200)", f"{percentile(bare, 50) * ms:6.2f} / {bare_p99 * ms:6.2f} ms  -> listener p99 is {p99 / bare_p99:.1f}x the baseline"),
        ("acks per second", f"{len(bodies) / ack_wall:8.0f}  (baseline {len(bodies) / bare_wall:.0f}: {bare_wall / ack_wall:.2f}x)"),
        ("comments processed per second", f"{args.events / processed_wall:8.0f}  (all {args.events} in {processed_wall:.2f} s)"),
        ("lost / duplicated", f"{lost} / {duplicated}  (must be 0 / 0)"),
    ])  # fmt: skip
    if lost or duplicated or p99 >= 0.1:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
