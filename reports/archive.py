"""Building and storing a week's report, and the weekly job the scheduler runs.

Reports are kept as files, ``<directory>/<week>.{html,csv,json}`` (var/reports/ by default), until
the report archive gets a table: there is no migration for it yet. A rebuild of the same week
overwrites the files (each is written to a temporary name and renamed, so a reader never sees half
a file).

The weekly job then mails the stored report (reports/mail.py) when [notify] has a relay and there
is someone to mail; a mailing that fails is retried by the ``reports:mail`` job and never touches
the stored files.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from reports.build import build_report, last_week, report_file
from reports.mail import ReportMailer
from reports.render import render_csv, render_html, render_json
from reputation import RuleSet

__all__ = ["DEFAULT_DIRECTORY", "WeeklyReports", "build_and_store"]

log = logging.getLogger(__name__)

DEFAULT_DIRECTORY = Path("var/reports")
_RENDERERS = {"html": render_html, "csv": render_csv, "json": render_json}


def build_and_store(sessions: sessionmaker[Session], week: str, directory: Path | str = DEFAULT_DIRECTORY,
                    rules: RuleSet | None = None) -> list[Path]:
    """Build the report of ``week`` and write it as HTML, CSV and JSON; returns the three paths."""
    with sessions() as session:
        report = build_report(session, week, rules)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for extension, render in _RENDERERS.items():
        path = report_file(folder, report.week, extension)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(render(report), encoding="utf-8")
        os.replace(temporary, path)
        paths.append(path)
    return paths


@dataclass(frozen=True)
class WeeklyReports:
    """The weekly report job: when it runs (UTC) and what it needs."""

    sessions: sessionmaker[Session]
    directory: Path = DEFAULT_DIRECTORY
    rules: RuleSet | None = None
    day_of_week: str = "mon"  # APScheduler CronTrigger's day_of_week
    hour: int = 6
    minute: int = 0
    mailer: ReportMailer | None = None  # None: stored, not mailed

    @classmethod
    def from_settings(cls, sessions: sessionmaker[Session], settings: Settings) -> WeeklyReports:
        """The job as [reports] configures it, comparing against the rules in force, mailing as
        [reports].mail_to (or [notify].admins) and [notify]'s relay say."""
        return cls(sessions, Path(settings.reports.directory), settings.reputation.rules,
                   day_of_week=settings.reports.weekday, hour=settings.reports.hour,
                   mailer=ReportMailer.from_settings(settings))

    def run(self, now: datetime | None = None) -> list[Path]:
        """Build and store last week's report (the week before the one ``now`` is in), then mail it.

        The files are written before any mail is tried; a failed mailing is logged and left to
        ``retry_mail`` (never raised).
        """
        now = now or datetime.now(UTC)
        week = last_week(now)
        paths = build_and_store(self.sessions, week, self.directory, self.rules)
        log.info("reports: stored the report of %s in %s", week, ", ".join(str(p) for p in paths))
        if self.mailer is not None:
            self.mailer.queue(self.directory, week, now)
            self.retry_mail(now)
        return paths

    def retry_mail(self, now: datetime | None = None) -> None:
        """Mail every stored report whose mailing is due (the ``reports:mail`` job)."""
        if self.mailer is not None:
            self.mailer.send_due(self.directory, now or datetime.now(UTC))
