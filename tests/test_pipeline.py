"""The ingest pipeline on SQLite and PostgreSQL: store, classify, attribute, record; never lose a message.

Expected values come from the corpus's expected.jsonl (bounces, complaints, auto-replies) and from
the text of the attribution samples (tests/data/attribution/README.md describes them).
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import attribution
import fbl
from attribution import AttributionRules, TrustRules
from ingest.ledger import SessionLedger
from ingest.pipeline import IngestResult, Pipeline, _json_is_safe, envelope_recipient
from storage import (
    BounceEvent,
    ComplaintEvent,
    Event,
    EventIdentity,
    Identity,
    RawMessage,
    add_ledger_entry,
    hash_recipient,
    session_factory,
)
from tests import db

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

DATA = Path(__file__).resolve().parent / "data"
CORPUS = DATA / "corpus"
SAMPLES = DATA / "attribution"
# The provider of the attribution samples: hosts *.provider.example, addresses 198.51.100.0/24.
RULES = AttributionRules(trust=TrustRules(hosts=("*.provider.example",),
                                          networks=(ipaddress.ip_network("198.51.100.0/24"),)))
SALT = b"a test salt, not a secret at all"


def corpus(name: str) -> bytes:
    return (CORPUS / "emails" / "maildir" / "bsd" / name).read_bytes()


def expected(name: str) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in (CORPUS / "expected.jsonl").read_text().splitlines() if line]
    found = sorted((row for row in rows if row["file"] == f"maildir/bsd/{name}"),
                   key=lambda row: int(str(row["index"])))
    assert found, name
    return found


def events_of(session: Session, message_id: int) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.message_id == message_id).order_by(Event.id)))


def links_of(session: Session, event: Event) -> dict[str, tuple[str, str, str]]:
    rows = session.execute(select(Identity.kind, Identity.value, EventIdentity.source, EventIdentity.detail)
                           .join(EventIdentity, EventIdentity.identity_id == Identity.id)
                           .where(EventIdentity.event_id == event.id))
    return {kind: (value, source, detail) for kind, value, source, detail in rows}


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline(RULES)


def test_a_corpus_bounce_gives_one_event_per_failed_recipient(db_session: Session, pipeline: Pipeline):
    raw = corpus("lhost-postfix-02.eml")
    result = pipeline.ingest(db_session, raw, source="test", source_ref="postfix-02")
    db_session.commit()
    assert (result.created, result.status, result.kind, result.events, result.error) == (
        True, "parsed", "bounce", 2, None)
    events = events_of(db_session, result.message_id)
    assert all(isinstance(event, BounceEvent) for event in events)
    got = [(e.recipient, e.status, e.reason, e.hard) for e in events if isinstance(e, BounceEvent)]
    assert got == [(row["recipient"], row["status"], row["reason"], row["hardbounce"])
                   for row in expected("lhost-postfix-02.eml")]
    message = db_session.get(RawMessage, result.message_id)
    assert message is not None
    assert (message.source, message.source_ref, message.status, message.kind) == (
        "test", "postfix-02", "parsed", "bounce")
    assert message.summary is not None and message.summary["classification"]["kind"] == "bounce"
    assert message.processed_at is not None


def test_a_corpus_complaint_gives_a_complaint_event(db_session: Session, pipeline: Pipeline):
    result = pipeline.ingest(db_session, corpus("arf-14.eml"), source="test")
    db_session.commit()
    assert (result.status, result.kind, result.events) == ("parsed", "complaint", 1)
    [event] = events_of(db_session, result.message_id)
    assert isinstance(event, ComplaintEvent)
    [row] = expected("arf-14.eml")
    assert (event.recipient, event.reason) == (row["recipient"], "feedback")
    assert event.feedback_type == row["feedbacktype"]
    assert event.recipient_domain == str(row["recipient"]).rpartition("@")[2]
    assert not event.recipient_hashed


def test_an_auto_reply_is_kept_and_ignored(db_session: Session, pipeline: Pipeline):
    assert expected("rfc3834-01.eml")[0]["reason"] == "vacation"
    result = pipeline.ingest(db_session, corpus("rfc3834-01.eml"), source="test")
    db_session.commit()
    assert (result.created, result.status, result.kind, result.events) == (True, "ignored", "autoreply", 0)
    assert events_of(db_session, result.message_id) == []


@pytest.mark.parametrize("raw", [b"\x00\xff\xfe garbage \x00" * 10, b"", b"\r\n\r\n"])
def test_garbage_is_quarantined_with_its_bytes(db_session: Session, pipeline: Pipeline, raw: bytes):
    result = pipeline.ingest(db_session, raw, source="test")
    db_session.commit()
    assert (result.created, result.status, result.events) == (True, "quarantined", 0)
    assert result.error
    message = db_session.get(RawMessage, result.message_id)
    assert message is not None
    assert (message.raw, message.status, message.error) == (raw, "quarantined", result.error)


def test_the_same_bytes_twice_are_stored_once(db_session: Session, pipeline: Pipeline):
    raw = corpus("lhost-postfix-01.eml")
    first = pipeline.ingest(db_session, raw, source="test")
    db_session.commit()
    again = pipeline.ingest(db_session, raw, source="other")
    db_session.commit()
    assert (again.message_id, again.created, again.status, again.kind, again.events) == (
        first.message_id, False, "duplicate", "bounce", 0)
    assert db_session.scalar(select(func.count()).select_from(RawMessage)) == 1
    assert db_session.scalar(select(func.count()).select_from(Event)) == first.events == 1


def test_the_same_complaint_in_other_bytes_counts_once(db_session: Session, pipeline: Pipeline):
    raw = corpus("arf-14.eml")
    first = pipeline.ingest(db_session, raw, source="test")
    db_session.commit()
    # The same report delivered again through another hop of ours: other bytes, same complaint.
    resent = (b"Received: from mx2.provider.example by mx.provider.example; "
              b"Mon, 30 Nov 2026 10:00:00 +0000\n" + raw)
    again = pipeline.ingest(db_session, resent, source="test")
    db_session.commit()
    assert (again.message_id, again.created, again.status, again.kind, again.events) == (
        first.message_id, False, "duplicate", "complaint", 0)
    assert again.stored_id is not None and again.stored_id != first.message_id
    copy = db_session.get(RawMessage, again.stored_id)
    assert copy is not None
    assert (copy.status, copy.duplicate_of_id, copy.raw) == ("duplicate", first.message_id, resent)
    assert db_session.scalar(select(func.count()).select_from(ComplaintEvent)) == 1


def test_a_bug_quarantines_with_the_traceback_and_reprocess_recovers(
        db_session: Session, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch):
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("attribution bug under test")

    monkeypatch.setattr(attribution, "attribute", broken)
    raw = (SAMPLES / "arf-postfix-01.eml").read_bytes()
    result = pipeline.ingest(db_session, raw, source="test")
    db_session.commit()
    assert (result.created, result.status, result.events) == (True, "quarantined", 0)
    assert result.error is not None
    assert "Traceback (most recent call last)" in result.error
    assert "RuntimeError: attribution bug under test" in result.error
    assert events_of(db_session, result.message_id) == []
    message = db_session.get(RawMessage, result.message_id)
    assert message is not None and message.raw == raw and message.status == "quarantined"

    monkeypatch.undo()  # the fix
    again = pipeline.reprocess(db_session, message)
    db_session.commit()
    assert (again.message_id, again.status, again.kind, again.events, again.error) == (
        result.message_id, "parsed", "complaint", 1, None)
    assert (message.status, message.error) == ("parsed", None)
    assert len(events_of(db_session, message.id)) == 1


def test_a_crashing_parser_quarantines_the_message(db_session: Session, pipeline: Pipeline,
                                                   monkeypatch: pytest.MonkeyPatch):
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("fbl bug under test")

    monkeypatch.setattr(fbl, "parse_mail", broken)
    result = pipeline.ingest(db_session, corpus("arf-14.eml"), source="test")
    db_session.commit()
    assert result.status == "quarantined"
    assert result.error is not None and "fbl.parse failed: ValueError: fbl bug under test" in result.error
    monkeypatch.undo()
    message = db_session.get(RawMessage, result.message_id)
    assert message is not None
    assert pipeline.reprocess(db_session, message).status == "parsed"


def test_a_bug_does_not_undo_the_other_messages_of_the_transaction(
        db_session: Session, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch):
    first = pipeline.ingest(db_session, corpus("lhost-postfix-01.eml"), source="test")
    real = attribution.attribute
    monkeypatch.setattr(attribution, "attribute", lambda *args, **kwargs: 1 / 0)
    broken = pipeline.ingest(db_session, corpus("lhost-postfix-02.eml"), source="test")
    monkeypatch.setattr(attribution, "attribute", real)
    last = pipeline.ingest(db_session, corpus("arf-14.eml"), source="test")
    db_session.commit()
    assert [first.status, broken.status, last.status] == ["parsed", "quarantined", "parsed"]
    assert broken.error is not None and "ZeroDivisionError" in broken.error
    assert db_session.scalar(select(func.count()).select_from(RawMessage)) == 3
    assert db_session.scalar(select(func.count()).select_from(Event)) == first.events + last.events == 2


def test_reprocess_replaces_the_events(db_session: Session, pipeline: Pipeline):
    result = pipeline.ingest(db_session, corpus("lhost-postfix-02.eml"), source="test")
    db_session.commit()
    before = [event.recipient for event in events_of(db_session, result.message_id)]
    message = db_session.get(RawMessage, result.message_id)
    assert message is not None
    again = pipeline.reprocess(db_session, message)
    db_session.commit()
    assert again.events == 2
    assert [event.recipient for event in events_of(db_session, result.message_id)] == before


def test_complaint_attribution_links_say_how_they_were_found(db_session: Session, pipeline: Pipeline):
    result = pipeline.ingest(db_session, (SAMPLES / "arf-postfix-01.eml").read_bytes(), source="test")
    db_session.commit()
    [event] = events_of(db_session, result.message_id)
    links = links_of(db_session, event)
    # "(Authenticated sender: alice@example.com) by smtp.provider.example (Postfix) with ESMTPSA".
    detail = "Received: (Authenticated sender: alice@example.com) by smtp.provider.example"
    assert links["account"] == ("alice@example.com", "header", detail)
    # "X-Customer-ID: C1001", written by our MTA above smtp.provider.example's Received line.
    assert links["customer"][:2] == ("C1001", "header")
    # ARF "Source-IP: 198.51.100.10"; "Original-Mail-From: <alice@example.com>".
    assert links["ip"][:2] == ("198.51.100.10", "arf")
    assert links["domain"][:2] == ("example.com", "envelope")
    # The network client of the authenticated submission: "from [192.168.1.23] (unknown [203.0.113.5])".
    assert links["client"][:2] == ("203.0.113.5", "received")
    assert isinstance(event, ComplaintEvent)
    # "Original-Rcpt-To: <bob@receiver.example>", "Feedback-Type: abuse".
    assert (event.recipient, event.source_ip, event.feedback_type) == (
        "bob@receiver.example", "198.51.100.10", "abuse")
    assert event.original_message_id == "3f1c2a9e-7b4d-4e11-9c2a-1d5e8f0a6b7c@example.com"
    message = db_session.get(RawMessage, result.message_id)
    assert message is not None and message.summary is not None
    assert any("alice@example.com" in line for line in message.summary["explanation"])


def test_a_bounce_to_a_verp_return_path_names_the_customer(db_session: Session, pipeline: Pipeline):
    raw = (SAMPLES / "dsn-verp-01.eml").read_bytes()
    # "Delivered-To: bounces-C1001-alice=example.com@provider.example"
    assert envelope_recipient(raw) == "bounces-C1001-alice=example.com@provider.example"
    result = pipeline.ingest(db_session, raw, source="test")
    db_session.commit()
    [event] = events_of(db_session, result.message_id)
    assert (event.recipient, event.reason) == ("nosuchuser@receiver.example", "userunknown")
    links = links_of(db_session, event)
    assert links["customer"][:2] == ("C1001", "verp")
    assert links["account"][0] == "alice@example.com"


def test_the_ledger_names_who_sent_a_message_id(db_session: Session):
    raw = (SAMPLES / "dsn-verp-01.eml").read_bytes()
    original_id = attribution.normalize_message_id(
        next(line for line in raw.decode().splitlines()[40:] if line.lower().startswith("message-id:"))
        .split(":", 1)[1])
    add_ledger_entry(db_session, f"<{original_id}>", script="10001:/home/shop/mailer.php", customer="C1001")
    db_session.commit()
    result = Pipeline(RULES).ingest(db_session, raw, source="test")
    db_session.commit()
    [event] = events_of(db_session, result.message_id)
    assert links_of(db_session, event)["script"][:2] == ("10001:/home/shop/mailer.php", "ledger")


def test_recipients_are_hashed_when_configured(db_session: Session):
    pipeline = Pipeline(RULES, recipient_salt=SALT)
    result = pipeline.ingest(db_session, (SAMPLES / "arf-postfix-01.eml").read_bytes(), source="test")
    db_session.commit()
    [event] = events_of(db_session, result.message_id)
    # "Original-Rcpt-To: <bob@receiver.example>"
    assert (event.recipient, event.recipient_hashed, event.recipient_domain) == (
        hash_recipient("bob@receiver.example", SALT), True, "receiver.example")
    message = db_session.get(RawMessage, result.message_id)
    assert message is not None
    assert "bob@receiver.example" not in json.dumps(message.summary)


def test_identities_record_first_and_last_seen(db_session: Session, pipeline: Pipeline):
    raw = (SAMPLES / "arf-postfix-01.eml").read_bytes()
    pipeline.ingest(db_session, raw, source="test")
    # The same sender complained about again, a day later (other recipient, other report).
    later = (raw.replace(b"bob@receiver.example", b"carol@receiver.example")
             .replace(b"Arrival-Date: Mon, 30 Nov 2026", b"Arrival-Date: Tue, 01 Dec 2026"))
    pipeline.ingest(db_session, later, source="test")
    db_session.commit()
    account = db_session.scalars(select(Identity).where(Identity.kind == "account")).one()
    assert account.value == "alice@example.com"
    # Arrival-Date: Mon, 30 Nov 2026 09:00:03 +0000, then the same time on Tue, 01 Dec 2026.
    assert (account.first_seen.isoformat(), account.last_seen.isoformat()) == (
        "2026-11-30T09:00:03+00:00", "2026-12-01T09:00:03+00:00")


def test_nul_and_broken_utf8_in_a_report_do_not_stop_it(db_session: Session, pipeline: Pipeline):
    # PostgreSQL refuses NUL in text and lone surrogates in JSON; a report may quote binary junk.
    raw = (corpus("lhost-postfix-01.eml")
           .replace(b"Subject: Undelivered Mail", b"Subject: \xed\xa0\x80 \x00 Undelivered Mail")
           .replace(b"procmail: Couldn't create", b"procmail:\x00 Couldn't \xed\xa0\x80create"))
    result = pipeline.ingest(db_session, raw, source="test")
    db_session.commit()
    assert (result.status, result.events) == ("parsed", 1)
    [event] = events_of(db_session, result.message_id)
    assert isinstance(event, BounceEvent) and event.diagnostic is not None
    assert "\x00" not in event.diagnostic and "Couldn't" in event.diagnostic
    message = db_session.get(RawMessage, result.message_id)
    assert message is not None and message.raw == raw


# Any character, surrogates and NUL included; some text around them, and pairs of halves.
_ANY_TEXT = st.lists(st.sampled_from(["\x00", "\ud83d", "\ude00", "\ud83d\ude00", "\\u0000", "é", "x", "😀"])
                     | st.text(st.characters(exclude_categories=()), max_size=3), max_size=8).map("".join)


@given(st.dictionaries(_ANY_TEXT, _ANY_TEXT | st.lists(_ANY_TEXT, max_size=3), max_size=4))
def test_the_quick_json_check_agrees_with_the_exact_one(summary: dict[str, object]) -> None:
    # The exact one: NUL, or a surrogate escape not half of a pair, in json.dumps's ASCII text.
    unsafe = (r"\\u0000|\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])"
              r"|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}")
    exact = re.search(unsafe, json.dumps(summary), re.IGNORECASE) is None
    assert _json_is_safe(summary) == exact


def test_bounced_addresses_stay_in_clear_when_complainants_are_hashed(db_session: Session):
    result = Pipeline(RULES, recipient_salt=SALT).ingest(db_session, corpus("lhost-postfix-01.eml"),
                                                        source="test")
    db_session.commit()
    [event] = events_of(db_session, result.message_id)
    [row] = expected("lhost-postfix-01.eml")
    assert (event.recipient, event.recipient_hashed) == (row["recipient"], False)


@pytest.mark.parametrize("same_bytes", [True, False])
def test_two_writers_of_one_complaint_record_it_once(db_engine: Engine, same_bytes: bool):
    raw = corpus("arf-14.eml")
    copies = [raw, raw if same_bytes else b"X-Resent: yes\n" + raw]
    sessions = session_factory(db_engine)
    barrier = threading.Barrier(2)
    results: list[IngestResult] = []

    def write(body: bytes) -> None:
        with sessions() as session:
            barrier.wait()
            results.append(Pipeline(RULES).ingest(session, body, source="race"))
            session.commit()

    try:
        threads = [threading.Thread(target=write, args=(body,)) for body in copies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(result.created for result in results) == [False, True]
        first = next(result for result in results if result.created)
        again = next(result for result in results if not result.created)
        assert (again.message_id, again.status) == (first.message_id, "duplicate")
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(ComplaintEvent)) == 1
            assert session.scalar(select(func.count()).select_from(RawMessage)) == (1 if same_bytes else 2)
    finally:
        db.clear(db_engine)


def test_the_ledger_adapter_agrees_with_storage_on_message_ids(db_session: Session):
    add_ledger_entry(db_session, "<20261130.42@mail.provider.example>", account="alice@example.com",
                     sender="alice@shop.example")
    ledger = SessionLedger(db_session)
    # attribution.normalize_message_id drops the brackets; storage's rule finds <...> anywhere.
    for asked in ("20261130.42@mail.provider.example", "<20261130.42@mail.provider.example>",
                  "Message-ID text <20261130.42@mail.provider.example> (comment)"):
        entry = ledger(attribution.normalize_message_id(asked))
        assert entry is not None, asked
        assert (entry.account, entry.domain) == ("alice@example.com", "shop.example")
    assert ledger("unknown@mail.provider.example") is None
