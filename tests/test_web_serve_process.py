"""``python app.py serve`` as a real process on SQLite: killed, it loses no acknowledged message.

A 202 promises that the message is committed (DESIGN.md, "Data flow", step 1), so a ``kill -9``
at any moment after some 202s must leave every one of those messages in the database, with the
bytes that were posted (their SHA-256). SIGTERM (docker stop, systemd) stops the server cleanly:
exit status 0, what was acknowledged is stored. SQLite only: the process and the database file
are the test's own.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from storage import RawMessage, create_token, make_engine, session_factory
from storage.migrate import upgrade
from tests.webclient import corpus_bytes

REPO = Path(__file__).resolve().parent.parent
CLIENTS = 8
PER_CLIENT = 12


@dataclass
class Served:
    """A running ``app.py serve``: its process, port, database URL and an ingest token."""

    process: subprocess.Popen[bytes]
    port: int
    url: str
    token: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """``python app.py serve`` on a new SQLite database, answering /healthz."""
    url = f"sqlite:///{tmp_path / 'ricochet.db'}"
    upgrade(url)
    engine = make_engine(url)
    with session_factory(engine)() as session:
        token = create_token(session, "relay", "ingest")[1]
        session.commit()
    engine.dispose()
    port = free_port()
    env = {**os.environ, "RICOCHET_DATABASE_URL": url, "RICOCHET_SERVER_HOST": "127.0.0.1",
           "RICOCHET_SERVER_PORT": str(port), "RICOCHET_SERVER_THREADS": "8", "RICOCHET_LOG_LEVEL": "WARNING"}
    env.pop("RICOCHET_CONFIG", None)
    process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "serve"], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_health(process, port)
        yield Served(process, port, url, token)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def wait_for_health(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            pytest.fail(f"app.py serve exited with {process.returncode}: {error}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail("app.py serve did not answer /healthz within 30 seconds")


def message(number: int) -> bytes:
    return b"X-Test-Number: %d\n" % number + corpus_bytes("lhost-exim-02.eml")


def post(served: Served, body: bytes) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        connection.request("POST", "/v1/ingest", body=body, headers={
            "Authorization": f"Bearer {served.token}", "Content-Type": "message/rfc822"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def stored_digests(url: str) -> dict[int, str]:
    """Message id -> SHA-256 of every stored message, read from the file the server wrote."""
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            return {row.id: row.sha256 for row in session.scalars(select(RawMessage))}
    finally:
        engine.dispose()


def test_kill_9_after_202s_loses_no_acknowledged_message(served: Served) -> None:
    acknowledged: dict[int, bytes] = {}
    lock = threading.Lock()
    enough = threading.Event()

    def client(first: int) -> None:
        for number in range(first, first + PER_CLIENT):
            body = message(number)
            try:
                status, answer = post(served, body)
            except (OSError, http.client.HTTPException, ValueError):
                return  # the server is gone: this message was never acknowledged
            if status == 202:
                with lock:
                    acknowledged[int(str(answer["id"]))] = body
                    if len(acknowledged) >= CLIENTS * PER_CLIENT // 3:
                        enough.set()

    threads = [threading.Thread(target=client, args=(n * PER_CLIENT,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    assert enough.wait(timeout=60), "too few messages were acknowledged"
    served.process.send_signal(signal.SIGKILL)  # while the other clients are still posting
    served.process.wait(timeout=30)
    for thread in threads:
        thread.join(timeout=60)

    stored = stored_digests(served.url)
    with lock:
        assert acknowledged
        for message_id, body in acknowledged.items():
            assert stored.get(message_id) == hashlib.sha256(body).hexdigest()


def test_sigterm_stops_the_server_cleanly(served: Served) -> None:
    status, answer = post(served, message(1))
    assert status == 202
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0
    assert stored_digests(served.url) == {answer["id"]: hashlib.sha256(message(1)).hexdigest()}


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(served: Served) -> None:
    """Waitress refuses a declared length over 4 x [api].max_body_bytes (10 MiB by default) at
    once, without waiting for the body; up to that, the app's JSON 413 answers (test_web_server.py)."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as connection:
        connection.sendall(b"POST /v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: message/rfc822\r\n"
                           b"Authorization: Bearer " + served.token.encode() + b"\r\n"
                           b"Content-Length: %d\r\n\r\n" % (40 * 1024 * 1024 + 1))
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert stored_digests(served.url) == {}


def test_a_bad_secret_file_stops_serve_with_one_sentence(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("short\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'ricochet.db'}"
    upgrade(url)
    env = {**os.environ, "RICOCHET_DATABASE_URL": url,
           "RICOCHET_WEB_SECRET_KEY_FILE": str(secret), "RICOCHET_SERVER_PORT": str(free_port())}
    env.pop("RICOCHET_WEB_SECRET_KEY", None)
    result = subprocess.run([sys.executable, str(REPO / "app.py"), "serve"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: [web].secret_key_file {secret}: holds fewer than 32 characters")
    assert "Traceback" not in result.stderr
