"""The small reads and writes the ingest pipeline needs, safe when several writers race.

Inserts that may collide with another transaction use ``INSERT ... ON CONFLICT DO NOTHING`` and
then read the row that won (PostgreSQL >= 9.5 and SQLite >= 3.24 share that syntax), instead of
catching an IntegrityError that would abort the whole PostgreSQL transaction. Every function
takes the caller's session and leaves committing to the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from storage.models import (
    Identity,
    IdentityKind,
    ImapState,
    LedgerEntry,
    MessageKind,
    MessageStatus,
    RawMessage,
)
from storage.types import utcnow

__all__ = [
    "add_ledger_entry",
    "claim_dedup_key",
    "complaint_dedup_key",
    "find_by_dedup_key",
    "find_raw_message",
    "get_or_create_identity",
    "imap_state",
    "ledger_entry",
    "normalize_message_id",
    "sha256_hex",
    "store_raw_message",
]

# Longest identity value stored (the column's size); longer ones are cut, not refused: a message
# must not be quarantined because a script path is absurdly long.
IDENTITY_VALUE_MAX = 1000
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_T = TypeVar("_T")

# Built once: statements with bound parameters skip SQLAlchemy's construction and compile caching
# work on every call.
_RAW_BY_SHA256 = select(RawMessage).where(RawMessage.sha256 == bindparam("sha256"))
_IDENTITY_BY_KEY = select(Identity).where(Identity.kind == bindparam("kind"),
                                           Identity.value == bindparam("value"))
_SEEN_LATER = (update(Identity)
               .where(Identity.id == bindparam("identity"), Identity.last_seen < bindparam("seen"))
               .values(last_seen=bindparam("seen")))
_SEEN_EARLIER = (update(Identity)
                 .where(Identity.id == bindparam("identity"), Identity.first_seen > bindparam("seen"))
                 .values(first_seen=bindparam("seen")))


def sha256_hex(raw: bytes) -> str:
    """The SHA-256 of ``raw`` in lower-case hex: a raw message's identity."""
    return hashlib.sha256(raw).hexdigest()


