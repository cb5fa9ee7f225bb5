"""Messages per second ingested end to end, on SQLite and PostgreSQL.

    python benchmarks/ingest.py [--messages N] [--backend sqlite|postgresql|all] [--batch-size N]

Builds N distinct messages from the corpus (tests/data/corpus/emails: each file again and again,
with a header ``X-Ricochet-Benchmark: <n>`` put first so that no two have the same bytes), writes
them as .eml files into a temporary directory, and times each path in ``PATHS`` on a new, migrated
database per backend:

- ``import``: ``ingest.importer.import_paths`` over that directory (read the files, store, classify,
  attribute, write the events, commit every --batch-size), as ``python app.py import`` does.
- ``webhook``: ``python app.py serve`` in a process of its own, 16 connections posting the files
  to ``POST /v1/ingest`` at once (4 client processes of 4 threads); each 202 waits for its commit,
  which the webhook's committer shares between the requests waiting together.

The corpus's complaints repeat once copied (same reporter, original Message-ID and recipient), so
their copies go down the duplicate path: the mix is printed with the figures. The PostgreSQL
database is created on the server of ``RICOCHET_TEST_PG_URL`` (default: the local one of the
tests) and dropped at the end; when it is unreachable that backend is skipped with the reason.
Issue 3's target: >= 300 messages/second on SQLite on the 2-core machine, for both paths.

Each line also gives messages per CPU second of the process that did the work (this one; for
the webhook, the server's), when measured: on a machine busy with other work the wall-clock rate
falls with the load, the CPU rate much less (compare with the parsers' own line, ``classify``,
measured the same way).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy.engine import make_url  # noqa: E402 - the repository must be on the path first
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from ingest import classify  # noqa: E402
from ingest.importer import import_paths  # noqa: E402
from ingest.pipeline import Pipeline  # noqa: E402
from storage import make_engine, session_factory  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

__all__ = ["PATHS", "Timing", "build_messages", "database", "main", "run_import", "run_webhook"]

CORPUS = REPO / "tests" / "data" / "corpus" / "emails"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET = 300.0


class Timing(NamedTuple):
    """Messages handled, wall-clock seconds, and how they came out."""

    messages: int
    seconds: float
    detail: str
    # CPU seconds of the process doing the work (this one; the server's for the webhook), 0 when
    # not measured: on a busy machine the wall clock measures the neighbours too, the CPU time only
    # our work (SQLite runs in-process; a PostgreSQL server's time is not in it).
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Messages per second."""
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def cpu_rate(self) -> float:
        """Messages per CPU second of this process (0 when not measured)."""
        return self.messages / self.cpu_seconds if self.cpu_seconds else 0.0


def build_messages(directory: Path, count: int) -> int:
    """Write ``count`` distinct .eml files made from the corpus into ``directory``; returns count."""
    sources = sorted(CORPUS.rglob("*.eml"))
    if not sources:
        raise SystemExit(f"no .eml file under {CORPUS}")
    raws = [path.read_bytes() for path in sources]
    for number in range(count):
        raw = raws[number % len(raws)]
        newline = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
        (directory / f"{number:07d}.eml").write_bytes(b"X-Ricochet-Benchmark: %d" % number + newline + raw)
    return count


def classify_only(messages: Path) -> Timing:
    """Time ``ingest.classify`` alone over the messages, read into memory first."""
    raws = [path.read_bytes() for path in sorted(messages.iterdir())]
    started, cpu = time.perf_counter(), time.process_time()
    for raw in raws:
        classify(raw)
    return Timing(len(raws), time.perf_counter() - started, "parsers only, no database, no attribution",
                  time.process_time() - cpu)


def run_import(url: str, messages: Path, batch_size: int) -> Timing:
    """Time ``import_paths`` over ``messages`` into the database at ``url``."""
    engine = make_engine(url)
    try:
        sessions = session_factory(engine)
        pipeline = Pipeline()
        started, cpu = time.perf_counter(), time.process_time()
        summary = import_paths(sessions, pipeline, [str(messages)], batch_size=batch_size)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        engine.dispose()
    detail = (f"{summary.parsed} parsed, {summary.ignored} ignored, {summary.quarantined} quarantined, "
              f"{summary.duplicates} duplicates, {summary.events} events")
    return Timing(summary.read, seconds, detail, cpu)


def _post_all(port: int, token: str, bodies: list[bytes], connections: int) -> list[str]:
    """One client process: ``connections`` threads, each POSTing its share of ``bodies`` in turn.

    A new connection per message, as most webhook relays do.
    """
    import http.client
    import json
    from concurrent.futures import ThreadPoolExecutor

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"}

    def post_share(share: list[bytes]) -> list[str]:
        outcomes = []
        for body in share:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                connection.request("POST", "/v1/ingest", body=body, headers=headers)
                response = connection.getresponse()
                answer = json.loads(response.read())
                outcomes.append(f"{response.status} {answer.get('status', answer.get('error'))}")
            finally:
                connection.close()
        return outcomes

    with ThreadPoolExecutor(connections) as pool:
        shares = pool.map(post_share, [bodies[i::connections] for i in range(connections)])
        return [outcome for share in shares for outcome in share]


