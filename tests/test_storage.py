"""Models and constraints on SQLite and PostgreSQL: uniqueness, compression, cascades, time zones."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.engine import session_factory
from storage.models import (
    BounceEvent,
    ComplaintEvent,
    Event,
    EventIdentity,
    Identity,
    MessageKind,
    MessageStatus,
    RawMessage,
)
from storage.queries import get_or_create_identity, store_raw_message
from tests import db

# The two-backend fixtures (tests/db.py), used by name below.
database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

CORPUS = Path(__file__).resolve().parent / "data" / "corpus" / "emails"
WHEN = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)


def a_real_message() -> bytes:
    """A real bounce from the shared corpus (any one: only its bytes matter here)."""
    found = sorted(path for path in CORPUS.rglob("*") if path.is_file())
    if not found:
        pytest.skip(f"no corpus message under {CORPUS}")
    return found[0].read_bytes()


def count(session: Session, model: type[object]) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def a_message(session: Session, raw: bytes = b"Subject: x\r\n\r\nbody\r\n") -> RawMessage:
    message, _ = store_raw_message(session, raw, "test", kind=MessageKind.BOUNCE)
    return message


def a_bounce(session: Session, message: RawMessage, recipient: str = "user@example.org") -> BounceEvent:
    bounce = BounceEvent(message=message, occurred_at=WHEN, recipient=recipient,
                         recipient_domain="example.org", reason="userunknown", status="5.1.1",
                         reply_code="550", hard=True,
                         diagnostic="550 5.1.1 <user@example.org>: Recipient address rejected: User unknown",
                         remote_mta="mx.example.org")
    session.add(bounce)
    return bounce


@pytest.mark.parametrize("raw", [
    b"",
    bytes(range(256)) * 4,
    b"Subject: caf\xe9\r\n\r\n" + b"spam spam spam\r\n" * 2000,
], ids=["empty", "binary", "latin1-repetitive"])
def test_compressed_bytes_round_trip(db_engine: Engine, db_session: Session, raw: bytes) -> None:
    message, created = store_raw_message(db_session, raw, "webhook")
    db_session.commit()
    assert created
    with session_factory(db_engine)() as other:
        stored = other.get_one(RawMessage, message.id)
        assert stored.raw == raw
        assert stored.size == len(raw)
        assert zlib.decompress(stored.compressed) == raw
        assert stored.status == MessageStatus.RECEIVED
        assert stored.kind == MessageKind.OTHER


def test_a_real_message_is_stored_smaller(db_session: Session) -> None:
    raw = a_real_message()
    message = a_message(db_session, raw)
    db_session.commit()
    assert message.raw == raw
    assert len(message.compressed) < len(raw)


def test_same_bytes_are_stored_once(db_session: Session) -> None:
    first, created_first = store_raw_message(db_session, b"one message", "webhook")
    second, created_second = store_raw_message(db_session, b"one message", "imap:fbl")
    assert (created_first, created_second) == (True, False)
    assert second.id == first.id
    assert second.source == "webhook"
    assert count(db_session, RawMessage) == 1


def test_sha256_is_unique_in_the_database(db_session: Session) -> None:
    first = a_message(db_session)
    db_session.commit()
    db_session.add(RawMessage(sha256=first.sha256, source="import", size=0,
                              compressed=RawMessage.compress(b"")))
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_vocabulary_columns_are_checked(db_session: Session) -> None:
    db_session.add(RawMessage(sha256="0" * 64, source="test", size=0, compressed=b"", status="lost"))
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_times_come_back_aware_in_utc(db_engine: Engine, db_session: Session) -> None:
    paris = timezone(timedelta(hours=1))
    at_paris = datetime(2026, 11, 30, 3, 0, tzinfo=paris)
    message, _ = store_raw_message(db_session, b"x", "test", received_at=at_paris)
    db_session.commit()
    with session_factory(db_engine)() as other:
        received = other.get_one(RawMessage, message.id).received_at
    assert received == datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert received.utcoffset() == timedelta(0)


def test_bounces_and_complaints_share_one_id_sequence(db_engine: Engine, db_session: Session) -> None:
    message = a_message(db_session)
    bounce = a_bounce(db_session, message)
    complaint = ComplaintEvent(message=message, occurred_at=WHEN, recipient="r@example.net",
                               recipient_domain="example.net", reason="feedback", feedback_type="abuse",
                               source_ip="192.0.2.1", reporter="example.net",
                               original_message_id="20261130.1@mail.example.com")
    db_session.add_all([bounce, complaint])
    db_session.commit()
    with session_factory(db_engine)() as other:
        events = other.execute(select(Event).order_by(Event.id)).scalars().all()
        assert [type(event) for event in events] == [BounceEvent, ComplaintEvent]
        assert [event.kind for event in events] == ["bounce", "complaint"]
        loaded_bounce, loaded_complaint = events
        assert isinstance(loaded_bounce, BounceEvent) and isinstance(loaded_complaint, ComplaintEvent)
        assert (loaded_bounce.status, loaded_bounce.hard) == ("5.1.1", True)
        assert loaded_complaint.feedback_type == "abuse"
        events_of_message = other.get_one(RawMessage, message.id).events
        assert [event.id for event in events_of_message] == [bounce.id, complaint.id]


def test_an_event_keeps_how_each_identity_was_found(db_engine: Engine, db_session: Session) -> None:
    message = a_message(db_session)
    bounce = a_bounce(db_session, message)
    account = get_or_create_identity(db_session, "account", "alice@customer.example", WHEN)
    script = get_or_create_identity(db_session, "script", "/home/alice/public_html/mailer.php", WHEN)
    bounce.links = [
        EventIdentity(identity=account, source="received-auth",
                      detail="Received: ... (Authenticated sender: alice@customer.example)"),
        EventIdentity(identity=script, source="x-php-originating-script",
                      detail="X-PHP-Originating-Script: 1001:mailer.php"),
    ]
    db_session.add(bounce)
    db_session.commit()
    with session_factory(db_engine)() as other:
        query = select(EventIdentity).where(EventIdentity.identity_id == script.id)
        links = other.execute(query).scalars().all()
        assert [(link.event_id, link.source) for link in links] == [(bounce.id, "x-php-originating-script")]
        assert links[0].identity.value == "/home/alice/public_html/mailer.php"


def test_deleting_a_message_deletes_its_events_and_links_not_identities(db_session: Session) -> None:
    message = a_message(db_session)
    bounce = a_bounce(db_session, message)
    identity = get_or_create_identity(db_session, "account", "alice", WHEN)
    bounce.links = [EventIdentity(identity=identity, source="received-auth")]
    db_session.add(bounce)
    db_session.commit()
    # A Core DELETE: the database's ON DELETE CASCADE does the work, not the ORM.
    db_session.execute(delete(RawMessage).where(RawMessage.id == message.id))
    db_session.commit()
    db_session.expunge_all()
    assert (count(db_session, Event), count(db_session, EventIdentity)) == (0, 0)
    assert count(db_session, Identity) == 1


def test_an_identity_with_events_cannot_be_deleted(db_session: Session) -> None:
    message = a_message(db_session)
    bounce = a_bounce(db_session, message)
    identity = get_or_create_identity(db_session, "ip", "192.0.2.25", WHEN)
    bounce.links = [EventIdentity(identity=identity, source="arf-source-ip")]
    db_session.add(bounce)
    db_session.commit()
    with pytest.raises(IntegrityError):
        db_session.execute(delete(Identity).where(Identity.id == identity.id))
        db_session.flush()


def test_an_event_needs_its_message(db_session: Session) -> None:
    # SQLite enforces this only with PRAGMA foreign_keys=ON, which make_engine sets.
    db_session.add(BounceEvent(message_id=987654, occurred_at=WHEN, reason="userunknown"))
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_deleting_the_first_of_duplicates_keeps_the_duplicate(db_session: Session) -> None:
    first = a_message(db_session, b"first")
    second = a_message(db_session, b"second")
    second.status = MessageStatus.DUPLICATE.value
    second.duplicate_of_id = first.id
    db_session.commit()
    db_session.execute(delete(RawMessage).where(RawMessage.id == first.id))
    db_session.commit()
    db_session.expire_all()
    assert db_session.get_one(RawMessage, second.id).duplicate_of_id is None
