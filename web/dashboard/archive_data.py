"""The weekly reports archive: which reports are stored, and the text of one week in one format.

reports/archive.py stores each report as a row of ``weekly_reports`` (storage/report_models.py),
so every node's dashboard reads the same archive from the database. The listing reads the weeks and
their build times only, not the renderings. A week name from a URL is checked with
``reports.build.parse_week`` before it is looked up: only ``YYYY-Www`` of a real ISO week gets
through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from reports.build import parse_week, week_bounds
from storage.report_models import WeeklyReport

__all__ = ["FORMATS", "StoredReport", "StoredText", "split_name", "stored_reports", "stored_text",
           "this_week"]

# Each stored format and the media type it is served with (RFC 4180 for CSV, RFC 8259 for JSON).
FORMATS = {"html": "text/html", "csv": "text/csv", "json": "application/json"}
_COLUMNS = {"html": WeeklyReport.html, "csv": WeeklyReport.csv, "json": WeeklyReport.json}


@dataclass(frozen=True)
class StoredReport:
    """One week's stored report: its formats and when it was built."""

    week: str
    start: datetime  # the Monday 00:00 UTC the week begins
    formats: tuple[str, ...]  # in FORMATS order: a row holds all three
    built_at: datetime


@dataclass(frozen=True)
class StoredText:
    """One week's report in one format, as stored."""

    text: str
    built_at: datetime


def stored_reports(session: Session) -> list[StoredReport]:
    """The stored reports, newest week first ("YYYY-Www" sorts as the weeks do)."""
    query = select(WeeklyReport.week, WeeklyReport.built_at).order_by(WeeklyReport.week.desc())
    rows = session.execute(query)
    return [StoredReport(week=week, start=week_bounds(week)[0], formats=tuple(FORMATS), built_at=built_at)
            for week, built_at in rows]


def stored_text(session: Session, week: str, extension: str) -> StoredText | None:
    """The report of ``week`` (checked) in ``extension`` (one of FORMATS); None when it is not stored."""
    if extension not in FORMATS:
        raise ValueError(f"unknown report format {extension!r}; use one of {', '.join(FORMATS)}")
    row = session.execute(select(_COLUMNS[extension], WeeklyReport.built_at)
                          .where(WeeklyReport.week == parse_week(week))).first()
    return None if row is None else StoredText(text=row[0], built_at=row[1])


def split_name(name: str, requested: str | None) -> tuple[str, str]:
    """'2026-W48.csv' (or '2026-W48' with ``requested`` 'csv', default html) -> ('2026-W48', 'csv').

    Raises ValueError, with the sentence to show, for anything else: a name that is not an ISO week,
    an unknown format, or an extension and a different ``requested`` format.
    """
    week, dot, extension = name.partition(".")
    if dot and extension not in FORMATS:
        raise ValueError(f"unknown report format {extension!r}; use one of {', '.join(FORMATS)}")
    if requested is not None and requested not in FORMATS:
        raise ValueError(f"unknown report format {requested!r}; use one of {', '.join(FORMATS)}")
    if dot and requested is not None and requested != extension:
        raise ValueError(f"{name} and format={requested} disagree; give one of them")
    return parse_week(week), extension or requested or "html"


def this_week(now: datetime) -> str:
    """The ISO week ``now`` (UTC) is in; its report covers the days so far."""
    year, number, _ = now.astimezone(UTC).isocalendar()
    return f"{year}-W{number:02d}"
