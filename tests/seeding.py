"""Seeding the database directly with known numbers, for the report and dashboard tests.

Sends go in as the policy nodes' minute buckets; events as rows of the pipeline's own insert,
attributed to the given identities. Every number a test expects is then a count of what it put in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ingest.events import insert_events
from reputation import BucketDelta, Identity, IdentityKind
from storage.counters import apply_deltas
from storage.models import EventIdentity
from storage.queries import get_or_create_identity, store_raw_message

__all__ = ["add_events", "add_sends"]

_COLUMNS = ("kind", "message_id", "occurred_at", "recorded_at", "recipient", "recipient_hashed",
            "recipient_domain", "reason", "original_message_id", "status", "reply_code", "hard", "diagnostic",
            "remote_mta", "feedback_type", "source_ip", "reporter")


def add_sends(session: Session, who: tuple[str, str], at: datetime, count: int) -> None:
    """``count`` sends (one recipient each) by ``who`` (kind, value) in the minute bucket of ``at``."""
    kind, value = who
    apply_deltas(session, [BucketDelta(Identity(IdentityKind(kind), value), at.replace(second=0), 60,
                                       {"sends": count, "recipients": count})])


def add_events(session: Session, n: int, kind: str, reason: str, at: datetime, who: list[tuple[str, str]],
               hard: bool | None = None, diagnostic: str | None = None,
               step: timedelta = timedelta(0)) -> None:
    """``n`` events of ``kind`` (bounce, complaint) for ``reason``, to r<i>@gmail.com, attributed to
    ``who``; the i-th occurred at ``at + i * step``, all recorded at ``at``. One stored message holds them."""
    message, _ = store_raw_message(session, f"{kind} {reason} {at.isoformat()} {who}".encode(), "test",
                                   kind=kind, status="parsed")
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = dict.fromkeys(_COLUMNS)
        row.update(kind=kind, message_id=message.id, occurred_at=at + i * step, recorded_at=at,
                   recipient=f"r{i}@gmail.com", recipient_hashed=False, recipient_domain="gmail.com",
                   reason=reason, hard=hard, diagnostic=diagnostic)
        rows.append(row)
    identities = [get_or_create_identity(session, k, v, at) for k, v in who]
    for event_id in insert_events(session, rows):
        session.add_all(EventIdentity(event_id=event_id, identity_id=i.id, source="test") for i in identities)
