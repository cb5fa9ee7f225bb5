"""The small reads and writes the ingest pipeline needs, safe when several writers race.

Inserts that may collide with another transaction use ``INSERT ... ON CONFLICT DO NOTHING`` and
then read the row that won (PostgreSQL >= 9.5 and SQLite >= 3.24 share that syntax), instead of
catching an IntegrityError that would abort the whole PostgreSQL transaction. Every function
takes the caller's session and leaves committing to the caller.

The two writes every ingested message makes (``store_message``, ``identity_id``) are Core
statements built once and run on the session's connection: the ORM's INSERT ... RETURNING of a
whole entity cost more than a quarter of an import's time (benchmarks/ingest.py), and an import
or a busy webhook meets the same few identities again and again, so each identity is read (or
created) once per transaction and its first/last seen times are widened once, before the commit.
``store_raw_message`` and ``get_or_create_identity`` give the same rows as ORM objects, for
callers that want them (the tests, the CLI).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

import sqlalchemy.event
from sqlalchemy import Table, bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from rfc822 import bare_message_id
from storage.engine import dialect_insert
from storage.models import (
    ApiToken,
    EventIdentity,
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
    "IDENTITY_VALUE_MAX",
    "StoredMessage",
    "add_ledger_entry",
    "claim_dedup_key",
    "complaint_dedup_key",
    "dedup_key_holders",
    "find_by_dedup_key",
    "find_raw_message",
    "forget_identities",
    "get_or_create_identity",
    "identity_id",
    "imap_state",
    "insert_event_identities",
    "insert_messages",
    "ledger_entry",
    "live_token_hashes",
    "normalize_message_id",
    "preload_identities",
    "rows_in",
    "sha256_hex",
    "store_message",
    "store_raw_message",
    "stored_messages",
    "write_identity_times",
    "write_message_outcome",
]

# Longest identity value stored (the column's size); longer ones are cut, not refused: a message
# must not be quarantined because a script path is absurdly long.
IDENTITY_VALUE_MAX = 1000
_T = TypeVar("_T")

# Built once: statements with bound parameters skip SQLAlchemy's construction and compile caching
# work on every call.
_RAW_BY_SHA256 = select(RawMessage).where(RawMessage.sha256 == bindparam("sha256"))
_MESSAGES = cast(Table, RawMessage.__table__)
_MESSAGE_COLUMNS = ("sha256", "source", "source_ref", "received_at", "size", "kind", "status", "compressed")
_OUTCOME_COLUMNS = ("status", "kind", "error", "duplicate_of_id", "summary", "processed_at")
_MESSAGE_BY_SHA256 = (select(_MESSAGES.c.id, _MESSAGES.c.received_at, _MESSAGES.c.kind,
                             _MESSAGES.c.duplicate_of_id)
                      .where(_MESSAGES.c.sha256 == bindparam("sha256")))
_WRITE_OUTCOME = (update(_MESSAGES).where(_MESSAGES.c.id == bindparam("message"))
                  .values({name: bindparam(f"new_{name}", type_=_MESSAGES.c[name].type)
                           for name in _OUTCOME_COLUMNS}))
_IDENTITIES = cast(Table, Identity.__table__)
_LINKS = cast(Table, EventIdentity.__table__)
_IDENTITY_BY_KEY = (select(_IDENTITIES.c.id, _IDENTITIES.c.first_seen, _IDENTITIES.c.last_seen)
                    .where(_IDENTITIES.c.kind == bindparam("kind"),
                           _IDENTITIES.c.value == bindparam("value")))
_SEEN_LATER = (update(_IDENTITIES)
               .where(_IDENTITIES.c.id == bindparam("identity"),
                      _IDENTITIES.c.last_seen < bindparam("seen"))
               .values(last_seen=bindparam("seen")))
_SEEN_EARLIER = (update(_IDENTITIES)
                 .where(_IDENTITIES.c.id == bindparam("identity"),
                        _IDENTITIES.c.first_seen > bindparam("seen"))
                 .values(first_seen=bindparam("seen")))
_MESSAGES_BY_SHA256 = (select(_MESSAGES.c.sha256, _MESSAGES.c.id, _MESSAGES.c.received_at, _MESSAGES.c.kind,
                              _MESSAGES.c.duplicate_of_id)
                       .where(_MESSAGES.c.sha256.in_(bindparam("digests", expanding=True))))
_HOLDERS_BY_KEY = (select(_MESSAGES.c.dedup_key, _MESSAGES.c.id, _MESSAGES.c.duplicate_of_id)
                   .where(_MESSAGES.c.dedup_key.in_(bindparam("keys", expanding=True))))
# Every column of a new raw message row but the id: the batch insert's rows all have them all. The
# SHA-256 comes back with the id: RETURNING's row order is not the VALUES order on SQLite, and
# asking SQLAlchemy to sort them makes it insert one row per statement there.
_INSERT_MESSAGES = _MESSAGES.insert().returning(_MESSAGES.c.id, _MESSAGES.c.sha256)
_IDENTITIES_BY_KEYS = (select(_IDENTITIES.c.kind, _IDENTITIES.c.value, _IDENTITIES.c.id,
                              _IDENTITIES.c.first_seen, _IDENTITIES.c.last_seen)
                       .where(tuple_(_IDENTITIES.c.kind, _IDENTITIES.c.value)
                              .in_(bindparam("keys", expanding=True))))
_TOKENS_BY_HASH = (select(ApiToken.token_sha256, ApiToken.revoked_at)
                   .where(ApiToken.token_sha256.in_(bindparam("hashes", expanding=True))))
# Values per IN list of the reads above: one bound parameter each (two for an identity's kind and
# value), so a batch of any size stays far below PostgreSQL's 65535 parameters per statement and
# SQLite's 32766 (the default limit of the library since 3.32).
IN_CHUNK = 5000
# Where the identities met in a session's transaction are kept (Session.info).
_SEEN_KEY = "ricochet.storage.identities"
_LISTENING_KEY = "ricochet.storage.identities.listening"


def _store_insert(dialect: Any) -> Any:
    return (dialect.insert(_MESSAGES)
            .values({name: bindparam(f"new_{name}", type_=_MESSAGES.c[name].type)
                     for name in _MESSAGE_COLUMNS})
            .on_conflict_do_nothing(index_elements=[_MESSAGES.c.sha256])
            .returning(_MESSAGES.c.id, _MESSAGES.c.received_at))


def _identity_insert(dialect: Any) -> Any:
    return (dialect.insert(_IDENTITIES)
            .values(kind=bindparam("kind"), value=bindparam("value"), first_seen=bindparam("seen"),
                    last_seen=bindparam("seen"))
            .on_conflict_do_nothing(index_elements=[_IDENTITIES.c.kind, _IDENTITIES.c.value]))


_STORE_INSERTS = {"sqlite": _store_insert(sqlite), "postgresql": _store_insert(postgresql)}
_IDENTITY_INSERTS = {"sqlite": _identity_insert(sqlite), "postgresql": _identity_insert(postgresql)}


@dataclass(frozen=True)
class StoredMessage:
    """A raw message's row: ``created`` False when the same bytes were stored before."""

    id: int
    received_at: datetime
    kind: str
    created: bool
    duplicate_of: int | None = None


