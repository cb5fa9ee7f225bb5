"""Retention of the delivery log (``notify:retention``, daily): old delivered and failed rows go.

A delivered row is kept [notify].keep_delivered_days (90 by default), a failed one
keep_failed_days (180): a failure is what an admin looks into, later than a success. Age is
counted from ``created_at`` (indexed; a row is delivered or failed within hours of it, the last
retry delay at most a day). Pending rows are never deleted: they are still to be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from config import NotifySettings
from storage.notify_models import Delivery, DeliveryStatus

__all__ = ["Pruned", "prune_deliveries"]


@dataclass(frozen=True)
class Pruned:
    """How many rows one run deleted."""

    delivered: int
    failed: int

    def line(self) -> str:
        """One line for the log."""
        return f"notify: deleted {self.delivered} delivered and {self.failed} failed deliveries from the log"


def _delete_older(session: Session, status: DeliveryStatus, before: datetime) -> int:
    result = session.execute(delete(Delivery).where(Delivery.status == status.value,
                                                    Delivery.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def prune_deliveries(session: Session, settings: NotifySettings, now: datetime) -> Pruned:
    """Delete the delivered and failed rows past their retention at ``now``; the caller commits."""
    return Pruned(
        delivered=_delete_older(session, DeliveryStatus.DELIVERED,
                                now - timedelta(days=settings.keep_delivered_days)),
        failed=_delete_older(session, DeliveryStatus.FAILED, now - timedelta(days=settings.keep_failed_days)))
