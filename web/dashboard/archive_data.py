"""The weekly reports archive: which reports are stored, and the file of one week in one format.

reports/archive.py writes each report as ``<directory>/<week>.{html,csv,json}`` ([reports].directory,
var/reports/ by default, relative to the working directory as the scheduler's job sees it); there
is no table of reports, so the archive is the directory's listing. A week name from a URL is
checked with ``reports.build.parse_week`` before it comes near a path: only ``YYYY-Www`` of a real
ISO week gets through, so no ``..`` or ``/`` can.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reports.build import parse_week, report_file, week_bounds

__all__ = ["FORMATS", "StoredReport", "report_path", "split_name", "stored_reports", "this_week"]

# Each stored format and the media type it is served with (RFC 4180 for CSV, RFC 8259 for JSON).
FORMATS = {"html": "text/html", "csv": "text/csv", "json": "application/json"}
_STORED = re.compile(r"(\d{4}-W\d{2})\.(html|csv|json)")


@dataclass(frozen=True)
class StoredReport:
    """One week's stored report: the formats on disk and when it was last written."""

    week: str
    start: datetime  # the Monday 00:00 UTC the week begins
    formats: tuple[str, ...]  # in FORMATS order
    built_at: datetime  # the newest file's modification time (UTC)
    size: int  # bytes of the HTML file (0 without one)


def stored_reports(directory: Path) -> list[StoredReport]:
    """The reports in ``directory``, newest week first (a missing directory holds none)."""
    found: dict[str, dict[str, Path]] = {}
    try:
        names = [path for path in directory.iterdir() if path.is_file()]
    except FileNotFoundError:
        return []
    for path in names:
        match = _STORED.fullmatch(path.name)
        if match is None:
            continue  # temporary files of a build in progress, anything else put there
        try:
            week = parse_week(match.group(1))
        except ValueError:
            continue
        found.setdefault(week, {})[match.group(2)] = path
    reports = []
    for week, files in found.items():
        stats = {extension: path.stat() for extension, path in files.items()}
        newest = max(stat.st_mtime for stat in stats.values())
        html = stats.get("html")
        reports.append(StoredReport(week=week, start=week_bounds(week)[0],
                                    formats=tuple(name for name in FORMATS if name in files),
                                    built_at=datetime.fromtimestamp(newest, UTC),
                                    size=html.st_size if html else 0))
    reports.sort(key=lambda report: report.start, reverse=True)
    return reports


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


def report_path(directory: Path, week: str, extension: str) -> Path:
    """Where the report of ``week`` (checked) in ``extension`` (one of FORMATS) is stored."""
    if extension not in FORMATS:
        raise ValueError(f"unknown report format {extension!r}; use one of {', '.join(FORMATS)}")
    return report_file(directory, week, extension)


def this_week(now: datetime) -> str:
    """The ISO week ``now`` (UTC) is in; its report covers the days so far."""
    year, number, _ = now.astimezone(UTC).isocalendar()
    return f"{year}-W{number:02d}"
