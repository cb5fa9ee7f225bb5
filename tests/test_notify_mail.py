"""The admins' e-mail against a real SMTP listener on loopback (aiosmtpd), not a mock.

What is checked comes from the issue (issue 5, section 2: "an e-mail to the configured admins
through the configured SMTP relay with the explanation and the evidence") and from the payload
written by the evaluation job: envelope recipients, Subject, and the body's reason and evidence.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from config import NotifySettings, load_settings
from jobs.evaluate import Evaluator
from notify import NotifyJobs
from reputation import RuleSet
from storage import Delivery, session_factory
from storage.counters import apply_deltas
from tests import db
from tests.reputation_samples import ALICE, complaint, ingest, send_deltas

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

NOW = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
ADMINS = ["postmaster@example.net", "noc@example.net"]


class Collector:
    """aiosmtpd handler that keeps every envelope: (MAIL FROM, RCPT TOs, the parsed message)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def relay() -> Iterator[tuple[int, Collector]]:
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, handler
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_settings(env={}).reputation.rules


def test_a_pause_is_mailed_to_each_admin_with_the_reason_and_the_evidence(
        db_engine: Engine, db_session: Session, rules: RuleSet, relay: tuple[int, Collector]) -> None:
    port, got = relay
    # 6 complaints on 600 sends: complaint-rate-pause pauses Alice (config/rules.toml, docs/rules.md).
    apply_deltas(db_session, send_deltas(ALICE, 600, NOW - timedelta(hours=3)).drain_deltas(), NOW)
    ingest(db_session, [complaint(i, NOW - timedelta(minutes=20)) for i in range(6)], NOW)
    Evaluator(rules).run(db_session, NOW)
    db_session.commit()
    settings = NotifySettings(smtp_host="127.0.0.1", smtp_port=port, mail_from="ricochet@example.net",
                              admins=list(ADMINS), timeout_seconds=5)
    report = NotifyJobs(settings, session_factory(db_engine)).deliver(now=NOW)
    assert (report.delivered, report.failed) == (2, 0)
    assert sorted(rcpts[0] for _, rcpts, _ in got.received) == sorted(ADMINS)
    for sender, rcpts, message in got.received:
        assert sender == "ricochet@example.net" and len(rcpts) == 1 and message["To"] == rcpts[0]
        assert message["Subject"] == f"[Ricochet] account {ALICE.value}: ok -> paused (complaint-rate-pause)"
        body = message.get_content()
        assert f"account {ALICE.value} went from ok to paused" in body
        assert "6 complaints / 600 recipients" in body  # the rule's reason sentence
        assert '"samples"' in body and "Minutes of the meeting" in body  # the evidence: sample subjects
    db_session.rollback()
    rows = db_session.scalars(select(Delivery).where(Delivery.channel == "email")).all()
    expected = sorted((a, "delivered", 1) for a in ADMINS)
    assert sorted((r.target, r.status, r.attempts) for r in rows) == expected


def test_a_relay_that_is_down_is_retried_and_logged(db_engine: Engine, db_session: Session,
                                                    rules: RuleSet) -> None:
    apply_deltas(db_session, send_deltas(ALICE, 600, NOW - timedelta(hours=3)).drain_deltas(), NOW)
    ingest(db_session, [complaint(i, NOW - timedelta(minutes=20)) for i in range(6)], NOW)
    Evaluator(rules).run(db_session, NOW)
    db_session.commit()
    port = free_port()
    settings = NotifySettings(smtp_host="127.0.0.1", smtp_port=port, admins=[ADMINS[0]], retry_seconds=[60],
                              timeout_seconds=5)
    NotifyJobs(settings, session_factory(db_engine)).deliver(now=NOW)
    db_session.rollback()
    row = db_session.scalars(select(Delivery).where(Delivery.channel == "email")).one()
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, NOW + timedelta(seconds=60))
    assert row.last_error is not None and f"SMTP relay 127.0.0.1:{port}" in row.last_error