def _insert(session: Session, entity: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with ON CONFLICT support for the session's backend."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(entity)
    if name == "sqlite":
        return sqlite.insert(entity)
    raise ValueError(f"unsupported database backend {name!r}")


def find_raw_message(session: Session, sha256: str) -> RawMessage | None:
    """The stored message whose bytes have this SHA-256 (hex), if any."""
    return session.execute(_RAW_BY_SHA256, {"sha256": sha256.lower()}).scalar_one_or_none()


def store_raw_message(
    session: Session,
    raw: bytes,
    source: str,
    *,
    received_at: datetime | None = None,
    source_ref: str | None = None,
    kind: MessageKind | str = MessageKind.OTHER,
    status: MessageStatus | str = MessageStatus.RECEIVED,
) -> tuple[RawMessage, bool]:
    """Store ``raw`` (compressed) unless the same bytes are stored already.

    Returns ``(message, created)``: ``created`` is False when the bytes were there before (also
    when another transaction stored them a moment ago), and ``message`` is then the stored one.
    """
    digest = sha256_hex(raw)
    statement = (
        _insert(session, RawMessage)
        .values(sha256=digest, source=source, source_ref=source_ref, received_at=received_at or utcnow(),
                size=len(raw), kind=MessageKind(kind).value, status=MessageStatus(status).value,
                compressed=RawMessage.compress(raw))
        .on_conflict_do_nothing(index_elements=[RawMessage.sha256])
        .returning(RawMessage)
    )
    # An ORM INSERT ... RETURNING: the new row comes back as a persistent object, no second SELECT.
    created = session.scalars(statement).one_or_none()
    if created is None:
        # The same bytes were stored before, or by another writer a moment ago: theirs is the one.
        return _one(find_raw_message(session, digest)), False
    return created, True


def complaint_dedup_key(reporter: str, original_message_id: str, recipient: str,
                        salt: str | bytes | None = None) -> str | None:
    """The key that makes one complaint count once, whatever bytes carry it; None if it cannot be made.

    A reporter sends the same complaint again (a retry, or the same report to two addresses of
    ours): same reporter, same original Message-ID, same recipient. Without the original's
    Message-ID or the recipient two different complaints could look the same, so there is no key.
    With ``salt`` the key is an HMAC, so the recipient cannot be recovered from it.
    """
    message_id = normalize_message_id(original_message_id)
    address = recipient.strip().lower()
    if not message_id or not address:
        return None
    text = "\0".join((reporter.strip().lower(), message_id, address)).encode("utf-8")
    if salt is None:
        return hashlib.sha256(text).hexdigest()
    key = salt.encode("utf-8") if isinstance(salt, str) else salt
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def find_by_dedup_key(session: Session, key: str) -> RawMessage | None:
    """The message that holds complaint key ``key``, if any."""
    return session.execute(select(RawMessage).where(RawMessage.dedup_key == key)).scalar_one_or_none()


def claim_dedup_key(session: Session, message: RawMessage, key: str) -> RawMessage | None:
    """Give ``message`` the complaint key ``key``: None if it holds it now, else the earlier holder.

    Race-safe: if another transaction takes the key between the check and the write, the unique
    constraint refuses ours inside a savepoint, the rest of the transaction goes on, and the
    other holder is returned.
    """
    holder = find_by_dedup_key(session, key)
    if holder is not None:
        return None if holder.id == message.id else holder
    try:
        with session.begin_nested():
            message.dedup_key = key
            session.flush()
    except IntegrityError:
        message.dedup_key = None
        return _one(find_by_dedup_key(session, key))
    return None


def get_or_create_identity(session: Session, kind: IdentityKind | str, value: str,
                           seen_at: datetime | None = None) -> Identity:
    """The identity ``(kind, value)``, created if new; its first/last seen times include ``seen_at``.

    ``kind`` must be one of IdentityKind (ValueError otherwise). Safe against a concurrent
    creation of the same identity.
    """
    key = {"kind": IdentityKind(kind).value, "value": value[:IDENTITY_VALUE_MAX]}
    seen = seen_at or utcnow()
    # No autoflush: these statements do not depend on the caller's pending objects, and flushing
    # them at every identity would cost a unit-of-work pass each time (ingest calls this a lot).
    with session.no_autoflush:
        identity = session.execute(_IDENTITY_BY_KEY, key).scalar_one_or_none()
        if identity is None:
            session.execute(
                _insert(session, Identity)
                .values(**key, first_seen=seen, last_seen=seen)
                .on_conflict_do_nothing(index_elements=[Identity.kind, Identity.value])
            )
            # Ours, or the one a concurrent writer committed first (PostgreSQL waited for it).
            identity = session.execute(_IDENTITY_BY_KEY, key).scalar_one()
        # Guarded UPDATEs: a concurrent writer's later time is never replaced by an earlier one.
        if identity.last_seen < seen:
            session.execute(_SEEN_LATER, {"identity": identity.id, "seen": seen},
                            execution_options={"synchronize_session": False})
            set_committed_value(identity, "last_seen", seen)
        if identity.first_seen > seen:
            session.execute(_SEEN_EARLIER, {"identity": identity.id, "seen": seen},
                            execution_options={"synchronize_session": False})
            set_committed_value(identity, "first_seen", seen)
    return identity


def normalize_message_id(value: str) -> str:
    """A Message-ID as stored: the first ``<...>`` without the brackets, else the trimmed text.

    RFC 5322 (section 3.6.4) writes it ``<left@right>``; reports quote it with or without the
    brackets, folded, or followed by a comment.
    """
    found = _MESSAGE_ID.search(value)
    return found.group(1) if found else value.strip().strip("<>").strip()


def ledger_entry(session: Session, message_id: str) -> LedgerEntry | None:
    """Who sent the message with this Message-ID, if it was recorded when it was sent."""
    key = normalize_message_id(message_id)
    if not key:
        return None
    return session.execute(select(LedgerEntry).where(LedgerEntry.message_id == key)).scalar_one_or_none()


def add_ledger_entry(session: Session, message_id: str, *, account: str | None = None,
                     script: str | None = None, customer: str | None = None, client: str | None = None,
                     sender: str | None = None, recorded_at: datetime | None = None) -> LedgerEntry:
    """Record who sent ``message_id``; the first record of a Message-ID wins and is returned.

    A second record of one Message-ID is a retry or a forgery, never a better answer.
    """
    key = normalize_message_id(message_id)
    if not key:
        raise ValueError("a ledger entry needs a Message-ID")
    session.execute(
        _insert(session, LedgerEntry)
        .values(message_id=key, account=account, script=script, customer=customer, client=client,
                sender=sender, recorded_at=recorded_at or utcnow())
        .on_conflict_do_nothing(index_elements=[LedgerEntry.message_id])
    )
    return _one(ledger_entry(session, key))


def imap_state(session: Session, mailbox: str) -> ImapState:
    """The collection state of the configured mailbox ``mailbox``, created empty (no UIDVALIDITY)."""
    session.execute(
        _insert(session, ImapState)
        .values(mailbox=mailbox, uidvalidity=None, last_uid=0, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=[ImapState.mailbox])
    )
    return session.execute(select(ImapState).where(ImapState.mailbox == mailbox)).scalar_one()


def _one(found: _T | None) -> _T:
    # After ON CONFLICT DO NOTHING the conflicting row exists and is committed (PostgreSQL waits
    # for the other transaction); its absence would be a bug, not bad input.
    if found is None:
        raise RuntimeError("the row that won the insert conflict is missing")
    return found
