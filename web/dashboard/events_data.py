"""The queries of the Events, Quarantine and Message pages: plain functions of a Session.

The event search is the one of ``GET /v1/events`` (web.read_api: the same checks, sentences and
SELECT), given the dashboard's form values; the pages only render the dataclasses returned here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from storage import BounceEvent, ComplaintEvent, Event, EventIdentity, MessageStatus, RawMessage
from web.read_api import EventQuery, event_statement, parse_event_query
from web.render import message_json

__all__ = ["EVENTS_PER_PAGE", "MESSAGES_PER_PAGE", "RAW_SHOWN_BYTES", "EventFilters", "EventPage",
           "EventRow", "LinkedIdentity", "MessageView", "QuarantinePage", "QuarantinedMessage",
           "event_page", "event_query", "message_view", "quarantine_page", "raw_text"]

EVENTS_PER_PAGE = 50
MESSAGES_PER_PAGE = 100
# A report with a whole spam run attached can be megabytes: the page shows its start, the rest is
# a download away.
RAW_SHOWN_BYTES = 64 * 1024
_MAX_ID = 2**63 - 1
# C0 controls (but tab, LF, CR) and DEL -> their Unicode control pictures (U+2400 block).
_CONTROL_PICTURES = {code: 0x2400 + code for code in range(0x20) if chr(code) not in "\t\n\r"}
_CONTROL_PICTURES[0x7F] = 0x2421


@dataclass(frozen=True)
class EventFilters:
    """The search form as typed, to fill it in again (empty: no filter)."""

    kind: str = ""
    reason: str = ""
    identity: str = ""  # kind:value, as in GET /v1/events
    domain: str = ""  # the recipient's domain
    since: str = ""  # a day (YYYY-MM-DD) or an ISO 8601 time, inclusive
    until: str = ""  # a day, inclusive (the whole day), or an ISO 8601 time, exclusive
    text: str = ""  # a piece of a bounce's diagnostic, any case

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> EventFilters:
        """The filters of a query string (unknown parameters are ignored: it is a form)."""
        return cls(**{name: args.get(name, "").strip() for name in cls.__dataclass_fields__})

    def args(self) -> dict[str, str]:
        """The non-empty filters, for the links to the next pages."""
        return {name: value for name, value in vars(self).items() if value}


@dataclass(frozen=True)
class LinkedIdentity:
    """An identity an event is attributed to, and how it was found."""

    kind: str
    value: str
    source: str
    detail: str


@dataclass(frozen=True)
class EventRow:
    """One event as the list shows it."""

    id: int
    kind: str
    message_id: int
    occurred_at: str
    recipient: str
    recipient_domain: str
    reason: str
    status: str  # DSN status and reply code of a bounce, feedback type of a complaint
    detail: str  # the bounce's diagnostic, or the complaint's reporter and source IP
    identities: tuple[LinkedIdentity, ...]


@dataclass(frozen=True)
class EventPage:
    """One page of events, newest first, with the cursors of the pages around it."""

    rows: tuple[EventRow, ...]
    newer: int | None  # after_id of the newer page, None at the newest
    older: int | None  # before_id of the older page, None at the oldest


def event_query(filters: EventFilters, *, before_id: str = "", after_id: str = "",
                limit: str = "") -> EventQuery:
    """The checked query of ``filters``; ApiError with the API's sentence when a value is wrong.

    The cursors and ``limit`` (events per page, EVENTS_PER_PAGE when empty) are the query
    string's text, checked as the API checks them.
    """
    args = {"kind": filters.kind, "reason": filters.reason, "identity": filters.identity,
            "since": filters.since, "until": _day_after(filters.until), "before_id": before_id,
            "after_id": after_id, "limit": limit or str(EVENTS_PER_PAGE)}
    query = parse_event_query({name: [value] for name, value in args.items() if value})
    return replace(query, domain=filters.domain.lower() or None, text=filters.text or None)


def _day_after(until: str) -> str:
    """A day given as the end of a range includes that whole day: the search ends at the next midnight."""
    try:
        return (date.fromisoformat(until) + timedelta(days=1)).isoformat() if len(until) == 10 else until
    except (ValueError, OverflowError):  # not a day, or the last one there is
        return until  # parse_event_query says what is wrong with it


def event_page(session: Session, query: EventQuery) -> EventPage:
    """The page of events ``query`` asks for, newest first, whichever way it pages."""
    statement = event_statement(session, query)
    rows = [] if statement is None else list(session.scalars(statement).all())
    more = len(rows) > query.limit
    page = [_row(event) for event in rows[:query.limit]]
    if query.after_id is not None:  # the page above the cursor, read upwards from it
        page.reverse()
        older = page[-1].id if page else min(query.after_id + 1, _MAX_ID)
        return EventPage(tuple(page), page[0].id if more else None, older)
    older_id = page[-1].id if more else None
    if query.before_id is None:  # the newest page
        return EventPage(tuple(page), None, older_id)
    return EventPage(tuple(page), page[0].id if page else query.before_id - 1, older_id)

def _row(event: Event) -> EventRow:
    status, detail = "", ""
    if isinstance(event, BounceEvent):
        status = " ".join(part for part in (event.status, event.reply_code) if part)
        detail = event.diagnostic or ""
    elif isinstance(event, ComplaintEvent):
        status = event.feedback_type or ""
        detail = ", ".join(part for part in (event.reporter, event.source_ip) if part)
    links = sorted(event.links, key=lambda link: (link.identity.kind, link.identity.value))
    return EventRow(
        id=event.id, kind=event.kind, message_id=event.message_id,
        occurred_at=event.occurred_at.isoformat(), recipient=event.recipient,
        recipient_domain=event.recipient_domain, reason=event.reason, status=status, detail=detail,
        identities=tuple(LinkedIdentity(link.identity.kind, link.identity.value, link.source, link.detail)
                         for link in links))


@dataclass(frozen=True)
class QuarantinedMessage:
    """A quarantined message as the quarantine list shows it."""

    id: int
    source: str
    source_ref: str
    received_at: str
    kind: str
    size: int
    error: str  # the first line; the message page shows all of it (a traceback)


@dataclass(frozen=True)
class QuarantinePage:
    """One page of the quarantine, newest first, and how many messages it holds in all."""

    rows: tuple[QuarantinedMessage, ...]
    total: int
    older: int | None  # before_id of the next page, None on the last


def quarantine_page(session: Session, *, before_id: int | None = None,
                    limit: int = MESSAGES_PER_PAGE) -> QuarantinePage:
    """Quarantined messages, newest first, ``limit`` per page (index ``status, id``)."""
    quarantined = RawMessage.status == MessageStatus.QUARANTINED.value
    # Not the bytes: a page of large messages must not decompress (or even load) them.
    statement = (select(RawMessage.id, RawMessage.source, RawMessage.source_ref, RawMessage.received_at,
                        RawMessage.kind, RawMessage.size, RawMessage.error)
                 .where(quarantined).order_by(RawMessage.id.desc()).limit(limit + 1))
    if before_id is not None:
        statement = statement.where(RawMessage.id < before_id)
    rows = session.execute(statement).all()
    page = tuple(
        QuarantinedMessage(id=row.id, source=row.source, source_ref=row.source_ref or "",
                           received_at=row.received_at.isoformat(), kind=row.kind, size=row.size,
                           error=_first_line(row.error))
        for row in rows[:limit])
    total = session.scalar(select(func.count()).select_from(RawMessage).where(quarantined)) or 0
    return QuarantinePage(page, total, page[-1].id if len(rows) > limit else None)


def _first_line(error: str | None) -> str:
    """The line that says what went wrong: a traceback's last line, otherwise the first."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1] if lines[0].startswith("Traceback (most recent call last)") else lines[0]


