"""Notifications: signed webhooks received by a real HTTP server, retries against a receiver that is
down, the enqueue on a real state change written by the evaluation job, blocklisted outbound IPs.

The signature scheme checked here is the one docs/notify.md promises a receiver: hex HMAC-SHA256
over ``<X-Ricochet-Timestamp>.<raw body>``, sent as ``X-Ricochet-Signature: sha256=<hex>``; the
receiving server below recomputes it with hmac/hashlib directly, not with notify.signing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from config import ConfigError, NotifySettings, load_settings
from jobs.evaluate import Evaluator
from jobs.scheduler import DELIVER_JOB_ID, build_scheduler
from notify import NotifyJobs, blocklists_named, retry_at, verify
from reputation import RuleSet
from storage import (
    BounceEvent,
    Delivery,
    EventIdentity,
    get_or_create_identity,
    session_factory,
    store_raw_message,
)
from storage.counters import apply_deltas
from tests import db
from tests.reputation_samples import ALICE, complaint, ingest, send_deltas

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

NOW = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
SECRET = b"0123456789abcdef-test-secret"


@dataclass
class Received:
    """What the receiving server got, and whether each signature held."""

    bodies: list[dict[str, object]] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)
    status: int = 204


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A real HTTP server on 127.0.0.1:0 that checks each request's signature by the documented scheme."""
    got = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            stamp = self.headers["X-Ricochet-Timestamp"]
            expected = hmac.new(SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            got.valid.append(hmac.compare_digest(self.headers["X-Ricochet-Signature"], f"sha256={expected}"))
            got.bodies.append(json.loads(body))
            self.send_response(got.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings(*urls: str, retries: tuple[int, ...] = (30, 120, 600)) -> NotifySettings:
    return NotifySettings(webhook_urls=list(urls), retry_seconds=list(retries), timeout_seconds=2,
                          secret=SECRET)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_settings(env={}).reputation.rules


def pause_alice(session: Session, rules: RuleSet) -> None:
    """6 complaints on 600 sends: complaint-rate-pause (config/rules.toml, docs/rules.md) pauses Alice."""
    apply_deltas(session, send_deltas(ALICE, 600, NOW - timedelta(hours=3)).drain_deltas(), NOW)
    ingest(session, [complaint(i, NOW - timedelta(minutes=20)) for i in range(6)], NOW)
    Evaluator(rules).run(session, NOW)
    session.commit()


def test_a_pause_written_by_the_evaluation_job_is_queued_on_each_channel(db_session: Session,
                                                                         rules: RuleSet) -> None:
    pause_alice(db_session, rules)
    rows = db_session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert sorted(r.channel for r in rows) == ["email", "webhook"]
    payload = rows[0].payload
    assert (payload["old_state"], payload["new_state"]) == ("ok", "paused")
    assert payload["rule"] == "complaint-rate-pause"
    assert payload["identity"] == {"kind": "account", "value": ALICE.value}
    assert "6 complaints / 600 recipients" in payload["reason"] and "samples" in payload["evidence"]
    assert all((r.status, r.attempts, r.target) == ("pending", 0, "") for r in rows)


def test_the_cool_down_ending_is_queued_too_and_a_rerun_queues_nothing(db_session: Session,
                                                                       rules: RuleSet) -> None:
    pause_alice(db_session, rules)
    job = Evaluator(rules)
    job.run(db_session, NOW + timedelta(seconds=5))  # still paused: no change, nothing queued
    assert len(db_session.scalars(select(Delivery)).all()) == 2
    job.run(db_session, NOW + timedelta(minutes=61))  # docs/rules.md: the first pause lasts 1 h
    db_session.commit()
    last = db_session.scalars(select(Delivery).order_by(Delivery.id.desc())).first()
    assert last is not None and (last.payload["old_state"], last.payload["new_state"]) == ("paused", "watch")
    assert len(db_session.scalars(select(Delivery)).all()) == 4


def test_the_webhook_arrives_signed_and_the_log_says_delivered(db_engine: Engine, db_session: Session,
                                                               rules: RuleSet,
                                                               receiver: tuple[str, Received]) -> None:
    url, got = receiver
    pause_alice(db_session, rules)
    report = NotifyJobs(settings(url), session_factory(db_engine)).deliver(now=NOW)
    assert (report.delivered, report.failed) == (1, 0)
    assert got.valid == [True]
    body = got.bodies[0]
    assert (body["event"], body["old_state"], body["new_state"]) == ("state_change", "ok", "paused")
    db_session.rollback()  # a fresh look, as another process
    rows = db_session.scalars(select(Delivery)).all()
    assert [(r.channel, r.target, r.status, r.attempts) for r in rows] == [("webhook", url, "delivered", 1)]
    # No SMTP relay configured: the e-mail row had nobody to go to and is gone.


def test_a_receiver_that_is_down_gets_the_retries_then_the_log_says_failed(db_engine: Engine,
                                                                           db_session: Session,
                                                                           rules: RuleSet) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    pause_alice(db_session, rules)
    jobs = NotifyJobs(settings(url, retries=(30, 120)), session_factory(db_engine))
    at = NOW
    expected = [(1, "pending", NOW + timedelta(seconds=30)),
                (2, "pending", NOW + timedelta(seconds=30 + 120)),
                (3, "failed", NOW + timedelta(seconds=30 + 120))]
    for attempts, status, next_at in expected:
        early = jobs.deliver(now=at - timedelta(seconds=1)) if attempts > 1 else None
        assert early is None or early.retried + early.failed == 0  # not due yet: no attempt
        jobs.deliver(now=at)
        db_session.rollback()  # a fresh look, as another process
        row = db_session.scalars(select(Delivery)).one()
        assert (row.attempts, row.status, row.next_attempt_at) == (attempts, status, next_at)
        assert row.last_error is not None and "cannot reach" in row.last_error and url in row.last_error
        at = row.next_attempt_at
        db_session.rollback()  # SQLite: no read transaction left open under the job's writes
    assert row.delivered_at is None


def test_a_non_2xx_answer_is_a_failure_with_its_status(db_engine: Engine, db_session: Session, rules: RuleSet,
                                                       receiver: tuple[str, Received]) -> None:
    url, got = receiver
    got.status = 503
    pause_alice(db_session, rules)
    NotifyJobs(settings(url), session_factory(db_engine)).deliver(now=NOW)
    db_session.rollback()  # a fresh look, as another process
    row = db_session.scalars(select(Delivery)).one()
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error is not None and "HTTP 503" in row.last_error
    got.status = 200
    db_session.rollback()
    NotifyJobs(settings(url), session_factory(db_engine)).deliver(now=NOW + timedelta(seconds=30))
    db_session.rollback()  # a fresh look, as another process
    row = db_session.scalars(select(Delivery)).one()
    assert (row.status, row.attempts, row.delivered_at) == ("delivered", 2, NOW + timedelta(seconds=30))
    assert got.valid == [True, True]


def test_two_urls_get_one_row_each(db_engine: Engine, db_session: Session, rules: RuleSet,
                                   receiver: tuple[str, Received]) -> None:
    url, got = receiver
    pause_alice(db_session, rules)
    NotifyJobs(settings(url, url + "?second"), session_factory(db_engine)).deliver(now=NOW)
    db_session.rollback()  # a fresh look, as another process
    rows = db_session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(r.target, r.status) for r in rows] == [(url, "delivered"), (url + "?second", "delivered")]
    assert got.valid == [True, True]


def test_retry_schedule_follows_the_settings() -> None:
    chosen = settings(retries=(30, 120, 600))
    assert chosen.max_attempts == 4
    assert retry_at(chosen, 1, NOW) == NOW + timedelta(seconds=30)
    assert retry_at(chosen, 3, NOW) == NOW + timedelta(seconds=600)
    assert retry_at(chosen, 4, NOW) is None


def test_signature_verification_refuses_tampering_and_replays() -> None:
    body = b'{"event":"state_change"}'
    stamp = int(NOW.timestamp())
    mac = hmac.new(SECRET, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"X-Ricochet-Timestamp": str(stamp), "X-Ricochet-Signature": f"sha256={mac}"}
    assert verify(SECRET, headers, body, now=stamp + 10)
    assert not verify(SECRET, headers, body + b" ", now=stamp)
    assert not verify(b"another secret of 16+ chars", headers, body, now=stamp)
    assert not verify(SECRET, headers, body, now=stamp + 301)  # a replay outside the 5-minute window
    assert not verify(SECRET, {**headers, "X-Ricochet-Timestamp": str(stamp + 1)}, body, now=stamp)


@pytest.mark.parametrize(("diagnostic", "named"), [
    # Texts of the lists' own rejection notices.
    ("554 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using zen.spamhaus.org",
     ["Spamhaus"]),
    ("550 permanent failure for one or more recipients (x@example.org:blocked) "
     "Barracuda Reputation, see http://www.barracudanetworks.com/reputation/?r=1&ip=198.51.100.7",
     ["Barracuda"]),
    ("550 5.7.1 Blocked - see https://www.spamcop.net/bl.shtml?198.51.100.7", ["SpamCop"]),
    ("550 5.7.1 Unfortunately, messages from [198.51.100.7] weren't sent. Please contact your Internet "
     "service provider since part of their network is on our block list (S3150).", ["Microsoft"]),
    ("550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown", []),
    (None, []),
])
def test_blocklists_are_named_from_the_diagnostic(diagnostic: str | None, named: list[str]) -> None:
    assert blocklists_named(diagnostic) == named


def stored_bounce(session: Session, number: int, ip: str, diagnostic: str) -> None:
    message, _ = store_raw_message(session, f"Subject: bounce {number}\n\nx\n".encode(), "test",
                                   received_at=NOW)
    event = BounceEvent(message_id=message.id, occurred_at=NOW, recorded_at=NOW,
                        recipient=f"u{number}@example.org", recipient_domain="example.org", reason="blocked",
                        status="5.7.1", reply_code="554", hard=True, diagnostic=diagnostic,
                        remote_mta="mx.example.org")
    session.add(event)
    session.flush()
    identity = get_or_create_identity(session, "ip", ip, NOW)
    session.add(EventIdentity(event_id=event.id, identity_id=identity.id, source="test"))
    session.commit()


def test_a_blocklisted_outbound_ip_is_told_once_a_day(db_engine: Engine, db_session: Session,
                                                      receiver: tuple[str, Received]) -> None:
    url, got = receiver
    spamhaus = "554 5.7.1 Client host [198.51.100.7] blocked using zen.spamhaus.org"
    stored_bounce(db_session, 1, "198.51.100.7", spamhaus)
    stored_bounce(db_session, 2, "198.51.100.7", spamhaus)  # the same list again: one notification
    stored_bounce(db_session, 3, "198.51.100.8", "550 5.1.1 User unknown")
    jobs = NotifyJobs(settings(url), session_factory(db_engine))
    report = jobs.deliver(now=NOW + timedelta(minutes=1))
    assert (report.queued, report.delivered) == (1, 1)
    stored_bounce(db_session, 4, "198.51.100.7", spamhaus)
    assert jobs.deliver(now=NOW + timedelta(minutes=2)).queued == 0
    assert got.valid == [True]
    body = got.bodies[0]
    assert (body["event"], body["ip"], body["blocklists"]) == ("blocklisted", "198.51.100.7", ["Spamhaus"])
    assert body["diagnostic"] == spamhaus


def test_webhook_urls_without_a_secret_stop_start_up_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "ricochet.toml"
    path.write_text('[notify]\nwebhook_urls = ["https://panel.example.net/hook"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(path, env={})
    assert str(error.value) == ("[notify].webhook_urls needs a secret to sign the webhooks: set the "
                                "environment variable RICOCHET_WEBHOOK_SECRET or [notify].secret_file "
                                "(for example: head -c 32 /dev/urandom | base64)")
    assert load_settings(path, env={"RICOCHET_WEBHOOK_SECRET": SECRET.decode()}).notify.secret == SECRET
    secret_file = tmp_path / "secret"
    secret_file.write_text("short\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="at least 16 characters, got 5"):
        load_settings(path, env={"RICOCHET_NOTIFY_SECRET_FILE": str(secret_file)})


def test_the_scheduler_runs_the_delivery_job(db_engine: Engine) -> None:
    jobs = NotifyJobs(settings(), session_factory(db_engine))
    scheduler = build_scheduler(None, scheduler_class=BackgroundScheduler, notify=jobs)
    job = scheduler.get_job(DELIVER_JOB_ID)
    assert job is not None and job.trigger.interval == timedelta(seconds=10)
    assert (job.coalesce, job.max_instances) == (True, 1)
