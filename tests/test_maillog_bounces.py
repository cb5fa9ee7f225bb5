"""``python app.py maillog`` records the log's delivery failures as bounce events, on SQLite and PostgreSQL.

A submission and its failures in one log (the lines of tests/test_maillog_failures.py): the ledger
gets the message's entry, and each failure one stored DSN (source ``maillog``, the file as its
reference) with one bounce event, linked to the account through the ledger (no trusted header
names anyone: the pipeline has no trust boundary configured). Reading the log again adds nothing.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app import cli
from storage import BounceEvent, EventIdentity, Identity, RawMessage, session_factory
from tests import db
from tests.test_maillog_command import ledger
from tests.test_maillog_failures import (
    DEFERRED,
    EXIM_ARRIVAL,
    EXIM_COMPLETED,
    EXIM_USER_UNKNOWN,
    REMOVED,
    SUBMISSION,
    USER_UNKNOWN,
)

database_url, db_engine = db.database_url, db.db_engine

FAILURES = "delivery failures 2 ({} bounced, {} deferred): "
ALL_NEW = "2 recorded, 0 already recorded, 0 without an event, 0 left out, 0 not stored"
ALL_KNOWN = "0 recorded, 2 already recorded, 0 without an event, 0 left out, 0 not stored"


def run(url: str, *args: str):
    return CliRunner().invoke(cli, ["maillog", *args], env={"RICOCHET_DATABASE_URL": url},
                              catch_exceptions=False)


def bounces(engine: Engine) -> list[tuple[str, str | None, str, bool | None, dict[str, tuple[str, str]]]]:
    """(recipient, status, reason, hard, {kind: (identity, source)}) of every bounce event."""
    with session_factory(engine)() as session:
        return [(event.recipient, event.status, event.reason, event.hard, links(session, event.id))
                for event in session.scalars(select(BounceEvent).order_by(BounceEvent.id))]


def links(session: Session, event_id: int) -> dict[str, tuple[str, str]]:
    rows = session.execute(select(Identity.kind, Identity.value, EventIdentity.source)
                           .join(EventIdentity, EventIdentity.identity_id == Identity.id)
                           .where(EventIdentity.event_id == event_id))
    return {kind: (value, source) for kind, value, source in rows}


def stored(engine: Engine) -> list[tuple[str, str | None, str, str]]:
    with session_factory(engine)() as session:
        return [(row.source, row.source_ref, row.status, row.kind)
                for row in session.scalars(select(RawMessage).order_by(RawMessage.id))]


def test_a_postfix_failure_becomes_a_bounce_of_the_account_that_sent(database_url: str, db_engine: Engine,
                                                                     tmp_path: Path):
    try:
        log = tmp_path / "mail.log"
        log.write_text(SUBMISSION + USER_UNKNOWN + "\n" + DEFERRED + "\n" + REMOVED + "\n")
        result = run(database_url, str(log))
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[1:] == [
            "facts 1: 1 written, 0 already in the ledger, 0 left out (not authenticated), 0 too long",
            "messages without a Message-ID: 0",
            FAILURES.format(1, 1) + ALL_NEW]
        assert set(ledger(db_engine)) == {"probe.1@example.com"}
        alice = {"account": ("alice@example.com", "ledger"), "client": ("198.51.100.23", "ledger")}
        found = bounces(db_engine)
        assert [event[:4] for event in found] == [("bob@example.net", "5.1.1", "userunknown", True),
                                                  ("dan@example.com", "4.2.2", "mailboxfull", False)]
        for event in found:
            assert {kind: found for kind, found in event[4].items() if kind in alice} == alice
        assert stored(db_engine) == [("maillog", str(log), "parsed", "bounce")] * 2

        # The same log again (a rotated log read once more, a restarted follower): nothing new.
        again = run(database_url, str(log))
        assert again.output.splitlines()[3] == FAILURES.format(1, 1) + ALL_KNOWN
        assert len(bounces(db_engine)) == 2 and len(stored(db_engine)) == 2
    finally:
        db.clear(db_engine)


def test_an_exim_failure_from_standard_input(database_url: str, db_engine: Engine):
    try:
        log = "\n".join([EXIM_ARRIVAL, EXIM_USER_UNKNOWN, EXIM_COMPLETED]) + "\n"
        result = CliRunner().invoke(cli, ["maillog", "-"], input=log,
                                    env={"RICOCHET_DATABASE_URL": database_url}, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        [(recipient, status, reason, hard, found)] = bounces(db_engine)
        assert (recipient, status, reason, hard) == ("bob@example.net", "5.1.1", "userunknown", True)
        assert found["account"] == ("alice@example.com", "ledger")
        assert stored(db_engine) == [("maillog", "stdin", "parsed", "bounce")]
    finally:
        db.clear(db_engine)


def test_no_bounces_and_authenticated_only_leave_failures_out(database_url: str, db_engine: Engine,
                                                                tmp_path: Path):
    try:
        log = tmp_path / "mail.log"
        # The second message came from mynetworks without SMTP AUTH: not one of ours to count.
        relayed = (SUBMISSION + USER_UNKNOWN + "\n").replace("7DAC3226316", "80531226317").replace(
            ", sasl_method=PLAIN, sasl_username=alice@example.com", "").replace("probe.1@", "relay.1@")
        log.write_text(SUBMISSION + USER_UNKNOWN + "\n" + relayed)
        result = run(database_url, "--no-bounces", str(log))
        assert result.output.splitlines()[3].startswith(FAILURES.format(2, 0) + "0 recorded")
        assert result.output.splitlines()[3].endswith("2 left out, 0 not stored")
        assert bounces(db_engine) == []
        result = run(database_url, "--authenticated-only", str(log))
        assert result.output.splitlines()[3].startswith(FAILURES.format(2, 0) + "1 recorded")
        assert [event[0] for event in bounces(db_engine)] == ["bob@example.net"]
    finally:
        db.clear(db_engine)
