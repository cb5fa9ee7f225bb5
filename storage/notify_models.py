"""The stored side of notifications: the delivery log (migration 0003 creates it).

- ``notify_deliveries`` (Delivery): one row per notification and target: a signed webhook to one
  URL or an e-mail to one address. ``storage.reputation.record_decision`` enqueues rows with an
  empty ``target`` (one per channel) in the same transaction as the state change; the delivery
  job (notify/deliver.py) gives each one row per configured target, sends them and writes every
  attempt's outcome here: ``status``, ``attempts``, ``next_attempt_at`` and ``last_error``.

The evaluation job only inserts rows; it never waits on a receiver (notify/deliver.py runs in its
own scheduler job).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.models import Base
from storage.types import BigId, UTCDateTime, utcnow

__all__ = [
    "COOLING_STATES",
    "Delivery",
    "DeliveryChannel",
    "DeliveryStatus",
    "NotifyEvent",
    "enqueue",
    "enqueue_state_change",
    "pending_deliveries",
]

# A change to or from one of these states is told (issue 5, section 2).
COOLING_STATES = frozenset({"paused", "held", "blocked"})


class DeliveryChannel(StrEnum):
    """How a notification goes out."""

    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"  # not sent yet, or to be retried at next_attempt_at
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up: attempts exhausted, or nowhere to send it


class NotifyEvent(StrEnum):
    """What happened."""

    STATE_CHANGE = "state_change"
    BLOCKLISTED = "blocklisted"


def _one_of(column: str, values: type[StrEnum]) -> CheckConstraint:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


class Delivery(Base):
    """One notification to one target (or, with an empty target, to every configured one)."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        _one_of("channel", DeliveryChannel),
        _one_of("status", DeliveryStatus),
        _one_of("event", NotifyEvent),
        # The delivery job asks for the pending rows that are due.
        Index(None, "status", "next_attempt_at"),
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    # A webhook URL or an e-mail address; "" until the delivery job fans the row out.
    target: Mapped[str] = mapped_column(String(2000), default="")
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def enqueue(session: Session, event: NotifyEvent, payload: dict[str, Any], now: datetime) -> list[Delivery]:
    """Queue ``payload`` on every channel (targets are resolved by the delivery job); the caller commits."""
    rows = [Delivery(channel=channel.value, target="", event=event.value, payload=payload,
                     status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now, created_at=now)
            for channel in DeliveryChannel]
    session.add_all(rows)
    return rows


def enqueue_state_change(session: Session, old_state: str | None, payload: dict[str, Any],
                         now: datetime) -> list[Delivery]:
    """Queue a state change when it goes to or comes from paused, held or blocked; else nothing."""
    new_state = payload.get("new_state")
    old = old_state or "ok"
    if old == new_state or not ({old, new_state} & COOLING_STATES):
        return []
    return enqueue(session, NotifyEvent.STATE_CHANGE, {**payload, "old_state": old}, now)


def pending_deliveries(session: Session, now: datetime, limit: int = 100) -> list[Delivery]:
    """The pending rows due at ``now``, oldest first."""
    query = select(Delivery).where(Delivery.status == DeliveryStatus.PENDING.value,
                                   Delivery.next_attempt_at <= now).order_by(Delivery.id).limit(limit)
    return list(session.scalars(query))