@dataclass
class _Seen:
    """An identity met in this transaction: its stored times, and the event times met since."""

    id: int
    first_seen: datetime
    last_seen: datetime
    low: datetime
    high: datetime


def sha256_hex(raw: bytes) -> str:
    """The SHA-256 of ``raw`` in lower-case hex: a raw message's identity."""
    return hashlib.sha256(raw).hexdigest()


def find_raw_message(session: Session, sha256: str) -> RawMessage | None:
    """The stored message whose bytes have this SHA-256 (hex), if any."""
    return session.execute(_RAW_BY_SHA256, {"sha256": sha256.lower()}).scalar_one_or_none()


def _statement(connection: Connection, statements: dict[str, Any]) -> Any:
    statement = statements.get(connection.dialect.name)
    if statement is None:
        raise ValueError(f"unsupported database backend {connection.dialect.name!r}")
    return statement


def store_message(session: Session, raw: bytes, source: str, *, source_ref: str | None = None,
                  received_at: datetime | None = None, kind: MessageKind | str = MessageKind.OTHER,
                  status: MessageStatus | str = MessageStatus.RECEIVED) -> StoredMessage:
    """Store ``raw`` (compressed) unless the same bytes are stored already; its row's id and times.

    ``created`` is False when the bytes were there before (also when another transaction stored
    them a moment ago), and the row is then the stored one.
    """
    connection = session.connection()
    digest, kind_value = sha256_hex(raw), MessageKind(kind).value
    values = {"sha256": digest, "source": source, "source_ref": source_ref,
              "received_at": received_at or utcnow(), "size": len(raw), "kind": kind_value,
              "status": MessageStatus(status).value, "compressed": RawMessage.compress(raw)}
    row = connection.execute(_statement(connection, _STORE_INSERTS),
                             {f"new_{name}": value for name, value in values.items()}).first()
    if row is not None:
        return StoredMessage(row.id, row.received_at, kind_value, True)
    # The same bytes were stored before, or by another writer a moment ago: theirs is the one.
    found = connection.execute(_MESSAGE_BY_SHA256, {"sha256": digest}).one()
    return StoredMessage(found.id, found.received_at, found.kind, False, found.duplicate_of_id)


