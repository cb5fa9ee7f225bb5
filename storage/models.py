"""The stored facts: raw messages, identities, events and what the collectors need to remember.

Tables (one class each):

- ``raw_messages`` (RawMessage): every message received, its bytes zlib-compressed, deduplicated by
  SHA-256; a complaint also carries ``dedup_key`` (reporter + original Message-ID + recipient),
  unique when present, so the same complaint sent twice in different bytes counts once.
- ``identities`` (Identity): ``(kind, value)``, unique, with first and last time seen.
- ``events`` (Event; BounceEvent and ComplaintEvent): one row per failed recipient or complaint.
  Both kinds share one table (single-table inheritance) so that ``GET /v1/events`` filters and
  pages over one id sequence with one index per filter; the columns of the other kind are NULL.
- ``event_identities`` (EventIdentity): which identities an event is attributed to and how each
  was found (``source``: the rule, ``detail``: the header or value that matched), for explanations.
- ``message_ledger`` (LedgerEntry): Message-ID of a message we sent -> who sent it, written by the
  policy and MTA-log sides, read by attribution.
- ``api_tokens`` (ApiToken): bearer tokens, stored as SHA-256 only.
- ``imap_state`` (ImapState): per configured mailbox, UIDVALIDITY and the last UID committed.
- ``users`` (User): the people who log in to the dashboard, with their role and a salted scrypt hash
  of their password (storage/users.py, ``python app.py user``).
- ``login_failures`` (LoginFailure): the dashboard's failed logins per user name and per client
  address, and their lockouts (storage/logins.py), shared by every process on the database.

Every timestamp is stored in UTC and read back aware (``storage.types.UTCDateTime``).
"""

from __future__ import annotations

import zlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import BigId, UTCDateTime, utcnow

__all__ = [
    "ApiToken",
    "Base",
    "BounceEvent",
    "ComplaintEvent",
    "Event",
    "EventIdentity",
    "EventKind",
    "Identity",
    "IdentityKind",
    "ImapState",
    "LedgerEntry",
    "LoginFailure",
    "MessageKind",
    "MessageStatus",
    "RawMessage",
    "TokenRole",
    "User",
    "UserRole",
]

# Constraint names spelled out, so that migrations can refer to them on every backend
# (https://alembic.sqlalchemy.org/en/latest/naming.html).
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class _Vocabulary(StrEnum):
    """A closed set of values stored as text (a CHECK constraint keeps the database to it)."""


class MessageKind(_Vocabulary):
    """What a raw message is (the values of ``ingest.Kind``)."""

    COMPLAINT = "complaint"
    BOUNCE = "bounce"
    AUTOREPLY = "autoreply"
    DELIVERY = "delivery"
    OTHER = "other"


class MessageStatus(_Vocabulary):
    """Where a raw message is in the pipeline."""

    RECEIVED = "received"  # stored, not processed yet (the bytes are safe; processing may follow)
    PARSED = "parsed"  # events written
    QUARANTINED = "quarantined"  # could not be parsed, or processing failed: ``error`` says why
    IGNORED = "ignored"  # read, nothing to record (an auto-reply, a success DSN, other mail)
    DUPLICATE = "duplicate"  # a complaint already recorded from other bytes: see ``duplicate_of``


class IdentityKind(_Vocabulary):
    """Who can be responsible for a message (DESIGN.md, "Vocabulary")."""

    ACCOUNT = "account"
    SCRIPT = "script"
    CUSTOMER = "customer"
    DOMAIN = "domain"
    CLIENT = "client"
    IP = "ip"


class EventKind(_Vocabulary):
    """The stored event kinds (sends are counted by the policy side, not stored one by one)."""

    BOUNCE = "bounce"
    COMPLAINT = "complaint"


class TokenRole(_Vocabulary):
    """What an API token may do."""

    INGEST = "ingest"
    VIEWER = "viewer"
    ADMIN = "admin"
    MTA = "mta"


