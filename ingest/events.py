"""From a classified message to stored rows: events, their identity links, the JSON summary.

Every text that goes into a column is cleaned first (NUL characters and unpaired surrogates
removed, cut to the column's size): PostgreSQL refuses NUL in text and over-long varchar values,
and a message must not be quarantined because a report quoted a binary diagnostic.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from ingest.classify import Classification
from rfc822 import find_addresses
from storage import (
    Event,
    EventKind,
    hash_recipient,
    normalize_message_id,
    recipient_domain,
    rows_in,
    utcnow,
)

__all__ = ["clean", "event_rows", "event_time", "insert_batch_events", "insert_events", "recipient_redactor",
           "reporter_of"]

# A report dated this far from its arrival is believed to have a wrong clock.
_CLOCK_SKEW = timedelta(days=366)
_EVENTS = cast(Table, Event.__table__)
_INSERT_EVENT = _EVENTS.insert().returning(_EVENTS.c.id)
_EVENT_IDS = (select(_EVENTS.c.id, _EVENTS.c.message_id)
              .where(_EVENTS.c.message_id.in_(bindparam("messages", expanding=True))).order_by(_EVENTS.c.id))
# Every column of an event row; those of the other kind stay NULL (single-table inheritance).
_EMPTY_ROW: dict[str, Any] = {column.name: None for column in _EVENTS.columns if column.name != "id"}


def clean(value: object, limit: int | None = None) -> str:
    """``value`` as text a database column accepts: no NUL, no lone surrogate, at most ``limit`` chars."""
    text = "" if value is None else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit] if limit is not None else text


def event_time(text: str, received_at: datetime) -> datetime:
    """The report's own date (RFC 5322 date-time) when it has a believable one, else ``received_at``."""
    if not text:
        return received_at
    try:
        parsed = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return received_at
    if parsed.tzinfo is None:  # "-0000" (RFC 5322 section 3.3): UTC, zone unknown
        parsed = parsed.replace(tzinfo=UTC)
    if abs(parsed - received_at) > _CLOCK_SKEW:
        return received_at
    return parsed.astimezone(UTC)


def _recipient(address: str, salt: bytes | None) -> tuple[str, bool, str]:
    """(stored recipient, hashed?, domain) of ``address``."""
    address = clean(address).strip()
    domain = clean(recipient_domain(address), 255)
    if salt is not None and address:
        return hash_recipient(address, salt), True, domain
    return clean(address, 320), False, domain


def event_rows(message_id: int, result: Classification, received_at: datetime,
               salt: bytes | None) -> list[dict[str, Any]]:
    """The ``events`` rows of a message: one per failed recipient, or per complained-about recipient.

    Every row has every column, so that they go to the database in one executemany. With ``salt``
    a complaint's recipients are stored as their HMAC (``storage.hash_recipient``).
    """
    original_id = clean(normalize_message_id(result.original.message_id), 998) if result.original else ""
    complaint = result.feedback if result.kind.value == "complaint" else None
    rows: list[dict[str, Any]] = []
    for record in result.records:
        # Only complainants are hidden: a bounced address is the sender's own data, and the
        # provider needs it in clear to clean its customers' lists.
        recipient, hashed, domain = _recipient(record.recipient, salt if complaint is not None else None)
        row = dict(_EMPTY_ROW, kind=EventKind.BOUNCE.value, message_id=message_id, recorded_at=utcnow(),
                   recipient=recipient, recipient_hashed=hashed, recipient_domain=domain,
                   reason=clean(record.reason, 32), original_message_id=original_id or None)
        if complaint is not None:
            row.update(kind=EventKind.COMPLAINT.value,
                       occurred_at=event_time(complaint.arrival_date or complaint.date, received_at),
                       feedback_type=clean(complaint.feedback_type, 32) or None,
                       source_ip=clean(complaint.source_ip, 45) or None,
                       reporter=clean(_reporter(result), 255) or None)
        else:
            row.update(occurred_at=event_time(record.date, received_at),
                       status=clean(record.status, 16) or None,
                       reply_code=clean(record.reply_code, 8) or None,
                       hard=record.hard_bounce,
                       diagnostic=clean(record.diagnostic) or None,
                       remote_mta=clean(record.remote_mta, 255) or None)
        rows.append(row)
    return rows


def insert_events(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``events``; their ids, in order.

    Core INSERTs rather than ORM objects: the pipeline never reads the events back, and the unit
    of work's bookkeeping cost more than the statements (benchmarks/ingest.py).
    """
    if not rows:
        return []
    connection = session.connection()
    if len(rows) == 1:
        return [connection.execute(_INSERT_EVENT, rows[0]).scalar_one()]
    statement = _EVENTS.insert().returning(_EVENTS.c.id, sort_by_parameter_order=True)
    return list(connection.execute(statement, rows).scalars())


def insert_batch_events(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (of messages stored in this transaction) in one executemany; their ids, in order.

    The ids are read back in id order per message: a transaction's own rows get increasing ids
    (SQLite's rowid, a PostgreSQL sequence), so that order is the order of ``rows``. Without
    RETURNING, which SQLAlchemy would run one row per statement on SQLite to keep the order.
    """
    if not rows:
        return []
    connection = session.connection()
    connection.execute(_EVENTS.insert(), rows)
    messages = {row["message_id"] for row in rows}
    ids: dict[int, list[int]] = {message: [] for message in messages}
    # In id order for each message: every message's events are in one of the chunks.
    for event_id, message_id in rows_in(connection, _EVENT_IDS, "messages", messages):
        ids[message_id].append(event_id)
    taken = {message: iter(found) for message, found in ids.items()}
    return [next(taken[row["message_id"]]) for row in rows]


def _reporter(result: Classification) -> str:
    """Who sent the complaint: the report's sender domain, else its User-Agent, else its reporting MTA."""
    report = result.feedback
    if report is None:
        return ""
    name = report.reporter or report.user_agent or report.reporting_mta
    return name.strip().lower()


def reporter_of(result: Classification) -> str:
    """The reporter name stored on complaint events and used in the complaint's dedup key."""
    return _reporter(result)


def recipient_redactor(result: Classification, salt: bytes) -> Callable[[str], str]:
    """A function that replaces, in any text, each recipient address of ``result`` by its hash.

    For ``hash_recipients``: the summary and the link details quote report fields and header lines
    that name the recipients (Original-Rcpt-To, To, "for <...>" in Received lines). The recipients
    are the records' and the report's, and the original's To, Cc, Delivered-To and X-Original-To.
    The raw message still holds them (it is needed to re-process the message).
    """
    addresses = {record.recipient for record in result.records}
    if result.feedback is not None:
        addresses.update(result.feedback.original_rcpt_to, result.feedback.removal_recipient)
    if result.original is not None:
        for name in ("To", "Cc", "Delivered-To", "X-Original-To"):
            for value in result.original.get_all(name):
                addresses.update(find_addresses(value))
    hashes = {address.strip().lower(): hash_recipient(address, salt)
              for address in addresses if address.strip()}
    if not hashes:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(address) for address in sorted(hashes, key=len, reverse=True)),
                         re.IGNORECASE)

    def redact(text: str) -> str:
        return pattern.sub(lambda found: f"[recipient {hashes[found.group(0).lower()]}]", text)

    return redact
