"""The stored weekly reports and the state of their mailing (migration 0006 creates both tables).

- ``weekly_reports`` (WeeklyReport): one row per ISO week: the report's three renderings as built
  (HTML, CSV, JSON) and when. They are in the database, not in files on the node that ran the
  scheduler, so that every node's dashboard shows the same archive and a scheduler that takes over
  (jobs/lock.py) has it too. Storing the renderings, not the figures, keeps "what is mailed is what
  the archive holds". A rebuild of a week replaces its row in place (``store_report``, an upsert),
  so the mailing that refers to it stays.
- ``report_mailings`` (ReportMailing): where the mailing of a week's report stands: who still has
  to get it (``pending``), who did (``delivered``), attempts, the last error and when to try next.
  ``status`` and ``next_attempt_at`` are columns (indexed together) so that the ``reports:mail``
  job finds what is due with one query; the two lists are JSON, read only with their row. The row
  goes with its report (ON DELETE CASCADE). reports/mail.py claims an attempt in a transaction
  before it sends (docs/reports.md, "Mailing").
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.engine import dialect_insert
from storage.models import Base
from storage.types import UTCDateTime, utcnow

__all__ = ["MailingStatus", "ReportMailing", "WeeklyReport", "due_mailings", "queue_mailing", "store_report"]

WEEK_LENGTH = 8  # "2026-W48": reports.build.parse_week's canonical form


class MailingStatus(StrEnum):
    """Where the mailing of one week's report stands."""

    PENDING = "pending"  # someone has still to get it, at next_attempt_at
    DELIVERED = "delivered"  # everyone got it
    FAILED = "failed"  # given up after [notify].retry_seconds' delays: last_error says why


class WeeklyReport(Base):
    """One ISO week's report, as the weekly job (or an admin's build) made it."""

    __tablename__ = "weekly_reports"

    week: Mapped[str] = mapped_column(String(WEEK_LENGTH), primary_key=True)
    html: Mapped[str] = mapped_column(Text)
    # With its CRLF line ends (RFC 4180), as rendered.
    csv: Mapped[str] = mapped_column(Text)
    json: Mapped[str] = mapped_column(Text)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReportMailing(Base):
    """The mailing of one week's report to the admins, and its retries."""

    __tablename__ = "report_mailings"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(status.value) for status in MailingStatus)})",
                        name="status"),
        # The reports:mail job asks for the pending rows that are due.
        Index(None, "status", "next_attempt_at"),
    )

    week: Mapped[str] = mapped_column(String(WEEK_LENGTH),
                                      ForeignKey("weekly_reports.week", ondelete="CASCADE"), primary_key=True)
    pending: Mapped[list[str]] = mapped_column(JSON)
    delivered: Mapped[list[str]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=MailingStatus.PENDING.value)
    # None once delivered or failed.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def store_report(session: Session, week: str, html: str, csv: str, json: str, built_at: datetime) -> None:
    """Store ``week``'s report, replacing the one stored before (one statement); the caller commits."""
    values = {"html": html, "csv": csv, "json": json, "built_at": built_at}
    statement = dialect_insert(session, WeeklyReport).values(week=week, **values)
    session.execute(statement.on_conflict_do_update(index_elements=["week"], set_=values))


def queue_mailing(session: Session, week: str, recipients: list[str], now: datetime) -> None:
    """Owe ``week``'s (stored) report to ``recipients`` from ``now`` on, whatever its mailing was
    before (a rebuild by the weekly job mails it again); the caller commits."""
    values: dict[str, Any] = {"pending": list(recipients), "delivered": [], "attempts": 0,
                              "status": MailingStatus.PENDING.value, "next_attempt_at": now,
                              "last_error": None, "queued_at": now}
    statement = dialect_insert(session, ReportMailing).values(week=week, **values)
    session.execute(statement.on_conflict_do_update(index_elements=["week"], set_=values))


def due_mailings(session: Session, now: datetime) -> list[ReportMailing]:
    """The pending mailings whose next attempt has come at ``now``, oldest week first."""
    query = select(ReportMailing).where(ReportMailing.status == MailingStatus.PENDING.value,
                                        ReportMailing.next_attempt_at <= now).order_by(ReportMailing.week)
    return list(session.scalars(query))
