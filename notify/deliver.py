"""The delivery job (``notify:deliver``): send what is queued in the delivery log, retry what failed.

Runs in the scheduler process, every [notify].deliver_seconds, apart from the evaluation job, which
only inserts rows (storage.reputation.record_decision -> storage.notify_models.enqueue_state_change).
At each run:

1. finds bounces recorded since its cursor that are attributed to an outbound ``ip`` identity and
   whose diagnostic names a blocklist (bounces/blocklists.py), and queues one ``blocklisted``
   notification per IP and blocklist per day;
2. fans each queued row without a target out to the configured targets: one row per webhook URL,
   one per admin address (none configured: the row is deleted, there is nobody to tell);
3. attempts every pending row that is due. A failure (connection refused, timeout, non-2xx, an
   SMTP error) is written to ``last_error``; the row is retried after the next delay of
   [notify].retry_seconds, and marked ``failed`` after the last one. Each attempt is logged.

Time comes in as ``now`` so that tests run the retries without sleeping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bounces.blocklists import blocklists_named
from config import NotifySettings
from notify.mail import mail_message, send_mail
from notify.retention import Pruned, prune_deliveries
from notify.webhook import DeliveryError, post_webhook, webhook_body
from storage.models import BounceEvent, EventIdentity, Identity
from storage.notify_models import (
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    NotifyEvent,
    enqueue,
    pending_deliveries,
)
from storage.types import utcnow

__all__ = ["DeliveryReport", "NotifyJobs", "attempt", "enqueue_blocklisted", "fan_out", "retry_at"]

log = logging.getLogger(__name__)

# The first run after a start looks this far back for blocklist bounces.
_LOOKBACK = timedelta(hours=1)
# One blocklisted notification per IP and blocklist in this period.
_QUIET = timedelta(hours=24)


@dataclass
class DeliveryReport:
    """What one run did."""

    queued: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the log."""
        return (f"notify: {self.queued} queued, {self.delivered} delivered, {self.retried} to retry, "
                f"{self.failed} failed")


def retry_at(settings: NotifySettings, attempts: int, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed attempts; None when they are exhausted."""
    if attempts >= settings.max_attempts:
        return None
    return now + timedelta(seconds=settings.retry_seconds[attempts - 1])


def fan_out(session: Session, settings: NotifySettings) -> int:
    """Give every queued row without a target one row per configured target; returns the rows added."""
    added = 0
    for row in session.scalars(select(Delivery).where(Delivery.target == "",
                                                      Delivery.status == DeliveryStatus.PENDING.value)):
        if row.channel == DeliveryChannel.WEBHOOK.value:
            targets = list(settings.webhook_urls)
        else:
            targets = list(settings.admins) if settings.smtp_host else []
        if not targets:
            session.delete(row)
            continue
        row.target = targets[0]
        for target in targets[1:]:
            session.add(Delivery(channel=row.channel, target=target, event=row.event, payload=row.payload,
                                 status=row.status, attempts=0, next_attempt_at=row.next_attempt_at,
                                 created_at=row.created_at))
        added += len(targets)
    session.flush()
    return added


def _send(settings: NotifySettings, row: Delivery, now: datetime) -> None:
    payload: dict[str, Any] = {"event": row.event, "delivery": row.id, **row.payload}
    if row.channel == DeliveryChannel.WEBHOOK.value:
        post_webhook(row.target, webhook_body(payload), settings.secret, int(now.timestamp()),
                     settings.timeout_seconds)
    else:
        send_mail(settings, mail_message(payload, settings.mail_from, row.target), [row.target])


def attempt(settings: NotifySettings, row: Delivery, now: datetime) -> bool:
    """Try ``row`` once and write the outcome on it; True when delivered. The caller commits."""
    row.attempts += 1
    try:
        _send(settings, row, now)
    except DeliveryError as error:
        row.last_error = str(error)
        again = retry_at(settings, row.attempts, now)
        if again is None:
            row.status = DeliveryStatus.FAILED.value
        else:
            row.next_attempt_at = again
        log.warning("notify: %s %d to %s, attempt %d of %d failed: %s%s", row.channel, row.id, row.target,
                    row.attempts, settings.max_attempts, error,
                    f"; next at {again.isoformat()}" if again else "; giving up")
        return False
    row.status, row.delivered_at = DeliveryStatus.DELIVERED.value, now
    log.info("notify: %s %d to %s delivered at attempt %d", row.channel, row.id, row.target, row.attempts)
    return True


def enqueue_blocklisted(session: Session, after_id: int, now: datetime) -> tuple[int, int]:
    """Queue the blocklistings named by bounces on ``ip`` identities with an id above ``after_id``.

    Returns (how many were queued, the highest event id read: the next cursor).
    """
    query = (select(BounceEvent, Identity.value).join(EventIdentity, EventIdentity.event_id == BounceEvent.id)
             .join(Identity, Identity.id == EventIdentity.identity_id)
             .where(BounceEvent.id > after_id, Identity.kind == "ip").order_by(BounceEvent.id))
    recent = session.scalars(select(Delivery.payload).where(
        Delivery.event == NotifyEvent.BLOCKLISTED.value, Delivery.created_at >= now - _QUIET))
    told = {(p.get("ip"), name) for p in recent for name in p.get("blocklists", [])}
    queued, cursor = 0, after_id
    for event, ip in session.execute(query):
        cursor = max(cursor, event.id)
        named = [name for name in blocklists_named(event.diagnostic) if (ip, name) not in told]
        if not named:
            continue
        told.update((ip, name) for name in named)
        enqueue(session, NotifyEvent.BLOCKLISTED, {
            "ip": ip, "identity": {"kind": "ip", "value": ip}, "blocklists": named, "event_id": event.id,
            "diagnostic": event.diagnostic or "", "status": event.status, "remote_mta": event.remote_mta,
            "recipient_domain": event.recipient_domain, "occurred_at": event.occurred_at.isoformat()}, now)
        queued += 1
    return queued, cursor


@dataclass
class NotifyJobs:
    """The scheduler's notification jobs (delivery, retention): settings, sessions, the blocklist cursor."""

    settings: NotifySettings
    sessions: sessionmaker[Session]
    cursor: int | None = None

    def _start_cursor(self, session: Session, now: datetime) -> int:
        query = select(func.max(BounceEvent.id)).where(BounceEvent.recorded_at < now - _LOOKBACK)
        last = session.scalar(query)
        return int(last or 0)

    def deliver(self, now: datetime | None = None) -> DeliveryReport:
        """One run: scan for blocklistings, fan out, attempt what is due; never raises on a delivery."""
        now = now or utcnow()
        report = DeliveryReport()
        with self.sessions() as session:
            if self.cursor is None:
                self.cursor = self._start_cursor(session, now)
            report.queued, self.cursor = enqueue_blocklisted(session, self.cursor, now)
            fan_out(session, self.settings)
            session.commit()
            for row in pending_deliveries(session, now):
                if attempt(self.settings, row, now):
                    report.delivered += 1
                elif row.status == DeliveryStatus.FAILED.value:
                    report.failed += 1
                    report.errors.append(row.last_error or "")
                else:
                    report.retried += 1
                session.commit()  # each attempt's outcome is kept even if a later one crashes
        if report.queued or report.delivered or report.retried or report.failed:
            log.info(report.line())
        return report

    def prune(self, now: datetime | None = None) -> Pruned:
        """The daily retention run (notify/retention.py): delete old delivered and failed rows."""
        with self.sessions() as session:
            pruned = prune_deliveries(session, self.settings, now or utcnow())
            session.commit()
        log.info(pruned.line())
        return pruned
