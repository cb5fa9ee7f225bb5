"""policy.node: a node's decisions come from the database, its counted sends go to it, and it fails open.

Runs on both test databases (tests/db.py). Expected counts follow the Postfix policy protocol
(SMTPD_POLICY_README: one ``instance`` per message, a lookup per RCPT) and the [policy] keys of
docs/config.md; decisions are written with storage.reputation the way the evaluation job does.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from config import ConfigError, load_settings
from policy.codec import Dialect, encode_request
from policy.engine import Send
from policy.node import NodeTimings, PendingDeltas, PolicyNode, SendCounter, build_engine, customer_map
from policy.texts import PolicyConfig
from reputation import Action, BucketDelta, CounterStore, Decision, Identity, IdentityKind, State, Window
from storage import ApiToken
from storage.counters import load_counters
from storage.engine import make_engine, session_factory
from storage.migrate import upgrade
from storage.reputation import record_decision
from storage.tokens import revoke_token
from tests.db import database_url, db_engine, db_session, temporary_database
from tests.webclient import Api, api, body_of

__all__ = ["api", "database_url", "db_engine", "db_session"]

REPO = Path(__file__).resolve().parent.parent
ALICE = Identity(IdentityKind.ACCOUNT, "alice@example.com")
CLIENT = Identity(IdentityKind.CLIENT, "192.0.2.7")
AT = datetime(2026, 11, 30, 3, 0, 30, tzinfo=UTC)
FREEMAIL = ("gmail.com", "yahoo.com")


def rcpt(recipient: str, instance: str, account: str = "alice@example.com") -> dict[str, str]:
    """A Postfix RCPT lookup (SMTPD_POLICY_README's attributes)."""
    return {"request": "smtpd_access_policy", "protocol_state": "RCPT", "instance": instance,
            "sasl_username": account, "sender": account, "recipient": recipient,
            "client_address": "192.0.2.7"}


def paused(identity: Identity, now: datetime) -> Decision:
    return Decision(identity, State.PAUSED, Action.DEFER, "freemail-flood",
                    "250 of 250 recipients in 10 minutes at freemail providers", None,
                    now + timedelta(hours=1), {}, now)


def node_on(engine: Engine, **timings: float) -> PolicyNode:
    return PolicyNode(build_engine(PolicyConfig(support="abuse@provider.example")), engine,
                      session_factory(engine), NodeTimings(**timings), FREEMAIL)  # type: ignore[arg-type]


def shared_totals(engine: Engine, identity: Identity) -> tuple[int, int, int]:
    """(sends, recipients, freemail recipients) of ``identity`` in the last hour of counter_buckets.

    The hour ends now, when it is read: a send counted after a test took its own "now" may be in
    the next minute's bucket, which a window ending at that earlier time leaves out.
    """
    now = datetime.now(UTC)
    store = CounterStore(FREEMAIL)
    with session_factory(engine)() as session:
        load_counters(session, store, now - timedelta(hours=2), [identity])
    totals = store.window_totals(identity, Window.HOUR, now)
    return totals.sends, totals.recipients, totals.freemail_recipients


# -- the adapter and the pending buffer (no database) ---------------------------------------------

def test_send_counter_counts_a_message_once_with_all_its_recipients() -> None:
    # Three RCPT lookups of one message (messages 1, 0, 0) and an END-OF-MESSAGE of another message.
    sends = [Send((ALICE, CLIENT), 1, 1, ("bob@gmail.com",), "alice@example.com", AT),
             Send((ALICE, CLIENT), 0, 1, ("carol@yahoo.com",), "alice@example.com", AT),
             Send((ALICE, CLIENT), 0, 1, ("dave@example.org",), "alice@example.com", AT),
             Send((ALICE,), 1, 5, (), "alice@example.com", AT + timedelta(seconds=10))]
    deltas = {(d.identity, d.start): d for d in SendCounter(FREEMAIL).deltas(sends)}
    minute = AT.replace(second=0)
    assert dict(deltas[(ALICE, minute)].counts) == {"sends": 2, "recipients": 8, "freemail_recipients": 2}
    assert dict(deltas[(CLIENT, minute)].counts) == {"sends": 1, "recipients": 3, "freemail_recipients": 2}
    assert deltas[(ALICE, minute)].seconds == 60
    # The distinct-recipient sketch saw the three addresses.
    store = CounterStore(FREEMAIL)
    store.merge([deltas[(ALICE, minute)]])
    assert store.window_totals(ALICE, Window.TEN_MINUTES, AT).distinct_recipients == 3


def test_a_later_recipient_in_a_new_minute_adds_no_message() -> None:
    sends = [Send((ALICE,), 1, 1, ("a@gmail.com",), "", AT),
             Send((ALICE,), 0, 1, ("b@gmail.com",), "", AT + timedelta(minutes=1))]
    counts = [dict(d.counts) for d in sorted(SendCounter(FREEMAIL).deltas(sends), key=lambda d: d.start)]
    assert counts == [{"sends": 1, "recipients": 1, "freemail_recipients": 1},
                      {"recipients": 1, "freemail_recipients": 1}]


def test_pending_deltas_merge_per_bucket_and_drop_the_oldest() -> None:
    pending = PendingDeltas(max_buckets=2)
    minute = AT.replace(second=0)
    pending.add([BucketDelta(ALICE, minute, 60, {"sends": 1, "recipients": 2})])
    pending.add([BucketDelta(ALICE, minute, 60, {"sends": 3})])
    assert [dict(d.counts) for d in pending.deltas()] == [{"sends": 4, "recipients": 2}]
    later = [minute + timedelta(minutes=1), minute + timedelta(minutes=2)]
    dropped = pending.add([BucketDelta(ALICE, start, 60, {"sends": 1}) for start in later])
    assert dropped == 1 and pending.dropped == 1
    assert sorted(d.start for d in pending.deltas()) == later


def test_customer_map_knows_accounts_as_written_and_in_lower_case() -> None:
    found = customer_map({"Alice@Example.com": "cust-7"})
    assert found == {Identity(IdentityKind.ACCOUNT, "Alice@Example.com"): "cust-7",
                     Identity(IdentityKind.ACCOUNT, "alice@example.com"): "cust-7"}


# -- settings ----------------------------------------------------------------------------------------

def test_policy_settings_build_the_engine_config_and_server_options() -> None:
    settings = load_settings(env={"RICOCHET_POLICY_SUPPORT": "abuse@provider.example",
                                  "RICOCHET_POLICY_FAIL_OPEN": "defer",
                                  "RICOCHET_POLICY_LISTEN": "127.0.0.1:10040,unix:/run/ricochet/policy.sock",
                                  "RICOCHET_POLICY_REFRESH_SECONDS": "0.5",
                                  "RICOCHET_POLICY_TEXTS":
                                      '{ "paused.customer" = "Paused: {reason}. Call {support}" }'})
    policy = settings.policy
    assert policy.listen == ["127.0.0.1:10040", "unix:/run/ricochet/policy.sock"]
    assert policy.refresh_seconds == 0.5
    assert policy.config.fail_open is Action.DEFER and policy.config.support == "abuse@provider.example"
    assert policy.config.texts["paused.customer"] == "Paused: {reason}. Call {support}"
    assert policy.config.texts["paused"]  # the built-in texts stay for the others
    assert (policy.options.idle_timeout, policy.options.max_connections) == (600, 1000)


@pytest.mark.parametrize(("env", "message"), [
    ({"RICOCHET_POLICY_LISTEN": "localhost"}, "[policy].listen has a bad address"),
    ({"RICOCHET_POLICY_FAIL_OPEN": "reject"}, '[policy].fail_open must be "allow"'),
    ({"RICOCHET_POLICY_TEXTS": '{ paused = "Paused {because}" }'},
     "[policy].texts is not accepted: policy text"),
    ({"RICOCHET_POLICY_TEXTS": '{ stopped = "x" }'}, "[policy].texts is not accepted: policy text 'stopped'"),
    ({"RICOCHET_POLICY_FLUSH_SECONDS": "0"},
     "[policy].flush_seconds must be a number of seconds between 0.1"),
])
def test_bad_policy_settings_are_sentences(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^environment variable {next(iter(env))}: " + _escape(message)):
        load_settings(env=env)


def _escape(text: str) -> str:
    return re.escape(text)


# -- on the database ---------------------------------------------------------------------------------

def test_flush_adds_the_counted_sends_to_the_shared_counters(db_engine: Engine, db_session: Session) -> None:
    node = node_on(db_engine)
    for i, recipient in enumerate(["bob@gmail.com", "carol@yahoo.com", "dave@example.org"]):
        assert node.engine.answer(rcpt(recipient, "msg-1")).action is Action.ALLOW
        assert node.engine.answer(rcpt(f"x{i}@gmail.com", f"msg-{i + 2}")).action is Action.ALLOW
    assert node.flush() > 0
    assert shared_totals(db_engine, ALICE) == (4, 6, 5)
    assert node.metrics()["flushed_sends"] == 6 and node.metrics()["unflushed_buckets"] == 0
    # A second node's deltas add up (an additive upsert), they do not overwrite.
    other = node_on(db_engine)
    other.engine.answer(rcpt("erin@gmail.com", "msg-9"))
    other.flush()
    assert shared_totals(db_engine, ALICE) == (5, 7, 6)


def test_refresh_loads_decisions_and_then_their_changes(db_engine: Engine, db_session: Session) -> None:
    node = node_on(db_engine)
    now = datetime.now(UTC)
    record_decision(db_session, paused(ALICE, now), now)
    db_session.commit()
    assert node.refresh() and node.stats.full_reloads == 1
    answer = node.engine.answer(rcpt("bob@gmail.com", "m1"))
    assert answer.action is Action.DEFER
    assert answer.postfix_action.startswith("DEFER_IF_PERMIT 4.7.1 Your account alice@example.com is paused "
                                            "because 250 of 250 recipients")
    # Resumed (an admin, or the cool-down): the next refresh reads only the change, and lets mail through.
    later = datetime.now(UTC)
    resumed = Decision(ALICE, State.WATCH, Action.ALLOW, None, "resumed by an administrator", None, None,
                       {}, later)
    record_decision(db_session, resumed, later)
    db_session.commit()
    assert node.refresh() and node.stats.full_reloads == 1 and node.stats.refreshes == 2
    assert node.engine.answer(rcpt("bob@gmail.com", "m2")).action is Action.ALLOW


def test_loops_run_in_the_background_and_stop_flushes(db_engine: Engine, db_session: Session) -> None:
    node = node_on(db_engine, refresh_seconds=0.1, flush_seconds=0.1)
    now = datetime.now(UTC)
    with node:
        node.engine.answer(rcpt("bob@gmail.com", "m1"))
        deadline = time.monotonic() + 30  # 0.1 s loops; slack for a loaded machine
        while node.metrics()["flushed_sends"] < 1:
            assert time.monotonic() < deadline, "the flusher did not flush"
            time.sleep(0.05)
        record_decision(db_session, paused(ALICE, now), now)
        db_session.commit()
        while node.engine.answer(rcpt("carol@gmail.com", "m2")).action is not Action.DEFER:
            assert time.monotonic() < deadline, "the refresher did not load the decision"
            time.sleep(0.05)
        node.engine.answer(rcpt("dave@gmail.com", "m3", account="bob@example.com"))
    # Stopping flushed what was counted since the last flush.
    assert shared_totals(db_engine, Identity(IdentityKind.ACCOUNT, "bob@example.com"))[0] == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_database_that_goes_away_leaves_lookups_answered_from_the_cache(backend: str,
                                                                          tmp_path: Path) -> None:
    directory = tmp_path / "db"
    directory.mkdir()
    with temporary_database(backend, directory) as url:
        upgrade(url)
        engine = make_engine(url)
        now = datetime.now(UTC)
        with session_factory(engine)() as session:
            record_decision(session, paused(ALICE, now), now)
            session.commit()
        node = node_on(engine)
        assert node.refresh()
        _stop_database(engine, url, directory)
        started = time.perf_counter()
        answers = [node.engine.answer(rcpt(f"r{i}@gmail.com", f"m{i}", account=account))
                   for i in range(1000) for account in ("alice@example.com", "bob@example.com")]
        elapsed = time.perf_counter() - started
        assert [a.action for a in answers[:2]] == [Action.DEFER, Action.ALLOW]
        assert not any(a.failed_open for a in answers)
        assert elapsed < 0.5, f"2000 lookups took {elapsed:.3f} s with the database gone"
        # The loops fail, keep the decisions and the counts, and say so in the metrics.
        assert not node.refresh()
        assert node.flush() == 0
        metrics = node.metrics()
        assert metrics["refresh_errors"] == 1 and metrics["flush_errors"] == 1
        assert metrics["unflushed_buckets"] > 0 and metrics["decisions"] == 1
        assert node.engine.answer(rcpt("z@gmail.com", "m-last")).action is Action.DEFER
        engine.dispose()


def _stop_database(engine: Engine, url: str, directory: Path) -> None:
    """Make the database unreachable for new connections, and close the pooled ones."""
    if url.startswith("sqlite"):
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()  # SQLite cannot create the file again in a directory that is gone
    else:
        name = engine.url.database
        admin = make_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
    engine.dispose()


# -- the HTTP endpoint in the app, and the policyd command -------------------------------------------

def test_http_policy_answers_mta_tokens_from_the_node(api: Api, db_session: Session) -> None:
    query = {"account": "alice@example.com", "recipient": "bob@gmail.com", "recipient_count": "1"}
    # The lookup checks tokens in the node's memory, never in the database: a token created
    # after the node's last refresh is unknown until the next one (within a second).
    api.runtime.policy.refresh()
    response = api.client.get("/v1/policy", query_string=query, headers=api.auth("mta"))
    assert response.status_code == 200 and body_of(response)["action"] == "allow"
    assert api.client.get("/v1/policy", query_string=query, headers=api.auth("viewer")).status_code == 403
    assert api.client.get("/v1/policy", query_string=query).status_code == 401
    now = datetime.now(UTC)
    record_decision(db_session, paused(ALICE, now), now)
    db_session.commit()
    api.runtime.policy.refresh()
    plain = {**api.auth("mta"), "Accept": "text/plain"}
    response = api.client.get("/v1/policy", query_string=query, headers=plain)
    assert response.get_data(as_text=True).startswith(
        "action=DEFER_IF_PERMIT 4.7.1 Your account alice@example.com")
    api.runtime.close()  # stops the node's loops and flushes the one allowed lookup
    assert shared_totals(api.runtime.engine, ALICE)[:2] == (1, 1)


def test_http_policy_forgets_a_revoked_token_at_the_next_refresh(api: Api, db_session: Session) -> None:
    query = {"account": "carol@example.com", "recipient": "bob@gmail.com"}
    headers = api.auth("mta")
    api.runtime.policy.refresh()
    assert api.client.get("/v1/policy", query_string=query, headers=headers).status_code == 200
    for name, (_, role) in api.runtime.policy.tokens.items():
        assert len(name) == 64 and role in ("ingest", "viewer", "admin", "mta")  # hashes, not secrets
    revoked = [row for row in db_session.scalars(select(ApiToken)) if row.role == "mta"]
    assert revoked
    for row in revoked:
        assert revoke_token(db_session, row.name)
    db_session.commit()
    api.runtime.policy.refresh()
    assert api.client.get("/v1/policy", query_string=query, headers=headers).status_code == 401


def test_policyd_command_serves_from_the_database_and_flushes_on_sigterm(database_url: str,
                                                                        db_session: Session) -> None:
    from tests.postfix import free_port

    now = datetime.now(UTC)
    record_decision(db_session, paused(Identity(IdentityKind.ACCOUNT, "mallory@example.com"), now), now)
    db_session.commit()
    port = free_port()
    env = {**os.environ, "RICOCHET_DATABASE_URL": database_url, "RICOCHET_POLICY_LISTEN": f"127.0.0.1:{port}",
           "RICOCHET_POLICY_SUPPORT": "abuse@provider.example"}
    process = subprocess.Popen([sys.executable, "app.py", "policyd"], cwd=REPO, env=env,
                               stderr=subprocess.PIPE)
    try:
        # Generous deadlines: a loaded machine starts Python slowly; the answers are what is tested.
        sock = _connect(port, time.monotonic() + 60)
        sock.sendall(encode_request(rcpt("bob@gmail.com", "m1"), Dialect.POSTFIX))
        assert _read(sock) == b"action=DUNNO\n\n"
        deadline = time.monotonic() + 30
        while True:  # the refresher loads at start, in the background
            lookup = rcpt("bob@gmail.com", "m2", account="mallory@example.com")
            sock.sendall(encode_request(lookup, Dialect.POSTFIX))
            answer = _read(sock)
            if answer.startswith(b"action=DEFER_IF_PERMIT 4.7.1 Your account mallory@example.com is paused"):
                break
            assert time.monotonic() < deadline, answer
            time.sleep(0.1)
        assert b"contact abuse@provider.example" in answer
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        process.wait()
    assert process.stderr is not None
    engine = make_engine(database_url)
    assert shared_totals(engine, ALICE)[:2] == (1, 1), process.stderr.read().decode()[-2000:]
    engine.dispose()


def _connect(port: int, deadline: float) -> socket.socket:
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.settimeout(30)
            return sock
        except OSError:
            assert time.monotonic() < deadline, "policyd did not start"
            time.sleep(0.05)


def _read(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data