@dataclass(frozen=True)
class MessageView:
    """Everything the message page shows: the read API's JSON of the message, and its text."""

    detail: dict[str, Any]  # web.render.message_json: metadata, parse, attribution, events
    text: str  # the start of the raw bytes as text (RAW_SHOWN_BYTES)
    cut: bool  # whether the text stops before the end of the message


def message_view(session: Session, message_id: int) -> MessageView | None:
    """The stored message ``message_id`` with its parse and events, or None if there is none."""
    message = session.get(RawMessage, message_id) if message_id <= _MAX_ID else None
    if message is None:
        return None
    events = session.scalars(
        select(Event).where(Event.message_id == message.id).order_by(Event.id)
        .options(selectinload(Event.links).selectinload(EventIdentity.identity))).all()
    text, cut = raw_text(message.raw)
    return MessageView(message_json(message, events), text, cut)


def raw_text(raw: bytes, limit: int = RAW_SHOWN_BYTES) -> tuple[str, bool]:
    """The first ``limit`` bytes of a message as text, and whether some were left out.

    Mail is 7-bit or UTF-8 when it follows the RFCs; other bytes (a legacy charset, binary junk,
    a UTF-8 sequence cut at the limit) become U+FFFD instead of failing the page. Control
    characters other than tab and line ends, which HTML does not allow, are shown as their
    Unicode control pictures (NUL as U+2400).
    """
    return raw[:limit].decode("utf-8", errors="replace").translate(_CONTROL_PICTURES), len(raw) > limit
