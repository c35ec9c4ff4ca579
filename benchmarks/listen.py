"""`cxslack listen` over HTTP: 1,000 thread replies delivered as fast as the listener acks them.

The listener runs in its own process (durable inbox in a temp dir, fsync per event) with a fake
handler that counts comments, so the figure is the transport's: verify the signature, store the
event, answer 200, process in order. A few concurrent senders post signed `message` events (thread
replies) over keep-alive connections, plus Slack-style retries (`X-Slack-Retry-Num`) of a tenth of
them. Reported: ack latency p50/p99 (target p99 < 100 ms), comments processed per second, lost
and duplicated events (both must be 0), against a same-run baseline: a bare stdlib HTTP server in
its own process that answers 200 without verifying or storing anything.

With --state-url (a scratch PostgreSQL database: its cxslack_events table is emptied between runs),
the same deliveries then go to 1, 2 and 3 replicas sharing that database — each delivery to one
replica and each retry to another, as a load balancer would — and each run reports events
processed per second, ack p99, lost/duplicated across replicas, and the ratio to the file-state
single process measured in the same run with the same handler. `--handler-ms` gives the handler
that much work per event (a Coralogix call), spread over `--threads` Slack threads (events of one
thread are handled in order, one at a time, whichever replica takes them).

    python benchmarks/listen.py [--events N] [--senders K] [--retries FRACTION]
    python benchmarks/listen.py --state-url postgresql://127.0.0.1:5432/scratch?user=me [--handler-ms 5] [--threads 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import percentile, post_all, report

SECRET = "benchmark-signing-secret"
THREAD_TS = "1700000000.000100"


def _handler(handled: list[str], work_ms: float) -> Any:
    def handle(envelope: dict[str, Any]) -> None:
        if work_ms:
            time.sleep(work_ms / 1000)
        handled.append(envelope["event_id"])

    return handle


def _listener(ready: Any, stop: Any, handled_out: Any, inbox_dir: str, work_ms: float = 0.0) -> None:
    from cxslack.listen import Listener
    from cxslack.state.inbox import Inbox

    handled: list[str] = []
    listener = Listener(
        _handler(handled, work_ms), Inbox(Path(inbox_dir)), signing_secret=SECRET, log=lambda line: None
    )
    ready.put(listener.serve_http("127.0.0.1", 0))
    stop.wait()
    listener.stop()
    handled_out.put(handled)


def _replica(ready: Any, stop: Any, handled_out: Any, state_url: str, work_ms: float = 0.0) -> None:
    """One `listen` replica on the shared database (its inbox claims from the same table)."""
    from cxslack.listen import Listener
    from cxslack.state.postgres import postgres_state
    from cxslack.store import Store

    handled: list[str] = []
    inbox = postgres_state(state_url, Store()).open_inbox()  # sealing with the run's key
    listener = Listener(_handler(handled, work_ms), inbox, signing_secret=SECRET, log=lambda line: None)
    ready.put(listener.serve_http("127.0.0.1", 0))
    stop.wait()
    listener.stop()
    handled_out.put(handled)


def _bare(ready: Any, stop: Any, handled_out: Any, inbox_dir: str, work_ms: float = 0.0) -> None:
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
def server_process(target: Any, where: str | None = None, work_ms: float = 0.0) -> Iterator[tuple[int, Any]]:
    """Run `target` in its own process (its own GIL); yields its port and a function that stops it
    and returns the event ids its handler saw. `where`: the state URL (default: a temp inbox dir)."""
    ctx = multiprocessing.get_context("spawn")
    ready, handled, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    with tempfile.TemporaryDirectory() as tmp:
        args = (ready, stop, handled, where or str(Path(tmp) / "events"), work_ms)
        proc = ctx.Process(target=target, args=args, daemon=True)
        proc.start()

        def finish() -> list[str]:
            stop.set()
            return list(handled.get(timeout=60))

        try:
            yield ready.get(timeout=30), finish
        finally:
            stop.set()
            proc.join(timeout=30)


def deliveries(count: int, retries: float, threads: int = 1) -> list[bytes]:
    """`count` thread replies over `threads` threads, then Slack's retries of every 1/retries-th of them."""
    bodies = []
    for n in range(count):
        event = {
            "type": "message",
            "channel": "C0CASES",
            "user": "U0BOB",
            "text": f"comment {n}",
            "ts": f"1700000001.{n:06d}",
            "thread_ts": THREAD_TS if threads == 1 else f"1700000000.{n % threads:06d}",
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


def send_all(port: int | list[int], bodies: list[bytes], senders: int, originals: int) -> list[float]:
    """Post every body from `senders` threads, each on its own keep-alive connection; ack latencies in s.
    With several ports (replicas), delivery n goes to port n, and its retry to the next one."""
    ports = port if isinstance(port, list) else [port]
    from cxslack.sandbox.events import signed_headers

    def post(client: httpx.Client, index: int) -> httpx.Response:
        body, retry = bodies[index], index >= originals
        headers = signed_headers(SECRET, body, retry_num=1 if retry else 0)
        original = int(json.loads(body)["event_id"][-4:])  # a retry goes to the next replica
        target = ports[(original + int(retry)) % len(ports)]
        return client.post(f"http://127.0.0.1:{target}/slack/events", content=body, headers=headers)

    return post_all(len(bodies), senders, post)


def wait_processed(port: int | list[int], count: int, timeout: float = 300) -> None:
    """Until the replicas together processed `count` events."""
    ports = port if isinstance(port, list) else [port]
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10, trust_env=False) as client:
        while sum(client.get(f"http://127.0.0.1:{p}/healthz").json()["processed"] for p in ports) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"not all {count} events were processed within {timeout:.0f} s")
            time.sleep(0.01)


