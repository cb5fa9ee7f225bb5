"""The delivery log of notifications (``notify_deliveries``, storage/notify_models.py) for /notifications.

Each row is one notification to one target, as the delivery job (notify/deliver.py) leaves it:
``pending`` (not sent yet, or to be retried at ``next_attempt_at``), ``delivered``, or ``failed``
(attempts exhausted). A pending row with an empty target has not been fanned out to the
configured targets yet.

A webhook URL may carry a credential (a token in its query string, a password in its user
information): the log shows the URL without them, so that a viewer does not learn it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.notify_models import Delivery, DeliveryChannel, DeliveryStatus, NotifyEvent

__all__ = ["PAGE_SIZE", "DeliveryLine", "DeliveryLog", "delivery_log", "shown_target", "summary"]

PAGE_SIZE = 100


@dataclass(frozen=True)
class DeliveryLine:
    """One delivery as the log shows it."""

    id: int
    event: str
    summary: str  # what happened, in a few words
    identity: tuple[str, str] | None  # (kind, value) the notification is about, for a link
    channel: str
    target: str  # shown_target(): without credentials; "" before the fan-out
    status: str
    attempts: int
    last_error: str
    next_attempt_at: datetime | None  # only while pending
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class DeliveryLog:
    """One page of the log: newest first, ``older`` the id to continue from (None at the end)."""

    lines: list[DeliveryLine]
    counts: dict[str, int]  # rows per status, whatever the filter
    status: str | None
    older: int | None


def shown_target(channel: str, target: str) -> str:
    """``target`` as the page shows it: a webhook URL without user information, query or fragment."""
    if channel != DeliveryChannel.WEBHOOK.value or not target:
        return target
    parts = urlsplit(target)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    query = "..." if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def summary(event: str, payload: Mapping[str, Any]) -> str:
    """A state change as 'account a@b: ok -> paused (rule)', a blocklisting as 'IP 192.0.2.1 on ...'."""
    if event == NotifyEvent.BLOCKLISTED.value:
        listed = ", ".join(str(name) for name in payload.get("blocklists", []))
        return f"outbound IP {payload.get('ip', '?')} on {listed or 'a blocklist'}"
    identity = payload.get("identity") or {}
    rule = payload.get("rule")
    text = (f"{identity.get('kind', '?')} {identity.get('value', '?')}: {payload.get('old_state', '?')} -> "
            f"{payload.get('new_state', '?')}")
    return f"{text} ({rule})" if rule else text


def _identity(payload: Mapping[str, Any]) -> tuple[str, str] | None:
    identity = payload.get("identity")
    if isinstance(identity, Mapping) and identity.get("kind") and identity.get("value"):
        return str(identity["kind"]), str(identity["value"])
    return None


def _line(row: Delivery) -> DeliveryLine:
    pending = row.status == DeliveryStatus.PENDING.value
    return DeliveryLine(id=row.id, event=row.event, summary=summary(row.event, row.payload),
                        identity=_identity(row.payload), channel=row.channel,
                        target=shown_target(row.channel, row.target), status=row.status,
                        attempts=row.attempts, last_error=row.last_error or "",
                        next_attempt_at=row.next_attempt_at if pending else None, created_at=row.created_at,
                        delivered_at=row.delivered_at)


def delivery_log(session: Session, status: DeliveryStatus | None = None, before: int | None = None,
                 limit: int = PAGE_SIZE) -> DeliveryLog:
    """The deliveries with ``status`` (all when None) and an id below ``before``, newest first."""
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit + 1)
    if status is not None:
        query = query.where(Delivery.status == status.value)
    if before is not None:
        query = query.where(Delivery.id < before)
    rows = list(session.scalars(query))
    counts = {state.value: 0 for state in DeliveryStatus}
    counts.update({str(state): int(count) for state, count in session.execute(
        select(Delivery.status, func.count()).group_by(Delivery.status))})
    shown = rows[:limit]
    return DeliveryLog(lines=[_line(row) for row in shown], counts=counts,
                       status=status.value if status else None,
                       older=shown[-1].id if len(rows) > limit else None)
