"""Link events to the identities attribution found, and keep the identities' first/last seen times.

An import or a busy webhook meets the same few accounts, domains and IPs again and again, so each
identity is read (or created) once per transaction, and its seen times are widened once, just
before the commit, instead of with an UPDATE per event. The rules are those of
``storage.get_or_create_identity`` (``INSERT ... ON CONFLICT DO NOTHING`` then read the row that
won; guarded UPDATEs that never narrow the times), with statements built once and run on the
session's connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy.event
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

import attribution
from ingest.events import clean
from storage import EventIdentity, Identity

__all__ = ["forget_identities", "link_identities"]

# Longest identity value stored (storage.queries.IDENTITY_VALUE_MAX, the column's size).
_VALUE_MAX = 1000
_CACHE_KEY = "ricochet.ingest.identities"
_LISTENING = "ricochet.ingest.identities.listening"
_TABLE = cast(Table, Identity.__table__)
_LINKS = cast(Table, EventIdentity.__table__)
_BY_KEY = (select(_TABLE.c.id, _TABLE.c.first_seen, _TABLE.c.last_seen)
           .where(_TABLE.c.kind == bindparam("kind"), _TABLE.c.value == bindparam("value")))
_LATER = (update(_TABLE).where(_TABLE.c.id == bindparam("identity"), _TABLE.c.last_seen < bindparam("seen"))
          .values(last_seen=bindparam("seen")))
_EARLIER = (update(_TABLE)
            .where(_TABLE.c.id == bindparam("identity"), _TABLE.c.first_seen > bindparam("seen"))
            .values(first_seen=bindparam("seen")))


def _insert(dialect: Any) -> Any:
    return (dialect.insert(_TABLE)
            .values(kind=bindparam("kind"), value=bindparam("value"), first_seen=bindparam("seen"),
                    last_seen=bindparam("seen"))
            .on_conflict_do_nothing(index_elements=[_TABLE.c.kind, _TABLE.c.value]))


_INSERTS = {"sqlite": _insert(sqlite), "postgresql": _insert(postgresql)}


@dataclass
class _Seen:
    """An identity met in this transaction: its stored times, and the event times met since."""

    id: int
    first_seen: datetime
    last_seen: datetime
    low: datetime
    high: datetime


def link_identities(session: Session, event_ids: Sequence[int], found: attribution.AttributionResult,
                    seen_at: datetime, redact: Callable[[str], str] = str) -> int:
    """Link every event to the best identity of each kind ``found`` names, with how it was found.

    Only the best answer per kind is linked, so that an event counts once against each kind;
    the other answers stay in the message's summary for explanations. ``redact`` is applied to the
    details (``ingest.events.recipient_redactor``). Returns the links written.
    """
    if not event_ids:
        return 0
    seen = _seen_identities(session)
    links: list[tuple[int, attribution.Attribution]] = []
    for kind in attribution.IdentityKind:
        best = found.best(kind)
        value = clean(best.value).strip()[:_VALUE_MAX] if best is not None else ""
        if best is None or not value:
            continue
        entry = seen.get((kind.value, value))
        if entry is None:
            entry = _read_or_create(session.connection(), kind.value, value, seen_at)
            seen[(kind.value, value)] = entry
        entry.low, entry.high = min(entry.low, seen_at), max(entry.high, seen_at)
        links.append((entry.id, best))
    rows = [{"event_id": event_id, "identity_id": identity_id, "source": clean(best.source.value, 64),
             "detail": redact(clean(best.detail))} for event_id in event_ids for identity_id, best in links]
    if rows:
        session.connection().execute(_LINKS.insert(), rows)
    return len(rows)


def _read_or_create(connection: Connection, kind: str, value: str, seen_at: datetime) -> _Seen:
    key = {"kind": kind, "value": value}
    row = connection.execute(_BY_KEY, key).first()
    if row is None:
        statement = _INSERTS.get(connection.dialect.name)
        if statement is None:
            raise ValueError(f"unsupported database backend {connection.dialect.name!r}")
        connection.execute(statement, {**key, "seen": seen_at})
        # Ours, or the one a concurrent writer committed first (PostgreSQL waited for it).
        row = connection.execute(_BY_KEY, key).one()
    return _Seen(row.id, row.first_seen, row.last_seen, seen_at, seen_at)


def _seen_identities(session: Session) -> dict[tuple[str, str], _Seen]:
    """The identities met in the session's current transaction; a new transaction starts afresh."""
    transaction = session.get_transaction()
    cached = session.info.get(_CACHE_KEY)
    if cached is None or cached[0] is not transaction:
        if not session.info.get(_LISTENING):
            sqlalchemy.event.listen(session, "before_commit", _write_seen)
            session.info[_LISTENING] = True
        cached = (transaction, {})
        session.info[_CACHE_KEY] = cached
    identities: dict[tuple[str, str], _Seen] = cached[1]
    return identities


def _write_seen(session: Session) -> None:
    """Widen the stored first/last seen times to the event times met (never narrows them)."""
    cached = session.info.get(_CACHE_KEY)
    if cached is None or cached[0] is not session.get_transaction():
        return
    connection = session.connection()
    for entry in cached[1].values():
        if entry.high > entry.last_seen:
            connection.execute(_LATER, {"identity": entry.id, "seen": entry.high})
            entry.last_seen = entry.high
        if entry.low < entry.first_seen:
            connection.execute(_EARLIER, {"identity": entry.id, "seen": entry.low})
            entry.first_seen = entry.low


def forget_identities(session: Session) -> None:
    """After a rollback to a savepoint: write the seen times met so far, then forget the identities.

    An identity created inside the rolled-back part is gone; its UPDATE finds no row and does nothing.
    """
    _write_seen(session)
    session.info.pop(_CACHE_KEY, None)
