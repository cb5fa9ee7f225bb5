"""Building and storing a week's report, and the weekly job the scheduler runs.

Reports are rows of ``weekly_reports`` (storage/report_models.py): the HTML, the CSV and the JSON
as rendered, and when. Every node reads them from the database, so the dashboard of any node lists
them and a scheduler that takes over after a fail-over (jobs/lock.py) has the archive. A rebuild of
the same week replaces its row in one statement (an upsert: a reader sees the old report or the new
one, never a mix).

The weekly job stores the report and, when [notify] has a relay and there is someone to mail, queues
its mailing in the same transaction (a crash cannot leave a report that is never mailed), then tries
to mail it (reports/mail.py); a mailing that fails is retried by the ``reports:mail`` job and never
touches the stored report. When [reports].directory is set, the job also writes the report there as
files (reports/files.py), a copy for whoever wants one: nothing reads them back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from reports.build import build_report, last_week
from reports.files import export_files
from reports.mail import ReportMailer, ReportTexts
from reputation import RuleSet
from storage.report_models import store_report

__all__ = ["WeeklyReports", "build_and_store", "build_texts", "store_texts"]

log = logging.getLogger(__name__)


def build_texts(sessions: sessionmaker[Session], week: str, rules: RuleSet | None = None) -> ReportTexts:
    """The report of ``week`` rendered as HTML, CSV and JSON (read in a session of its own)."""
    with sessions() as session:
        return ReportTexts.rendered(build_report(session, week, rules))


def store_texts(session: Session, week: str, texts: ReportTexts, built_at: datetime) -> None:
    """Store ``texts`` as the report of ``week``, replacing any before; the caller commits."""
    store_report(session, week, texts.html, texts.csv, texts.json, built_at)


def build_and_store(sessions: sessionmaker[Session], week: str, rules: RuleSet | None = None,
                    now: datetime | None = None) -> ReportTexts:
    """Build the report of ``week`` and store it (replacing the one stored before); returns it.

    The store is a transaction of its own that begins with its write, so ``sessions`` may be
    read-only-friendly ones (a deferred SQLite BEGIN): the long read never holds the write lock.
    """
    texts = build_texts(sessions, week, rules)
    with sessions() as session:
        store_texts(session, week, texts, now or datetime.now(UTC))
        session.commit()
    return texts


@dataclass(frozen=True)
class WeeklyReports:
    """The weekly report job: when it runs (UTC) and what it needs."""

    sessions: sessionmaker[Session]
    rules: RuleSet | None = None
    day_of_week: str = "mon"  # APScheduler CronTrigger's day_of_week
    hour: int = 6
    minute: int = 0
    mailer: ReportMailer | None = None  # None: stored, not mailed
    export_to: Path | None = None  # [reports].directory: also written there as files; None: not

    @classmethod
    def from_settings(cls, sessions: sessionmaker[Session], settings: Settings) -> WeeklyReports:
        """The job as [reports] configures it, comparing against the rules in force, mailing as
        [reports].mail_to (or [notify].admins) and [notify]'s relay say."""
        directory = settings.reports.directory
        return cls(sessions, settings.reputation.rules, day_of_week=settings.reports.weekday,
                   hour=settings.reports.hour, mailer=ReportMailer.from_settings(settings),
                   export_to=Path(directory) if directory else None)

    def run(self, now: datetime | None = None) -> str:
        """Build and store last week's report (the week before the one ``now`` is in), then mail it;
        returns the week.

        The report is stored, and its mailing queued, before any mail is tried; a failed mailing is
        logged and left to ``retry_mail`` (never raised).
        """
        now = now or datetime.now(UTC)
        week = last_week(now)
        texts = build_texts(self.sessions, week, self.rules)
        with self.sessions() as session:
            store_texts(session, week, texts, now)
            if self.mailer is not None:
                self.mailer.queue(session, week, now)
            session.commit()
        log.info("reports: stored the report of %s in the database", week)
        if self.export_to is not None:
            _export(self.export_to, week, texts)
        if self.mailer is not None:
            self.retry_mail(now)
        return week

    def retry_mail(self, now: datetime | None = None) -> None:
        """Mail every stored report whose mailing is due (the ``reports:mail`` job)."""
        if self.mailer is not None:
            self.mailer.send_due(self.sessions, now or datetime.now(UTC))


def _export(directory: Path, week: str, texts: ReportTexts) -> None:
    """The copy in [reports].directory; a failure is logged, never raised (the report is stored)."""
    try:
        paths = export_files(directory, week, texts)
    except OSError as error:
        log.error("reports: cannot write the report of %s to %s (%s); it is stored in the database all the "
                  "same: fix [reports].directory, or set it to \"\" for no files", week, directory, error)
        return
    log.info("reports: wrote the report of %s to %s", week, ", ".join(str(path) for path in paths))
