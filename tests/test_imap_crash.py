"""Killing the collector in the middle of a batch loses nothing and duplicates nothing.

For real: ``python app.py collect imap --once`` runs as a subprocess against the test Dovecot,
through a TCP proxy that delays every server answer (network latency, so that a batch takes long
enough to be interrupted; the production code has no test hook), and is killed with SIGKILL once a
given number of messages are in the database. Twice, at different points; then a last run
finishes. Every message must then have exactly one raw_messages row and be in the processed (or
quarantine) folder, and the inbox must be empty.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage import RawMessage
from tests import db
from tests import dovecot as private_dovecot
from tests.dovecot import Dovecot

# The fixtures of tests/db.py (both backends) and tests/dovecot.py, used by name below.
database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session
dovecot = private_dovecot.dovecot

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "data" / "corpus" / "emails" / "maildir" / "bsd"
MESSAGES = 40
DELAY_SECONDS = 0.01


class SlowProxy:
    """127.0.0.1:<port> -> the server, each chunk the server sends held back ``delay`` seconds."""

    def __init__(self, target: int, delay: float) -> None:
        self.target, self.delay = target, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self.delay), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                time.sleep(delay)
                sink.sendall(chunk)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for each in self.sockets:
            with contextlib.suppress(OSError):
                each.close()


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[SlowProxy]:
    slow = SlowProxy(dovecot.port, DELAY_SECONDS)
    yield slow
    slow.close()


def corpus_messages(count: int) -> list[bytes]:
    """``count`` different complaints and bounces from the corpus."""
    files = sorted(CORPUS.glob("arf-*.eml")) + sorted(CORPUS.glob("lhost-postfix-*.eml")) + \
        sorted(CORPUS.glob("lhost-exim-*.eml"))
    raws = list(dict.fromkeys(path.read_bytes() for path in files))
    assert len(raws) >= count
    return raws[:count]


def count_rows(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(RawMessage)
                                  .where(RawMessage.source == "imap:crash")) or 0)


def run_collector(config: Path, *, kill_at: int | None, engine: Engine) -> tuple[int, str, int]:
    """Run the CLI once; with ``kill_at``, SIGKILL it when that many rows exist. (status, output, rows)."""
    env = {**os.environ, "RICOCHET_TEST_IMAP_PASSWORD": "secret"}
    command = [sys.executable, "app.py", "--config", str(config), "collect", "imap", "--once"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    rows = 0
    if kill_at is not None:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            rows = count_rows(engine)
            if rows >= kill_at:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
    output, _ = process.communicate(timeout=120)
    return process.returncode, output.decode("utf-8", "replace"), rows


def test_kill_9_in_the_middle_of_a_batch_loses_and_duplicates_nothing(
        dovecot: Dovecot, proxy: SlowProxy, database_url: str, db_engine: Engine,
        db_session: Session, tmp_path: Path):  # db_session empties the tables afterwards
    user = dovecot.add_user()
    messages = corpus_messages(MESSAGES)
    dovecot.append(user, messages)
    config = tmp_path / "ricochet.toml"
    config.write_text(f"""
[database]
url = "{database_url}"

[imap]
connect_attempts = 1

[[imap.mailbox]]
name = "crash"
host = "127.0.0.1"
port = {proxy.port}
security = "none"
user = "{user}"
password_env = "RICOCHET_TEST_IMAP_PASSWORD"
""", encoding="utf-8")

    status, output, rows = run_collector(config, kill_at=8, engine=db_engine)
    assert status == -signal.SIGKILL, output
    assert 8 <= rows < MESSAGES, "the first run was not interrupted in the middle of the batch"
    status, output, rows = run_collector(config, kill_at=rows + 12, engine=db_engine)
    assert status == -signal.SIGKILL, output
    assert rows < MESSAGES, "the second run was not interrupted in the middle of the batch"
    status, output, _rows = run_collector(config, kill_at=None, engine=db_engine)
    assert status == 0, output
    assert "crash: fetched" in output

    with Session(db_engine) as session:
        stored = session.scalars(select(RawMessage.sha256).where(RawMessage.source == "imap:crash")).all()
    assert len(stored) == MESSAGES
    assert dovecot.folder_bodies(user, "INBOX") == []
    on_server = [*dovecot.folder_bodies(user, "Ricochet.Processed"),
                 *dovecot.folder_bodies(user, "Ricochet.Quarantine")]
    assert len(on_server) == MESSAGES  # each moved exactly once
    assert sorted(hashlib.sha256(raw).hexdigest() for raw in on_server) == sorted(stored)