@dataclass
class Run:
    acks: list[float]
    processed_wall: float
    handled: list[str]

    def per_second(self, events: int) -> float:
        return events / self.processed_wall


def run_file(bodies: list[bytes], args: argparse.Namespace) -> Run:
    return measure(bodies, args, _listener, None, 1)


def run_replicas(bodies: list[bytes], args: argparse.Namespace, replicas: int) -> Run:
    reset(args.state_url)
    return measure(bodies, args, _replica, args.state_url, replicas)


def measure(bodies: list[bytes], args: argparse.Namespace, target: Any, where: str | None, count: int) -> Run:
    """`count` listener processes warmed up, then every delivery; until all were processed."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        servers = [stack.enter_context(server_process(target, where, args.handler_ms)) for _ in range(count)]
        ports = [port for port, _ in servers]
        send_all(ports, warmup(bodies), args.senders, 0)
        wait_processed(ports, len(WARMUP))
        started = time.perf_counter()
        acks = send_all(ports, bodies, args.senders, args.events)
        wait_processed(ports, args.events + len(WARMUP))
        wall = time.perf_counter() - started
        handled = [h for _, finish in servers for h in finish() if h not in WARMUP]
    return Run(acks, wall, handled)


WARMUP = {f"EvWARM{n:04d}" for n in range(20)}


def warmup(bodies: list[bytes]) -> list[bytes]:
    """20 events that warm connections and imports up (not counted)."""
    out = []
    for n in range(20):
        doc = json.loads(bodies[n % len(bodies)])
        doc["event_id"] = f"EvWARM{n:04d}"
        out.append(json.dumps(doc).encode())
    return out


def reset(state_url: str) -> None:
    """A migrated scratch database with an empty event table, sealed with this run's key."""
    from cxslack.state.postgres import close, database
    from cxslack.state.postgres.db import Database
    from cxslack.state.postgres.schema import migrate

    scratch = Database(state_url)
    try:
        migrate(scratch)
    finally:
        scratch.close()
    with database(state_url).connection() as connection:
        connection.execute("TRUNCATE cxslack_events, cxslack_state_key")
    close(state_url)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--retries", type=float, default=0.1, help="fraction of events Slack sends twice")
    parser.add_argument(
        "--state-url", help="a scratch PostgreSQL database: also measure 1, 2 and 3 replicas on it"
    )
    parser.add_argument("--handler-ms", type=float, default=0.0, help="work per event in the handler (ms)")
    parser.add_argument("--threads", type=int, default=1, help="Slack threads the replies are spread over")
    args = parser.parse_args()
    os.environ.setdefault("CXSLACK_STATE_KEY", secrets.token_urlsafe(32))  # the replicas' key
    bodies = deliveries(args.events, args.retries, args.threads)
    wanted = {f"EvBENCH{n:06d}" for n in range(args.events)}
    ms = 1000

    with server_process(_bare) as (port, finish):
        send_all(port, bodies[:50], args.senders, args.events)  # warm-up: connections, imports
        started = time.perf_counter()
        bare = send_all(port, bodies, args.senders, args.events)
        bare_wall = time.perf_counter() - started
        finish()

    with server_process(_listener, work_ms=args.handler_ms) as (port, finish):
        started = time.perf_counter()
        acks = send_all(port, bodies, args.senders, args.events)
        ack_wall = time.perf_counter() - started
        wait_processed(port, args.events)
        processed_wall = time.perf_counter() - started
        handled = finish()

    lost, duplicated = len(wanted - set(handled)), len(handled) - len(set(handled))
    p99, bare_p99 = percentile(acks, 99), percentile(bare, 99)
    failed = bool(lost or duplicated or p99 >= 0.1)
    rows = [
        ("deliveries", f"{len(bodies)} ({args.events} thread replies over {args.threads} thread(s) + {len(bodies) - args.events} Slack retries), {args.senders} senders, handler {args.handler_ms:g} ms"),
        ("ack latency p50 / p99 / max", f"{percentile(acks, 50) * ms:6.2f} / {p99 * ms:6.2f} / {max(acks) * ms:6.2f} ms  (target p99 < 100 ms)"),
        ("baseline p50 / p99 (bare 200)", f"{percentile(bare, 50) * ms:6.2f} / {bare_p99 * ms:6.2f} ms  -> listener p99 is {p99 / bare_p99:.1f}x the baseline"),
        ("acks per second", f"{len(bodies) / ack_wall:8.0f}  (baseline {len(bodies) / bare_wall:.0f}: {bare_wall / ack_wall:.2f}x)"),
        ("comments processed per second", f"{args.events / processed_wall:8.0f}  (all {args.events} in {processed_wall:.2f} s)"),
        ("lost / duplicated", f"{lost} / {duplicated}  (must be 0 / 0)"),
    ]  # fmt: skip
    if args.state_url:
        files = run_file(bodies, args)
        file_rate = files.per_second(args.events)
        rows.append(
            (
                "files, 1 process (same run)",
                f"{file_rate:8.0f} events/s, ack p99 {percentile(files.acks, 99) * ms:6.2f} ms",
            )
        )
        for replicas in (1, 2, 3):
            run = run_replicas(bodies, args, replicas)
            lost, duplicated = len(wanted - set(run.handled)), len(run.handled) - len(set(run.handled))
            rate, run_p99 = run.per_second(args.events), percentile(run.acks, 99)
            failed = failed or bool(lost or duplicated or run_p99 >= 0.1)
            rows.append((f"PostgreSQL, {replicas} replica(s)", f"{rate:8.0f} events/s ({rate / file_rate:.2f}x files), ack p99 {run_p99 * ms:6.2f} ms, lost / duplicated {lost} / {duplicated}"))  # fmt: skip
    report(rows)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