def _serve(url: str, token_directory: Path, threads: int) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``python app.py serve`` (waitress) on ``url`` and a free port; wait until it answers."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "RICOCHET_DATABASE_URL": url, "RICOCHET_SERVER_HOST": "127.0.0.1",
           "RICOCHET_SERVER_PORT": str(port), "RICOCHET_SERVER_THREADS": str(threads),
           "RICOCHET_LOG_LEVEL": "WARNING"}
    env.pop("RICOCHET_CONFIG", None)
    process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "serve"], cwd=token_directory, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"app.py serve exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("app.py serve did not answer /healthz within 60 seconds")


def run_webhook(url: str, messages: Path, _batch_size: int, clients: int = 4, connections: int = 4,
                threads: int = 16) -> Timing:
    """Time POST /v1/ingest of every file in ``messages`` over real HTTP into the database at ``url``.

    The server is ``python app.py serve`` itself (waitress, ``threads`` worker threads, the
    webhook's group commit), in a process of its own; ``clients`` client *processes* (like the
    MTAs and relays that post to it) of ``connections`` threads each post the files with
    http.client, one request per message, so that ``clients * connections`` requests are in
    flight at a time. The batch size does not apply: the committer forms its own batches of
    the requests waiting together. Reading the files is not timed; the CPU time is the server
    process's (from /proc, where there is one).
    """
    import multiprocessing
    from collections import Counter

    from storage import create_token

    bodies = [path.read_bytes() for path in sorted(messages.glob("*.eml"))]
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            token = create_token(session, "benchmark", "ingest")[1]
            session.commit()
    finally:
        engine.dispose()
    process, port = _serve(url, messages.parent, threads)
    slices = [bodies[i::clients] for i in range(clients)]
    try:
        with multiprocessing.get_context("spawn").Pool(clients) as pool:
            pool.apply(len, ([],))  # the client processes are up before the clock starts
            cpu = _cpu_seconds(process.pid)
            started = time.perf_counter()
            results = pool.starmap(_post_all, [(port, token, part, connections) for part in slices])
            seconds = time.perf_counter() - started
            cpu = _cpu_seconds(process.pid) - cpu
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    outcomes = Counter(outcome for part in results for outcome in part)
    detail = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
    return Timing(len(bodies), seconds, f"{clients} x {connections} connections, server {threads} threads: "
                  f"{detail}", max(cpu, 0.0))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc); 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime: fields 14 and 15 of proc(5), the 12th and 13th after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Each path: (name, function(database url, directory of .eml files, batch size) -> Timing).
PATHS: list[tuple[str, Callable[[str, Path, int], Timing]]] = [("import", run_import),
                                                               ("webhook", run_webhook)]


@contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """A new, migrated database on ``backend``; a PostgreSQL one is dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / f'bench-{secrets.token_hex(4)}.db'}"
        upgrade(url)
        yield url
        return
    admin_url = make_url(os.environ.get("RICOCHET_TEST_PG_URL") or DEFAULT_PG_URL)
    name = f"ricochet_bench_{secrets.token_hex(6)}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            url = admin_url.set(database=name).render_as_string(hide_password=False)
            upgrade(url)
            yield url
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _cpu(timing: Timing) -> str:
    return f", {timing.cpu_rate:.1f} per CPU second" if timing.cpu_seconds else ""


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per (path, backend)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000, help="messages to ingest (default 3000)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "all"), default="all")
    parser.add_argument("--batch-size", type=int, default=200, help="messages per commit (default 200)")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "all" else (args.backend,)
    with tempfile.TemporaryDirectory(prefix="ricochet-bench-") as temporary:
        root = Path(temporary)
        messages = root / "messages"
        messages.mkdir()
        build_messages(messages, args.messages)
        # Warm up (imports, compiled regular expressions and SQL) on a throw-away database.
        with tempfile.TemporaryDirectory() as warm:
            (Path(warm) / "m").mkdir()
            build_messages(Path(warm) / "m", 50)
            with database("sqlite", root) as url:
                run_import(url, Path(warm) / "m", args.batch_size)
        print(f"{args.messages} messages from {CORPUS.relative_to(REPO)}, batch size {args.batch_size}")
        # The parsers alone, on the same messages in memory: the ceiling of any ingest path, and a
        # yardstick when the machine is busy (compare the ratios, not only the figures).
        reference = classify_only(messages)
        print(f"{'classify':8} {'-':10} {reference.rate:8.1f} messages/s{_cpu(reference)} "
              f"({reference.detail})")
        below = False
        for backend in backends:
            for name, run in PATHS:
                try:
                    with database(backend, root) as url:
                        timing = run(url, messages, args.batch_size)
                except SQLAlchemyError as error:
                    print(f"{name:8} {backend:10} skipped: {str(error).splitlines()[0]}")
                    continue
                print(f"{name:8} {backend:10} {timing.rate:8.1f} messages/s{_cpu(timing)} "
                      f"({timing.messages} in {timing.seconds:.2f} s: {timing.detail})")
                below = below or (backend == "sqlite" and timing.rate < TARGET)
        if below:
            print(f"below the target of {TARGET:.0f} messages/second on SQLite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
