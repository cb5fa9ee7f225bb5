"""Two policy nodes on one PostgreSQL catch a burst split across them (issue 4 section 3, DESIGN.md "Scale").

Each node is what ``python app.py policyd`` runs: its own SQLAlchemy engine (as another process
would have), its own PolicyEngine, refresher and flusher threads, and a real asyncio server on a
loopback port. A compromised account sends 120 messages through node A and 120 through node B,
each to another gmail address. Neither half trips a rule of config/rules.toml on its own
(``freemail-flood`` needs 200 recipients in 10 minutes, 90 % of them at freemail providers), so
the evaluation job, run after A's half only, leaves the account alone; after B's half it pauses
it, and both nodes defer the account within their next refresh.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config import Settings, load_settings
from jobs.evaluate import ReputationJobs
from policy.codec import Dialect, encode_request
from policy.node import PolicyNode
from policy.server import RunningServer, run_in_thread
from reputation import State
from storage.engine import make_engine, session_factory
from storage.migrate import upgrade
from tests.db import temporary_database

HALF = 120


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    """A migrated PostgreSQL database of its own (several nodes share one through PostgreSQL only)."""
    with temporary_database("postgresql", tmp_path) as url:  # fails under CI=true when unreachable
        upgrade(url)
        yield url


class Node:
    """A policy node and its server, as one ``policyd`` process holds them."""

    def __init__(self, settings: Settings) -> None:
        self.database = make_engine(settings.database.url)
        self.policy = PolicyNode.from_settings(settings, self.database, session_factory(self.database))
        self.policy.start()
        self.server: RunningServer = run_in_thread(self.policy.engine, ["127.0.0.1:0"])
        host, port = self.server.addresses[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.settimeout(5)

    def lookup(self, recipient: str, instance: str) -> str:
        """One Postfix RCPT lookup for alice@example.com over the node's persistent connection."""
        request = {"request": "smtpd_access_policy", "protocol_state": "RCPT", "instance": instance,
                   "sasl_username": "alice@example.com", "sender": "alice@example.com",
                   "recipient": recipient, "client_address": "192.0.2.7"}
        self.sock.sendall(encode_request(request, Dialect.POSTFIX))
        data = b""
        while not data.endswith(b"\n\n"):
            chunk = self.sock.recv(4096)
            assert chunk, "the node closed the connection"
            data += chunk
        return data.decode().strip()

    def wait_flushed(self, sends: int) -> None:
        deadline = time.monotonic() + 10
        while self.policy.metrics()["flushed_sends"] < sends:
            assert time.monotonic() < deadline, f"not flushed: {self.policy.metrics()}"
            time.sleep(0.05)

    def close(self) -> None:
        self.sock.close()
        self.server.stop()
        self.policy.stop()
        self.database.dispose()


@pytest.fixture
def nodes(pg_url: str) -> Iterator[tuple[Node, Node, Settings]]:
    settings = load_settings(env={"RICOCHET_DATABASE_URL": pg_url,
                                  "RICOCHET_POLICY_SUPPORT": "abuse@provider.example"})
    a, b = Node(settings), Node(settings)
    try:
        yield a, b, settings
    finally:
        a.close()
        b.close()


def test_a_burst_split_across_two_nodes_is_caught(nodes: tuple[Node, Node, Settings]) -> None:
    a, b, settings = nodes
    jobs = ReputationJobs(session_factory(a.database), settings.reputation)  # what the scheduler runs

    answers = [a.lookup(f"user{i}@gmail.com", f"a-{i}") for i in range(HALF)]
    assert set(answers) == {"action=DUNNO"}
    a.wait_flushed(HALF)
    report = jobs.evaluate(now=datetime.now(UTC))
    assert report.buckets > 0 and not report.changed, "half the burst alone must not trip a rule"

    answers = [b.lookup(f"user{HALF + i}@gmail.com", f"b-{i}") for i in range(HALF)]
    assert set(answers) == {"action=DUNNO"}
    b.wait_flushed(HALF)
    report = jobs.evaluate(now=datetime.now(UTC))
    [decision] = [d for d in report.changed if d.identity.value == "alice@example.com"]
    assert (decision.state, decision.rule) == (State.PAUSED, "freemail-flood")
    evaluated = time.monotonic()

    # Both nodes defer the account within their next refresh ([policy].refresh_seconds = 1).
    for node, name in ((a, "a"), (b, "b")):
        while True:
            answer = node.lookup("next@gmail.com", f"{name}-next-{time.monotonic()}")
            if answer != "action=DUNNO":
                break
            assert time.monotonic() - evaluated < 3, f"node {name} still allows alice 3 s after the pause"
            time.sleep(0.05)
        assert answer.startswith("action=DEFER_IF_PERMIT 4.7.1 Your account alice@example.com is paused "
                                 "because")
        assert answer.endswith("contact abuse@provider.example")
    print(f"both nodes deferred alice {time.monotonic() - evaluated:.2f} s after the evaluation")
