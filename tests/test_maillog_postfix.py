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
"""

from __future__ import annotations

import secrets
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import cli
from ingest.pipeline import Pipeline
from maillog import LogReader, read_facts
from storage import Event, EventIdentity, Identity, ledger_entry
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
    with running_postfix("enable_long_queue_ids = yes\nmynetworks = 127.0.0.0/8, 192.0.2.0/24\n") as instance:
        yield instance


def send_as_alice(port: int, message_id: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as smtp:
        smtp.ehlo("client.example")
        code, reply = smtp.docmd("XCLIENT", "LOGIN=alice@example.com NAME=client.example ADDR=192.0.2.7")
        assert code == 220, reply
        smtp.ehlo("client.example")
        smtp.sendmail("alice@example.com", ["bob@gmail.com"],
                      f"From: alice@example.com\r\nTo: bob@gmail.com\r\nMessage-ID: <{message_id}>\r\n"
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
