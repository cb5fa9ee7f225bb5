"""policy.server over real sockets: persistent Postfix connections, Exim one-liners, bad input, idle.

A bad connection must close alone (issue 4 section 3): each test keeps a second, well-behaved
connection open and checks it still gets answers.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from policy.cache import DecisionCache
from policy.codec import Dialect, encode_request
from policy.engine import MemorySendSink, PolicyEngine
from policy.server import Listen, RunningServer, ServerOptions, parse_listen, run_in_thread
from reputation.model import Action, Decision, Identity, IdentityKind, State

BOB = Identity(IdentityKind.ACCOUNT, "bob@example.com")
REQUEST = {"request": "smtpd_access_policy", "protocol_state": "RCPT", "sasl_username": "alice@example.com",
           "sender": "alice@example.com", "recipient": "x@gmail.com", "client_address": "192.0.2.1"}


@pytest.fixture
def engine() -> PolicyEngine:
    paused = Decision(BOB, State.PAUSED, Action.DEFER, "complaint_rate", "too many complaints", None, None,
                      {}, datetime.now(UTC))
    return PolicyEngine(DecisionCache([paused]), MemorySendSink())


@pytest.fixture
def server(engine: PolicyEngine, tmp_path: Path) -> Iterator[RunningServer]:
    options = ServerOptions(idle_timeout=0.3)
    with run_in_thread(engine, ["127.0.0.1:0", f"unix:{tmp_path}/policy.sock"], options) as running:
        yield running


def connect(address: str) -> socket.socket:
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address[5:])
    else:
        host, port = address.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)))
    sock.settimeout(5)
    return sock


def read_until(sock: socket.socket, end: bytes, count: int = 1) -> bytes:
    data = b""
    while data.count(end) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def closed(sock: socket.socket) -> bool:
    """True when the server closed the connection (EOF or reset) within the socket's timeout."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    return True


@pytest.mark.parametrize("which", [0, 1], ids=["tcp", "unix"])
def test_persistent_postfix_connection(server: RunningServer, which: int) -> None:
    sock = connect(server.addresses[which])
    # Three lookups in one write, then two more one by one, on the same connection.
    bob = {**REQUEST, "sasl_username": "bob@example.com"}
    sock.sendall(encode_request(REQUEST, Dialect.POSTFIX) + encode_request(bob, Dialect.POSTFIX)
                 + encode_request(REQUEST, Dialect.POSTFIX))
    answers = read_until(sock, b"\n\n", 3)
    assert answers == (b"action=DUNNO\n\n"
                       b"action=DEFER_IF_PERMIT 4.7.1 Your account bob@example.com is paused because "
                       b"too many complaints. Reset your password, check your devices for malware, "
                       b"then contact your provider's support\n\n"
                       b"action=DUNNO\n\n")
    for _ in range(2):
        sock.sendall(encode_request(REQUEST, Dialect.POSTFIX))
        assert read_until(sock, b"\n\n") == b"action=DUNNO\n\n"
    sock.close()


def test_exim_one_line_is_answered_then_closed(server: RunningServer) -> None:
    sock = connect(server.addresses[0])
    sock.sendall(b"sasl_username=bob@example.com sender=bob@example.com recipient_count=2\n")
    answer = read_until(sock, b"\n")
    assert answer.startswith(b"action=DEFER_IF_PERMIT 4.7.1 Your account bob@example.com is paused")
    assert answer.endswith(b"\n") and answer.count(b"\n") == 1
    assert sock.recv(100) == b""  # ${readsocket} reads until the server closes


@pytest.mark.parametrize("bad", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"request=smtpd_access_policy\n" + b"a" * 100_000,
    b"request=smtpd_access_policy\n" + b"".join(b"a%d=1\n" % i for i in range(1_000_000)),
    b"\x00\xff\xfe" * 1000 + b"\n",
], ids=["http", "over-long line", "a million attributes", "binary"])
def test_bad_input_closes_that_connection_only(server: RunningServer, bad: bytes) -> None:
    good = connect(server.addresses[0])
    sock = connect(server.addresses[0])
    # The server may close before it has read everything.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(bad)
    assert closed(sock)
    good.sendall(encode_request(REQUEST, Dialect.POSTFIX))
    assert read_until(good, b"\n\n") == b"action=DUNNO\n\n"
    assert server.stats.protocol_errors == 1


def test_idle_connection_is_closed(server: RunningServer) -> None:
    sock = connect(server.addresses[0])
    sock.settimeout(3)
    assert sock.recv(10) == b""
    assert server.stats.idle_closed == 1


def test_stale_socket_is_replaced_and_other_files_are_not(engine: PolicyEngine, tmp_path: Path) -> None:
    path = tmp_path / "p.sock"
    with run_in_thread(engine, [f"unix:{path}"]):
        pass
    assert path.exists()  # left behind, as after a crash
    with run_in_thread(engine, [f"unix:{path}"]) as again:
        sock = connect(again.addresses[0])
        sock.sendall(encode_request(REQUEST, Dialect.POSTFIX))
        assert read_until(sock, b"\n\n") == b"action=DUNNO\n\n"
        assert oct(os.stat(path).st_mode & 0o777) == oct(0o660)
    regular = tmp_path / "file"
    regular.write_text("keep me")
    with pytest.raises(OSError, match="is not a socket"):
        run_in_thread(engine, [f"unix:{regular}"])
    assert regular.read_text() == "keep me"


@pytest.mark.parametrize(("spec", "expected"), [
    ("127.0.0.1:10040", Listen(host="127.0.0.1", port=10040)),
    ("[::1]:10040", Listen(host="::1", port=10040)),
    ("unix:/run/ricochet/policy.sock", Listen(path="/run/ricochet/policy.sock")),
])
def test_parse_listen(spec: str, expected: Listen) -> None:
    assert parse_listen(spec) == expected
    assert str(expected).endswith(spec.split(":")[-1])


@pytest.mark.parametrize("spec", ["10040", "localhost", "host:port", "unix:", "127.0.0.1:70000"])
def test_parse_listen_refuses(spec: str) -> None:
    with pytest.raises(ValueError, match="--listen"):
        parse_listen(spec)


def test_policyd_command_refuses_a_bad_listen_address() -> None:
    from click.testing import CliRunner

    from policy.commands import policyd

    result = CliRunner().invoke(policyd, ["--listen", "127.0.0.1:10040", "--listen", "localhost"])
    assert result.exit_code == 2
    assert "write HOST:PORT (e.g. 127.0.0.1:10040) or unix:PATH" in result.output


def test_python_m_policy_serves_until_sigterm() -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.postfix import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "policy", "--listen", f"127.0.0.1:{port}"],
                               cwd=Path(__file__).resolve().parent.parent, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                sock = connect(f"127.0.0.1:{port}")
                break
            except OSError:
                assert time.monotonic() < deadline, "python -m policy did not start"
                time.sleep(0.05)
        sock.sendall(encode_request(REQUEST, Dialect.POSTFIX))
        assert read_until(sock, b"\n\n") == b"action=DUNNO\n\n"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert sock.recv(10) == b""  # open connections are closed on the way out
    finally:
        process.kill()
        process.wait()
    assert process.stderr is not None
    assert b"listening on 127.0.0.1:" in process.stderr.read()
