"""Messages per second ingested end to end, on SQLite and PostgreSQL.

    python benchmarks/ingest.py [--messages N] [--backend sqlite|postgresql|all] [--batch-size N]

Builds N distinct messages from the corpus (tests/data/corpus/emails: each file again and again,
with a header ``X-Ricochet-Benchmark: <n>`` put first so that no two have the same bytes), writes
them as .eml files into a temporary directory, and times each path in ``PATHS`` on a new, migrated
database per backend:

- ``import``: ``ingest.importer.import_paths`` over that directory (read the files, store, classify,
  attribute, write the events, commit every --batch-size), as ``python app.py import`` does.

The corpus's complaints repeat once copied (same reporter, original Message-ID and recipient), so
their copies go down the duplicate path: the mix is printed with the figures. The PostgreSQL
database is created on the server of ``RICOCHET_TEST_PG_URL`` (default: the local one of the
tests) and dropped at the end; when it is unreachable that backend is skipped with the reason.
Issue 3's target: >= 300 messages/second for import on SQLite on the 2-core machine.

Each line also gives messages per CPU second of this process, when measured: on a machine busy
with other work the wall-clock rate falls with the load, the CPU rate much less (compare the
import's with the parsers' own line, ``classify``, measured the same way).
"""

from __future__ import annotations

import argparse
import os
import secrets
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
    # CPU seconds of this process (time.process_time), 0 when not measured: on a busy machine the
    # wall clock measures the neighbours too, the CPU time only our work (SQLite runs in-process;
    # a PostgreSQL server's time is not in it).
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


def _post_all(port: int, token: str, bodies: list[bytes]) -> list[str]:
    """One client process: POST each body in turn (one connection per message, as the server closes it)."""
    import http.client
    import json

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"}
    outcomes = []
    for body in bodies:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("POST", "/v1/ingest", body=body, headers=headers)
            response = connection.getresponse()
            answer = json.loads(response.read())
            outcomes.append(f"{response.status} {answer.get('status', answer.get('error'))}")
        finally:
            connection.close()
    return outcomes


def run_webhook(url: str, messages: Path, _batch_size: int, clients: int = 4) -> Timing:
    """Time POST /v1/ingest of every file in ``messages`` over real HTTP into the database at ``url``.

    The app (``app.create_app``) runs in werkzeug's threaded server on 127.0.0.1, as ``python app.py
    serve`` does; ``clients`` client *processes* (like the MTAs and relays that post to it, and so
    that they do not share the server's interpreter lock) post the files with http.client, one
    request per message. Each request commits on its own, so the batch size does not apply.
    Reading the files is not timed.
    """
    import logging
    import multiprocessing
    import threading
    from collections import Counter

    from werkzeug.serving import make_server

    from app import create_app
    from config import load_settings
    from ingest.runtime import Runtime
    from storage import create_token

    settings = load_settings(env={"RICOCHET_DATABASE_URL": url, "RICOCHET_LOG_LEVEL": "WARNING"})
    bodies = [path.read_bytes() for path in sorted(messages.glob("*.eml"))]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access-log line per request
    with Runtime.from_settings(settings) as runtime:
        with runtime.sessions() as session:
            token = create_token(session, "benchmark", "ingest")[1]
            session.commit()
        server = make_server("127.0.0.1", 0, create_app(settings, runtime), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        slices = [bodies[i::clients] for i in range(clients)]
        try:
            with multiprocessing.get_context("spawn").Pool(clients) as pool:
                pool.apply(len, ([],))  # the client processes are up before the clock starts
                started = time.perf_counter()
                results = pool.starmap(_post_all, [(server.port, token, part) for part in slices])
                seconds = time.perf_counter() - started
        finally:
            server.shutdown()
            thread.join()
            server.server_close()
    outcomes = Counter(outcome for part in results for outcome in part)
    detail = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
    return Timing(len(bodies), seconds, f"{clients} client processes: {detail}")


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
                below = below or (backend == "sqlite" and name == "import" and timing.rate < TARGET)
        if below:
            print(f"below the target of {TARGET:.0f} messages/second for import on SQLite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
