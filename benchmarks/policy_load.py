"""Load generator for the policy service: lookups per second and p50/p99 latency, both protocols.

    python benchmarks/policy_load.py [--protocol postfix|http|all] [--connections 16]
                                     [--requests 100000] [--seconds 20] [--accounts 10000] [--uvloop]

The server runs in a child process (this script with ``--serve``), on 127.0.0.1 only, with an
in-memory engine holding decisions for 3 % of the accounts (throttled, paused, held, blocked);
this process is the load generator: ``--connections`` persistent connections, each sending one
request and waiting for its answer before the next (as a Postfix smtpd process does), until
``--requests`` answers or ``--seconds`` have passed, whichever comes first. Requests are
realistic: Postfix's full attribute set (SMTPD_POLICY_README) for 10,000 accounts, one to four
RCPT lookups per message with its ``instance``, then its END-OF-MESSAGE lookup.

HTTP is measured side by side with a bare Flask endpoint (a constant JSON answer) served the same
way (Werkzeug's threaded WSGI server, in the same kind of child process), so the ratio says what
the policy lookup costs on top of Flask itself. Werkzeug's server closes every connection after
one answer, so the HTTP clients connect again for each request, for both endpoints alike.

Targets (issue 4, section 4, on a 2-core machine with the load generator on it): Postfix protocol
>= 10,000 lookups/s with p99 < 5 ms at 16 connections; HTTP >= 70 % of the bare endpoint's rate.
For scale, a bare asyncio server that only counts is measured just before ours, in the same
conditions (other work on the machine slows both alike).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import random
import resource
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from policy.codec import Dialect, encode_request  # noqa: E402 - the repository must be on the path first

__all__ = ["main"]

TARGET_RATE, TARGET_P99_MS, TARGET_HTTP_RATIO = 10_000, 5.0, 0.70
FREEMAIL = ("gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com", "gmx.de", "example.org")


def account(n: int) -> str:
    return f"user{n}@customer{n // 5}.example"


def postfix_requests(accounts: int, count: int, rng: random.Random) -> list[dict[str, str]]:
    """Lookups as Postfix sends them: RCPT per recipient, then END-OF-MESSAGE, per message."""
    out: list[dict[str, str]] = []
    message = 0
    while len(out) < count:
        message += 1
        n = rng.randrange(accounts)
        recipients = [f"r{rng.randrange(10**6)}@{rng.choice(FREEMAIL)}" for _ in range(rng.randint(1, 4))]
        base = {"request": "smtpd_access_policy", "protocol_name": "ESMTP", "helo_name": f"pc{n}.dsl.example",
                "queue_id": "", "sender": account(n), "recipient_count": "0",
                "client_address": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
                "client_name": "unknown", "reverse_client_name": "unknown", "instance": f"{message:x}.6a3b.1",
                "sasl_method": "plain", "sasl_username": account(n), "sasl_sender": "", "size": "4321",
                "ccert_subject": "", "ccert_issuer": "", "ccert_fingerprint": "",
                "ccert_pubkey_fingerprint": "",
                "encryption_protocol": "TLSv1.3", "encryption_cipher": "TLS_AES_256_GCM_SHA384",
                "encryption_keysize": "256", "etrn_domain": "", "stress": "", "client_port": "53211",
                "policy_context": "", "server_address": "127.0.0.1", "server_port": "587",
                "compatibility_level": "3.6", "mail_version": "3.7.11"}
        for recipient in recipients:
            out.append({**base, "protocol_state": "RCPT", "recipient": recipient})
        out.append({**base, "protocol_state": "END-OF-MESSAGE", "recipient": "",
                    "recipient_count": str(len(recipients))})
    return out[:count]


def http_paths(requests: list[dict[str, str]]) -> list[bytes]:
    paths = []
    for r in requests:
        query = {"account": r["sasl_username"], "sender": r["sender"], "client_address": r["client_address"],
                 "instance": r["instance"], "protocol_state": r["protocol_state"]}
        if r["recipient"]:
            query["recipient"] = r["recipient"]
        else:
            query["recipient_count"] = r["recipient_count"]
        paths.append(f"/v1/policy?{urlencode(query)}".encode())
    return paths


# --- the server side (child process) -------------------------------------------------------------

def build_engine(accounts: int) -> object:
    from policy.cache import DecisionCache
    from policy.engine import MemorySendSink, PolicyEngine
    from reputation.model import Action, Decision, Identity, IdentityKind, State

    rng = random.Random(7)
    now = datetime.now(UTC)
    states = [(State.THROTTLED, Action.THROTTLE, 50), (State.PAUSED, Action.DEFER, None),
              (State.HELD, Action.HOLD, None), (State.BLOCKED, Action.REJECT, None)]
    decisions = []
    for n in rng.sample(range(accounts), accounts * 3 // 100):
        state, action, limit = rng.choice(states)
        decisions.append(Decision(Identity(IdentityKind.ACCOUNT, account(n)), state, action, "bench_rule",
                                  "a benchmark decision", limit, now + timedelta(days=1), {}, now))
    sink = MemorySendSink(max_pending=100_000)

    def flush() -> None:  # drained every second as the database flusher will
        while True:
            time.sleep(1)
            sink.drain()

    threading.Thread(target=flush, daemon=True).start()
    return PolicyEngine(DecisionCache(decisions), sink)


def serve_postfix(port: int, accounts: int) -> None:
    from policy.server import serve
    serve(build_engine(accounts), [f"127.0.0.1:{port}"])  # type: ignore[arg-type]


def serve_bare_postfix(port: int, accounts: int) -> None:
    """The reference point of issue 4: an asyncio server that only counts requests and says DUNNO."""
    import signal

    class Bare(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            requests = self.buffer.count(b"\n\n")
            if requests:
                self.buffer = self.buffer[self.buffer.rfind(b"\n\n") + 2:]
                self.transport.write(b"action=DUNNO\n\n" * requests)  # type: ignore[attr-defined]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        server = await loop.create_server(Bare, "127.0.0.1", port)
        await stop.wait()
        server.close()

    asyncio.run(main())


def serve_http(port: int, accounts: int) -> None:
    from flask import Flask, Response, jsonify
    from werkzeug.serving import WSGIRequestHandler, make_server

    from policy.http import blueprint

    app = Flask("bench")
    app.register_blueprint(blueprint(build_engine(accounts), lambda: None))  # type: ignore[arg-type]

    @app.get("/bare")
    def bare() -> Response:
        return jsonify(action="allow", smtp_code=None, smtp_text="", rule=None, retry_after=None)

    class Handler(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real MTA client would

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass  # one log line per request would measure the terminal

    make_server("127.0.0.1", port, app, threaded=True, request_handler=Handler).serve_forever()


# --- the load generator --------------------------------------------------------------------------

class Client(asyncio.Protocol):
    """One persistent connection: send, wait for a complete answer, repeat."""

    def __init__(self, complete: Callable[[bytearray], int]) -> None:
        self.complete = complete  # -> length of a complete answer at the start of the buffer, or 0
        self.buffer = bytearray()
        self.waiter: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        size = self.complete(self.buffer)
        if size and self.waiter is not None and not self.waiter.done():
            answer = bytes(self.buffer[:size])
            del self.buffer[:size]
            self.waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    async def ask(self, payload: bytes) -> bytes:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await self.waiter


def postfix_complete(buffer: bytearray) -> int:
    end = buffer.find(b"\n\n")
    return end + 2 if end >= 0 else 0


def http_complete(buffer: bytearray) -> int:
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return 0
    head = bytes(buffer[:end]).lower()
    start = head.find(b"content-length:")
    length = int(head[start + 15:].split(b"\r\n", 1)[0]) if start >= 0 else 0
    return end + 4 + length if len(buffer) >= end + 4 + length else 0


async def run_load(port: int, payloads: list[bytes], complete: Callable[[bytearray], int],
                   connections: int, total: int, seconds: float,
                   classify: Callable[[bytes], str]) -> tuple[float, list[float], Counter[str]]:
    """Seconds taken, latencies (seconds) and answers by kind."""
    loop = asyncio.get_running_loop()
    clients = [(await loop.create_connection(lambda: Client(complete), "127.0.0.1", port))[1]
               for _ in range(connections)]
    latencies: list[float] = []
    kinds: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds
    issued = 0

    async def worker(client: Client, offset: int) -> None:
        nonlocal issued
        index = offset
        while issued < total and time.perf_counter() < deadline:
            issued += 1
            started = time.perf_counter()
            if client.transport is None or client.transport.is_closing():
                # Werkzeug's server closes every HTTP connection after one answer: connect again.
                client = (await loop.create_connection(lambda: Client(complete), "127.0.0.1", port))[1]
            answer = await client.ask(payloads[index % len(payloads)])
            latencies.append(time.perf_counter() - started)
            kinds[classify(answer)] += 1
            index += connections
            if b"\r\nConnection: close\r\n" in answer[:answer.find(b"\r\n\r\n") + 2]:
                client.transport.close()  # type: ignore[union-attr]

    started = time.perf_counter()
    await asyncio.gather(*(worker(c, i) for i, c in enumerate(clients)))
    elapsed = time.perf_counter() - started
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    return elapsed, latencies, kinds


def _cpu(after: resource.struct_rusage, before: resource.struct_rusage) -> float:
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (proc(5), /proc/PID/stat fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def start_server(kind: str, accounts: int, use_uvloop: bool) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, __file__, "--serve", kind, "--port", str(port), "--accounts", str(accounts)]
    process = subprocess.Popen([*command, *(["--uvloop"] if use_uvloop else [])])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the {kind} server did not start")


class Side:
    """One server measured: its name, the kind of child server, what it is sent; and the totals."""

    def __init__(self, name: str, kind: str, payloads: list[bytes]) -> None:
        self.name, self.kind, self.payloads = name, kind, payloads
        self.elapsed, self.server_cpu, self.client_cpu = 0.0, 0.0, 0.0
        self.latencies: list[float] = []
        self.kinds: Counter[str] = Counter()

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def report(self) -> None:
        p50, p99 = percentile(self.latencies, 0.50), percentile(self.latencies, 0.99)
        answers = ", ".join(f"{k} {v}" for k, v in self.kinds.most_common())
        # CPU per answer on each side says which one is the bottleneck (the server's start-up excluded).
        n = len(self.latencies)
        print(f"{self.name:<20} {n:>7} answers {self.rate:>8,.0f}/s  p50 {p50:5.2f} ms  p99 {p99:6.2f} ms  "
              f"CPU/answer: server {self.server_cpu / n * 1e6:.0f} us, load generator "
              f"{self.client_cpu / n * 1e6:.0f} us\n    ({answers})")


def compare(sides: list[Side], complete: Callable[[bytearray], int], classify: Callable[[bytes], str],
            args: argparse.Namespace) -> None:
    """Measure ``sides`` in alternating rounds, so that other work on the machine hits them alike."""
    kinds = {side.kind for side in sides}
    servers = {kind: start_server(kind, args.accounts, args.uvloop) for kind in sorted(kinds)}
    try:
        for _ in range(args.rounds):
            for side in sides:
                process, port = servers[side.kind]
                server_cpu, me = _process_cpu(process.pid), resource.getrusage(resource.RUSAGE_SELF)
                elapsed, latencies, answers = asyncio.run(run_load(
                    port, side.payloads, complete, args.connections, args.requests // args.rounds,
                    args.seconds / args.rounds, classify))
                side.server_cpu += _process_cpu(process.pid) - server_cpu
                side.client_cpu += _cpu(resource.getrusage(resource.RUSAGE_SELF), me)
                side.elapsed += elapsed
                side.latencies += latencies
                side.kinds += answers
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=10)
    for side in sides:
        side.report()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=["postfix", "http", "all"], default="all")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=100_000, help="answers per measurement, at most")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per measurement, at most")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per comparison")
    parser.add_argument("--uvloop", action="store_true", help="serve on uvloop (if installed)")
    parser.add_argument("--serve", choices=["postfix", "bare-postfix", "http"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        if args.uvloop:
            importlib.import_module("uvloop").install()  # optional: only for this flag
        servers = {"postfix": serve_postfix, "bare-postfix": serve_bare_postfix, "http": serve_http}
        servers[args.serve](args.port, args.accounts)
        return 0
    requests = postfix_requests(args.accounts, 50_000, random.Random(1))
    print(f"{args.connections} connections, at most {args.requests:,} answers or {args.seconds:g} s per "
          f"server, in {args.rounds} alternating rounds; {args.accounts:,} accounts; servers in child "
          f"processes on 127.0.0.1")
    verdicts = []
    if args.protocol in ("postfix", "all"):
        payloads = [encode_request(r, Dialect.POSTFIX) for r in requests]
        action = lambda answer: answer[7:].split(b" ", 1)[0].strip().decode()  # noqa: E731
        bare = Side("postfix bare asyncio", "bare-postfix", payloads)
        ours = Side("postfix protocol", "postfix", payloads)
        compare([bare, ours], postfix_complete, action, args)
        p99 = percentile(ours.latencies, 0.99)
        print(f"  policyd at {ours.rate / bare.rate:.0%} of a bare asyncio server that only counts")
        ok = ours.rate >= TARGET_RATE and p99 < TARGET_P99_MS
        verdicts.append(ok)
        print(f"  target >= {TARGET_RATE:,}/s with p99 < {TARGET_P99_MS:g} ms: {'met' if ok else 'NOT MET'}")
    if args.protocol in ("http", "all"):
        def http(paths: list[bytes]) -> list[bytes]:
            return [b"GET " + p + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"
                    for p in paths]

        def status(answer: bytes) -> str:
            body = answer.split(b"\r\n\r\n", 1)[1]
            found = body.find(b'"action":')
            return body[found + 9:].split(b",", 1)[0].strip(b' "').decode() if found >= 0 else "?"

        flask = Side("http bare flask", "http", http([b"/bare"]))
        policy = Side("http /v1/policy", "http", http(http_paths(requests)))
        compare([flask, policy], http_complete, status, args)
        ok = policy.rate >= TARGET_HTTP_RATIO * flask.rate
        verdicts.append(ok)
        print(f"  /v1/policy at {policy.rate / flask.rate:.0%} of the bare endpoint; target >= "
              f"{TARGET_HTTP_RATIO:.0%}: {'met' if ok else 'NOT MET'}")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