class UserRole(_Vocabulary):
    """What a dashboard user may do (web/dashboard/access.py)."""

    ADMIN = "admin"  # reads and acts (resume, allow, block, verdicts, re-process)
    VIEWER = "viewer"  # reads only


def _one_of(column: str, vocabulary: type[_Vocabulary]) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in vocabulary)
    return CheckConstraint(f"{column} IN ({values})", name=column)


class Base(DeclarativeBase):
    """Declarative base of every model; ``Base.metadata`` is what the migrations must match."""

    metadata = MetaData(naming_convention=NAMING)


class RawMessage(Base):
    """One received message, kept whole (compressed) whatever became of it."""

    __tablename__ = "raw_messages"
    __table_args__ = (
        _one_of("kind", MessageKind),
        _one_of("status", MessageStatus),
        # `python app.py reprocess` walks the quarantine in id order.
        Index(None, "status", "id"),
        Index(None, "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # Where it came from: "webhook", "imap:<mailbox name>", "import", ...
    source: Mapped[str] = mapped_column(String(255))
    # Where to find it there (the IMAP UID, the imported file's path), when that means something.
    source_ref: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    size: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16), default=MessageKind.OTHER.value)
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.RECEIVED.value)
    # Why it was quarantined (the parser's errors, or the traceback of a bug).
    error: Mapped[str | None] = mapped_column(Text)
    compressed: Mapped[bytes] = mapped_column(LargeBinary)
    # sha256 of reporter + original Message-ID + recipient (storage.queries.complaint_dedup_key).
    # NULL for everything else; both SQLite and PostgreSQL allow many NULLs in a unique column.
    dedup_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("raw_messages.id", ondelete="SET NULL"))
    # The parse result as JSON-able data, for GET /v1/messages/<id> without parsing again.
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    events: Mapped[list[Event]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Event.id")

    @property
    def raw(self) -> bytes:
        """The message's bytes, as received."""
        return zlib.decompress(self.compressed)

    @staticmethod
    def compress(raw: bytes) -> bytes:
        """The stored form of ``raw``."""
        return zlib.compress(raw, 6)


class Identity(Base):
    """One (kind, value) that can be held responsible: an account, a script, a customer, ..."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("kind", "value"),
        _one_of("kind", IdentityKind),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    # Scripts are paths and may be long; 1000 characters stay well inside PostgreSQL's btree limit.
    value: Mapped[str] = mapped_column(String(1000))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    """One observed fact about a recipient of one of our messages: a bounce or a complaint."""

    __tablename__ = "events"
    __table_args__ = (
        _one_of("kind", EventKind),
        # GET /v1/events pages by id (newest first) under each filter.
        Index(None, "kind", "id"),
        Index(None, "reason", "id"),
        Index(None, "occurred_at", "id"),
    )
    __mapper_args__ = {"polymorphic_on": "kind"}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[int] = mapped_column(ForeignKey("raw_messages.id", ondelete="CASCADE"), index=True)
    # When it happened by the report's own date; the receive time when the report gives none.
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The address, or its HMAC (storage.recipients.hash_recipient) when ``recipient_hashed``.
    recipient: Mapped[str] = mapped_column(String(320), default="")
    recipient_hashed: Mapped[bool] = mapped_column(default=False)
    # Kept in clear even when the address is hashed: reports count recipient domains.
    recipient_domain: Mapped[str] = mapped_column(String(255), default="")
    # A reason of shared/reasons.md; "feedback" for a complaint.
    reason: Mapped[str] = mapped_column(String(32))
    # Message-ID of our original message, when the report returned it.
    original_message_id: Mapped[str | None] = mapped_column(String(998))

    message: Mapped[RawMessage] = relationship(back_populates="events")
    links: Mapped[list[EventIdentity]] = relationship(
        back_populates="event", cascade="all, delete-orphan", passive_deletes=True)


class BounceEvent(Event):
    """A recipient that failed (one per recipient of a DSN/NDR)."""

    __mapper_args__ = {"polymorphic_identity": EventKind.BOUNCE.value}

    # DSN status (RFC 3463, "5.1.1") and SMTP reply code (RFC 5321, "550").
    status: Mapped[str | None] = mapped_column(String(16))
    reply_code: Mapped[str | None] = mapped_column(String(8))
    hard: Mapped[bool | None]
    diagnostic: Mapped[str | None] = mapped_column(Text)
    remote_mta: Mapped[str | None] = mapped_column(String(255))


class ComplaintEvent(Event):
    """A complaint (feedback-loop report) about one recipient."""

    __mapper_args__ = {"polymorphic_identity": EventKind.COMPLAINT.value}

    # ARF Feedback-Type (RFC 5965, section 7.3): abuse, fraud, virus, other, not-spam, ...
    feedback_type: Mapped[str | None] = mapped_column(String(32))
    source_ip: Mapped[str | None] = mapped_column(String(45))
    # Who sent the report (its From domain, or the ARF User-Agent when there is no better name).
    reporter: Mapped[str | None] = mapped_column(String(255))


class EventIdentity(Base):
    """An event's attribution to an identity, with how it was found."""

    __tablename__ = "event_identities"
    __table_args__ = (
        # "Events of this identity", paged by event id.
        Index(None, "identity_id", "event_id"),
    )

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    # No cascade: an identity with events is history and is not deleted.
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id"), primary_key=True)
    # The rule that found it ("received-auth", "x-php-originating-script", "ledger", "verp", ...).
    source: Mapped[str] = mapped_column(String(64))
    # What it saw (the header line, the VERP address), to show in an explanation.
    detail: Mapped[str] = mapped_column(Text, default="")

    event: Mapped[Event] = relationship(back_populates="links")
    identity: Mapped[Identity] = relationship()


class LedgerEntry(Base):
    """Who sent the message with this Message-ID (written when it was sent)."""

    __tablename__ = "message_ledger"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Without the angle brackets (storage.queries.normalize_message_id).
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    account: Mapped[str | None] = mapped_column(String(320))
    script: Mapped[str | None] = mapped_column(String(1000))
    customer: Mapped[str | None] = mapped_column(String(255))
    client: Mapped[str | None] = mapped_column(String(255))
    sender: Mapped[str | None] = mapped_column(String(320))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ApiToken(Base):
    """A bearer token of the HTTP API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (_one_of("role", TokenRole),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ImapState(Base):
    """How far an IMAP mailbox has been collected (RFC 3501, section 2.3.1.1: UID and UIDVALIDITY)."""

    __tablename__ = "imap_state"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The mailbox's name in the configuration.
    mailbox: Mapped[str] = mapped_column(String(255), unique=True)
    # Both are unsigned 32-bit numbers in IMAP: too big for a signed 32-bit column.
    uidvalidity: Mapped[int | None] = mapped_column(BigId)
    last_uid: Mapped[int] = mapped_column(BigId, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class User(Base):
    """A person who logs in to the dashboard; only a salted scrypt hash of the password is kept.

    A disabled user keeps the row (and the name, which appears as the author of their verdicts and
    overrides) but can no longer log in, and their open sessions end at their next request.
    """

    __tablename__ = "users"
    __table_args__ = (_one_of("role", UserRole),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    # werkzeug.security's "scrypt:N:r:p$salt$hash" (storage/users.py).
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginFailure(Base):
    """Failed dashboard logins of one user name or one client address, and its lockout if any.

    ``key`` is "name:<casefolded name>" or "addr:<ip>" (web/dashboard/throttle.py); a longer key is
    stored shortened, ending with its SHA-256 (storage/logins.py). A row whose window and lockout
    have both passed says nothing any more and is deleted (storage.logins.prune_login_failures).
    """

    __tablename__ = "login_failures"
    # The prune looks for the rows whose window began before a cut-off.
    __table_args__ = (Index(None, "first_at"),)

    key: Mapped[str] = mapped_column(String(120), primary_key=True)  # storage.logins.KEY_LENGTH
    # Failures in the window that began at first_at (reset to 0 when they lock the key).
    failures: Mapped[int]
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