def rows_in(connection: Connection, statement: Any, name: str, values: Collection[Any]) -> Iterator[Any]:
    """The rows of ``statement`` for ``values`` (its expanding parameter ``name``), ``IN_CHUNK`` at a time.

    One query for a batch of usual size; several, in the sorted order of ``values``, for a batch
    larger than a statement may bind.
    """
    ordered = sorted(values)
    for start in range(0, len(ordered), IN_CHUNK):
        yield from connection.execute(statement, {name: ordered[start:start + IN_CHUNK]})


def stored_messages(session: Session, digests: Collection[str]) -> dict[str, StoredMessage]:
    """The stored messages among the SHA-256s ``digests`` (one query), by SHA-256; ``created`` False."""
    rows = rows_in(session.connection(), _MESSAGES_BY_SHA256, "digests", digests) if digests else ()
    return {row.sha256: StoredMessage(row.id, row.received_at, row.kind, False, row.duplicate_of_id)
            for row in rows}


def insert_messages(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert whole ``raw_messages`` rows (every column but the id, in each) at once; their ids, in order.

    No ON CONFLICT: a row whose bytes or complaint key another transaction stored first makes the
    statement fail (IntegrityError), and the caller stores its messages one by one instead.
    """
    if not rows:
        return []
    ids = {digest: id_ for id_, digest in session.connection().execute(_INSERT_MESSAGES, rows)}
    return [ids[row["sha256"]] for row in rows]


def dedup_key_holders(session: Session, keys: Collection[str]) -> dict[str, int]:
    """For the complaint keys ``keys`` already held: the id each duplicate must point at (one query).

    That is the holder's own ``duplicate_of_id`` when it has one, as ``claim_dedup_key``'s callers use.
    """
    if not keys:
        return {}
    rows = rows_in(session.connection(), _HOLDERS_BY_KEY, "keys", keys)
    return {row.dedup_key: row.duplicate_of_id or row.id for row in rows}


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
    """``store_message``, with the row as a RawMessage: ``(message, created)``."""
    stored = store_message(session, raw, source, source_ref=source_ref, received_at=received_at, kind=kind,
                           status=status)
    return session.get_one(RawMessage, stored.id), stored.created


def write_message_outcome(session: Session, message_id: int, values: dict[str, Any]) -> None:
    """Write what processing found (status, kind, error, duplicate_of_id, summary, processed_at).

    One UPDATE; a RawMessage of that id already in the session (reprocess) is told the new values,
    without being marked changed (which would write them a second time).
    """
    new = {f"new_{name}": values[name] for name in _OUTCOME_COLUMNS}
    session.connection().execute(_WRITE_OUTCOME, {"message": message_id, **new})
    loaded = session.identity_map.get(session.identity_key(RawMessage, message_id))
    if loaded is not None:
        for name in _OUTCOME_COLUMNS:
            set_committed_value(loaded, name, values[name])


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


def identity_id(session: Session, kind: IdentityKind | str, value: str, seen_at: datetime) -> int:
    """The id of identity ``(kind, value)``, created if new; its seen times will include ``seen_at``.

    Read (or created) once per transaction; the first/last seen times are widened just before
    the commit (``write_identity_times``). ``kind`` must be one of IdentityKind (ValueError
    otherwise); ``value`` is cut to IDENTITY_VALUE_MAX. Safe against a concurrent creation.
    """
    key = (IdentityKind(kind).value, value[:IDENTITY_VALUE_MAX])
    seen = _seen_identities(session)
    entry = seen.get(key)
    if entry is None:
        entry = _read_or_create_identity(session.connection(), key, seen_at)
        seen[key] = entry
    entry.low, entry.high = min(entry.low, seen_at), max(entry.high, seen_at)
    return entry.id


def _read_or_create_identity(connection: Connection, key: tuple[str, str], seen_at: datetime) -> _Seen:
    parameters = {"kind": key[0], "value": key[1]}
    row = connection.execute(_IDENTITY_BY_KEY, parameters).first()
    if row is None:
        connection.execute(_statement(connection, _IDENTITY_INSERTS), {**parameters, "seen": seen_at})
        # Ours, or the one a concurrent writer committed first (PostgreSQL waited for it).
        row = connection.execute(_IDENTITY_BY_KEY, parameters).one()
    return _Seen(row.id, row.first_seen, row.last_seen, seen_at, seen_at)


def _seen_identities(session: Session) -> dict[tuple[str, str], _Seen]:
    """The identities met in the session's current transaction; a new transaction starts afresh."""
    session.connection()  # begins the transaction if none has begun: the cache belongs to it
    transaction = session.get_transaction()
    cached = session.info.get(_SEEN_KEY)
    if cached is None or cached[0] is not transaction:
        if not session.info.get(_LISTENING_KEY):
            sqlalchemy.event.listen(session, "before_commit", write_identity_times)
            session.info[_LISTENING_KEY] = True
        cached = (transaction, {})
        session.info[_SEEN_KEY] = cached
    identities: dict[tuple[str, str], _Seen] = cached[1]
    return identities


def write_identity_times(session: Session) -> None:
    """Widen the stored first/last seen times to the times met (guarded: never narrows them).

    Runs before every commit of a session that ``identity_id`` was used in.
    """
    cached = session.info.get(_SEEN_KEY)
    if cached is None or cached[0] is not session.get_transaction():
        return
    connection = session.connection()
    # In id order: two transactions updating the same identities lock them in the same order, so
    # they wait for each other instead of deadlocking (PostgreSQL; several nodes or collectors).
    for entry in sorted(cached[1].values(), key=lambda seen: seen.id):
        if entry.high > entry.last_seen:
            connection.execute(_SEEN_LATER, {"identity": entry.id, "seen": entry.high})
            entry.last_seen = entry.high
        if entry.low < entry.first_seen:
            connection.execute(_SEEN_EARLIER, {"identity": entry.id, "seen": entry.low})
            entry.first_seen = entry.low


def preload_identities(session: Session, keys: Collection[tuple[IdentityKind | str, str]]) -> None:
    """Read the identities ``keys`` (kind, value) that exist, in one query, for ``identity_id`` to find.

    For a batch: ``identity_id`` then reads only the identities met for the first time.
    """
    seen = _seen_identities(session)
    wanted = {(IdentityKind(kind).value, value[:IDENTITY_VALUE_MAX]) for kind, value in keys} - seen.keys()
    if not wanted:
        return
    rows = rows_in(session.connection(), _IDENTITIES_BY_KEYS, "keys", wanted)
    for kind, value, id_, first_seen, last_seen in rows:
        # The times met so far are the stored ones: only a later event time widens them.
        seen[(kind, value)] = _Seen(id_, first_seen, last_seen, first_seen, last_seen)


def forget_identities(session: Session) -> None:
    """After a rollback to a savepoint: write the seen times met so far, then forget the identities.

    An identity created inside the rolled-back part is gone; its UPDATE finds no row and does nothing.
    """
    write_identity_times(session)
    session.info.pop(_SEEN_KEY, None)


def insert_event_identities(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert event -> identity links (event_id, identity_id, source, detail) in one statement."""
    if rows:
        session.connection().execute(_LINKS.insert(), rows)


def get_or_create_identity(session: Session, kind: IdentityKind | str, value: str,
                           seen_at: datetime | None = None) -> Identity:
    """``identity_id`` with its seen times written now, as an Identity object."""
    # No autoflush: these statements do not depend on the caller's pending objects.
    with session.no_autoflush:
        found = identity_id(session, kind, value, seen_at or utcnow())
        write_identity_times(session)
        return session.get_one(Identity, found, populate_existing=True)


def live_token_hashes(session: Session, hashes: Collection[str], now: datetime | None = None) -> set[str]:
    """Which of the token SHA-256s ``hashes`` belong to tokens not revoked (as of ``now``).

    One indexed query for many requests: the webhook's committer confirms its batch's tokens with
    it, in the transaction that stores their messages.
    """
    if not hashes:
        return set()
    moment = now or utcnow()
    rows = rows_in(session.connection(), _TOKENS_BY_HASH, "hashes", hashes)
    return {digest for digest, revoked in rows if revoked is None or revoked > moment}


def normalize_message_id(value: str) -> str:
    """A Message-ID as stored: the first ``<...>`` without the brackets, else the trimmed text."""
    return bare_message_id(value)


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
        dialect_insert(session, LedgerEntry)
        .values(message_id=key, account=account, script=script, customer=customer, client=client,
                sender=sender, recorded_at=recorded_at or utcnow())
        .on_conflict_do_nothing(index_elements=[LedgerEntry.message_id])
    )
    return _one(ledger_entry(session, key))


def imap_state(session: Session, mailbox: str) -> ImapState:
    """The collection state of the configured mailbox ``mailbox``, created empty (no UIDVALIDITY)."""
    session.execute(
        dialect_insert(session, ImapState)
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
