"""End to end with a real Postfix: its log fills the ledger, and a complaint is attributed through it.

A private Postfix 3.7 on loopback (tests/postfix.py, started as tests/test_policy_postfix.py does,
with ``enable_long_queue_ids = yes``) logs to its ``maillog_file``. The client acts as the
authenticated account alice@example.com with ``XCLIENT LOGIN=...`` from the address 192.0.2.7
(XCLIENT ``ADDR``), so Postfix logs ``client=client.example[192.0.2.7], sasl_method=XCLIENT,
sasl_username=alice@example.com`` for the message, and ``message-id=<...>`` with the Message-ID the
test chose. ``python app.py maillog`` reads that log; then the corpus complaint arf-14.eml, whose
original carries that Message-ID instead of its own, is ingested: no trusted header names
anyone (the pipeline has no trust boundary configured), so the account and the client can only
come from the ledger.

The instance also refuses one domain as a provider would a closed customer's: the transport map
entry ``closed.example error:5.1.1 Mailbox does not exist`` (with ``smtpd_reject_unlisted_recipient =
no``, so that smtpd accepts the address and the queue bounces it) makes Postfix's error(8) agent log
``status=bounced`` for it; ``maillog`` then records that failure as a bounce of alice's.
"""

from __future__ import annotations

import email
import secrets
import smtplib
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import cli
from ingest.pipeline import Pipeline
from maillog import LogReader, read_facts
from storage import BounceEvent, Event, EventIdentity, Identity, RawMessage, ledger_entry
from tests import db
from tests.postfix import PostfixInstance, postfix_available, running_postfix

pytestmark = pytest.mark.skipif(postfix_available() is not None, reason=postfix_available() or "")

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

ARF = Path(__file__).resolve().parent / "data" / "corpus" / "emails" / "maildir" / "bsd" / "arf-14.eml"
# arf-14.eml's original (its message/rfc822 part) carries this Message-ID.
ARF_ORIGINAL_ID = b"<2222222222222222-00000000-eeee-eeee-ffff-222222222222-111111@email.amazonses.com>"


@pytest.fixture(scope="module")
def postfix() -> Iterator[PostfixInstance]:
    # XCLIENT LOGIN is logged as sasl_username, but permit_sasl_authenticated needs a real SASL
    # back-end: the client's documentation address may relay as a listed network instead.
    # closed.example: accepted at RCPT (smtpd refuses an address routed to error: otherwise), then
    # bounced by the queue manager's error(8) agent.
    with running_postfix("enable_long_queue_ids = yes\nmynetworks = 127.0.0.0/8, 192.0.2.0/24\n"
                         "transport_maps = inline:{{closed.example = error:5.1.1 Mailbox does not exist}}\n"
                         "smtpd_reject_unlisted_recipient = no\n") as instance:
        yield instance


def send_as_alice(port: int, message_id: str, recipient: str = "bob@gmail.com") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as smtp:
        smtp.ehlo("client.example")
        code, reply = smtp.docmd("XCLIENT", "LOGIN=alice@example.com NAME=client.example ADDR=192.0.2.7")
        assert code == 220, reply
        smtp.ehlo("client.example")
        smtp.sendmail("alice@example.com", [recipient],
                      f"From: alice@example.com\r\nTo: {recipient}\r\nMessage-ID: <{message_id}>\r\n"
                      "Subject: hello\r\n\r\nHello.\r\n".encode())


def wait_until_logged(postfix: PostfixInstance, message_id: str) -> None:
    """Until the log holds the message's smtpd, cleanup and qmgr lines (Postfix logs them as it goes)."""
    deadline = time.monotonic() + 15
    while message_id not in {fact.message_id for fact in read_facts(postfix.log().splitlines(), LogReader())}:
        assert time.monotonic() < deadline, postfix.log()
        time.sleep(0.1)


def links(session: Session, event: Event) -> dict[str, tuple[str, str]]:
    rows = session.execute(select(Identity.kind, Identity.value, EventIdentity.source)
                           .join(EventIdentity, EventIdentity.identity_id == Identity.id)
                           .where(EventIdentity.event_id == event.id))
    return {kind: (value, source) for kind, value, source in rows}


def test_the_postfix_log_names_the_sender_of_a_complained_about_message(
        postfix: PostfixInstance, database_url: str, db_session: Session):
    message_id = f"{secrets.token_hex(8)}.ledger-test@example.com"
    send_as_alice(postfix.port, message_id)
    wait_until_logged(postfix, message_id)
    log = postfix.log()
    assert "sasl_username=alice@example.com" in log
    assert f"message-id=<{message_id}>" in log

    result = CliRunner().invoke(cli, ["maillog", str(postfix.maillog)],
                                env={"RICOCHET_DATABASE_URL": database_url}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    entry = ledger_entry(db_session, message_id)
    assert entry is not None, result.output
    assert (entry.account, entry.client, entry.sender) == ("alice@example.com", "192.0.2.7",
                                                           "alice@example.com")

    arf = ARF.read_bytes()
    assert arf.count(ARF_ORIGINAL_ID) == 1
    complaint = arf.replace(ARF_ORIGINAL_ID, f"<{message_id}>".encode())
    ingested = Pipeline().ingest(db_session, complaint, source="test")
    db_session.commit()
    assert (ingested.kind, ingested.status, ingested.events) == ("complaint", "parsed", 1)
    [event] = db_session.scalars(select(Event).where(Event.message_id == ingested.message_id)).all()
    found = links(db_session, event)
    assert found["account"] == ("alice@example.com", "ledger")
    assert found["client"] == ("192.0.2.7", "ledger")


def test_a_recipient_postfix_refuses_becomes_a_bounce_of_the_sender(
        postfix: PostfixInstance, database_url: str, db_session: Session):
    message_id = f"{secrets.token_hex(8)}.bounce-test@example.com"
    recipient = f"old.{secrets.token_hex(4)}@closed.example"  # the instance's log is the module's
    send_as_alice(postfix.port, message_id, recipient)
    deadline = time.monotonic() + 15
    while not (lines := [line for line in postfix.log().splitlines() if f"to=<{recipient}>" in line]):
        assert time.monotonic() < deadline, postfix.log()
        time.sleep(0.1)
    [line] = lines
    assert "postfix/error[" in line and "dsn=5.1.1, status=bounced (Mailbox does not exist)" in line, line

    result = CliRunner().invoke(cli, ["maillog", str(postfix.maillog)],
                                env={"RICOCHET_DATABASE_URL": database_url}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [event] = db_session.scalars(select(BounceEvent).where(BounceEvent.recipient == recipient)).all()
    # RFC 3463 5.1.1 "bad destination mailbox address": userunknown, a hard bounce (shared/reasons.md).
    assert (event.status, event.reason, event.hard, event.original_message_id) == (
        "5.1.1", "userunknown", True, message_id)
    raw = db_session.get(RawMessage, event.message_id)
    assert raw is not None and (raw.source, raw.source_ref) == ("maillog", str(postfix.maillog))
    notification = email.message_from_bytes(raw.raw).get_payload(0)
    assert isinstance(notification, Message)
    evidence = notification.get_payload(decode=True)
    assert isinstance(evidence, bytes) and line in evidence.decode()  # the log line is the evidence
    found = links(db_session, event)
    assert found["account"] == ("alice@example.com", "ledger")
    assert found["client"] == ("192.0.2.7", "ledger")
