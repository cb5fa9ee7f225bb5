"""What reputation reads of the stored events: new bounces and complaints, and evidence samples.

The evaluation job follows ``events`` by id (``signal_events``); with PostgreSQL an event with a
smaller id may commit after one with a larger id (ids are taken at insert, rows appear at commit),
so the job also re-reads what was recorded in a short slack period before its last run and skips
the ids it has counted already.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, or_, select
from sqlalchemy.orm import Session

from reputation import Identity, IdentityKind
from storage.models import Event, EventIdentity, EventKind, RawMessage
from storage.models import Identity as IdentityRow

__all__ = ["SignalEvent", "evidence_samples", "identity_events", "signal_events"]

_EVENTS = cast(Table, Event.__table__).c


@dataclass(frozen=True)
class SignalEvent:
    """A bounce or complaint and the identities it is attributed to."""

    id: int
    kind: str  # "bounce" or "complaint"
    reason: str
    hard: bool
    occurred_at: datetime
    recorded_at: datetime
    identities: tuple[Identity, ...]


def _events(session: Session, condition: Any, limit: int | None = None) -> list[SignalEvent]:
    query = (select(Event.id, Event.kind, Event.reason, _EVENTS.hard, Event.occurred_at,
                    Event.recorded_at, IdentityRow.kind, IdentityRow.value)
             .join(EventIdentity, EventIdentity.event_id == Event.id)
             .join(IdentityRow, IdentityRow.id == EventIdentity.identity_id)
             .where(condition).order_by(Event.id))
    grouped: dict[int, tuple[Any, list[Identity]]] = {}
    for row in session.execute(query):
        entry = grouped.setdefault(row[0], (row, []))
        entry[1].append(Identity(IdentityKind(row[6]), row[7]))
    events = [SignalEvent(id=row[0], kind=row[1], reason=row[2], hard=bool(row[3]), occurred_at=row[4],
                          recorded_at=row[5], identities=tuple(found)) for row, found in grouped.values()]
    return events[:limit] if limit is not None else events


def signal_events(session: Session, after_id: int, recorded_since: datetime | None = None,
                  occurred_since: datetime | None = None) -> list[SignalEvent]:
    """Attributed events with an id above ``after_id``, or recorded at or after ``recorded_since``.

    ``occurred_since`` (the first run after a start) restricts to events that happened since then;
    unattributed events are left out (nobody to count them against).
    """
    condition: Any = Event.id > after_id
    if recorded_since is not None:
        condition = or_(condition, Event.recorded_at >= recorded_since)
    if occurred_since is not None:
        condition = condition & (Event.occurred_at >= occurred_since)
    return _events(session, condition)


def identity_events(session: Session, identity: Identity, since: datetime | None = None,
                    limit: int | None = None) -> list[SignalEvent]:
    """The attributed events of ``identity`` (that happened at or after ``since``), oldest first."""
    ids = (select(EventIdentity.event_id).join(IdentityRow, IdentityRow.id == EventIdentity.identity_id)
           .where(IdentityRow.kind == identity.kind.value, IdentityRow.value == identity.value))
    condition: Any = Event.id.in_(ids)
    if since is not None:
        condition = condition & (Event.occurred_at >= since)
    return _events(session, condition, limit)


def evidence_samples(session: Session, identity: Identity, since: datetime,
                     samples: int = 3) -> dict[str, Any]:
    """Samples behind a decision, from the stored events of ``identity`` since ``since``.

    ``complaints`` / ``bounces``: up to ``samples`` recent events each (id, reason, recipient
    domain, the bounce's status and diagnostic); ``scripts``: the scripts the same events were
    attributed to, by count; ``subjects``: the originals' subjects (raw_messages.summary), by count;
    ``recipient_domains``: the events' recipient domains, by count.
    """
    linked = (select(EventIdentity.event_id).join(IdentityRow, IdentityRow.id == EventIdentity.identity_id)
              .where(IdentityRow.kind == identity.kind.value, IdentityRow.value == identity.value))
    mine = select(Event.id).where(Event.id.in_(linked), Event.occurred_at >= since).order_by(
        Event.id.desc()).limit(500).subquery()
    table = _EVENTS
    found: dict[str, Any] = {}
    for kind in (EventKind.COMPLAINT, EventKind.BOUNCE):
        rows = session.execute(
            select(table.id, table.reason, table.recipient_domain, table.status, table.diagnostic,
                   table.occurred_at).where(table.id.in_(select(mine.c.id)), table.kind == kind.value)
            .order_by(table.id.desc()).limit(samples))
        found[f"{kind.value}s"] = [{"event_id": r.id, "reason": r.reason,
                                    "recipient_domain": r.recipient_domain, "status": r.status,
                                    "diagnostic": (r.diagnostic or "")[:300],
                                    "occurred_at": r.occurred_at.isoformat()} for r in rows]
    scripts = session.execute(
        select(IdentityRow.value, func.count())
        .join(EventIdentity, EventIdentity.identity_id == IdentityRow.id)
        .where(EventIdentity.event_id.in_(select(mine.c.id)), IdentityRow.kind == IdentityKind.SCRIPT.value)
        .group_by(IdentityRow.value).order_by(func.count().desc(), IdentityRow.value).limit(5))
    found["scripts"] = [[value, count] for value, count in scripts]
    domains = session.execute(
        select(table.recipient_domain, func.count()).where(table.id.in_(select(mine.c.id)))
        .group_by(table.recipient_domain).order_by(func.count().desc(), table.recipient_domain).limit(5))
    found["recipient_domains"] = [[domain, count] for domain, count in domains if domain]
    found["subjects"] = _subjects(session, select(Event.message_id).where(Event.id.in_(select(mine.c.id))))
    return found


def _subjects(session: Session, message_ids: Any, top: int = 5) -> list[list[object]]:
    counts: dict[str, int] = {}
    query = select(RawMessage.summary).where(RawMessage.id.in_(message_ids)).limit(200)
    for summary in session.scalars(query):
        original = ((summary or {}).get("classification") or {}).get("original") or {}
        subject = original.get("subject") if isinstance(original, dict) else None
        if isinstance(subject, str) and subject:
            counts[subject[:200]] = counts.get(subject[:200], 0) + 1
    return [[subject, count] for subject, count in sorted(counts.items(), key=lambda i: (-i[1], i[0]))[:top]]

