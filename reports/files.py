"""The weekly reports as files: the optional export directory, and the import of an old archive.

The archive is the ``weekly_reports`` table (storage/report_models.py); files are only a copy
for whoever wants one. When [reports].directory is set, the weekly job also writes each report it
stores as ``<directory>/<week>.{html,csv,json}``, as versions before 0006 did (each written to a
temporary name and renamed: a reader never sees half a file). Those versions kept the archive
there (var/reports/ by default): ``import_files`` stores the complete weeks it finds in such a
directory that the database does not have yet (``python app.py report import-files``). Their
mailing state (``.mail/``) is not imported: a mailing pending at the upgrade is not resumed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from reports.build import parse_week, report_file
from reports.mail import ReportTexts
from storage.report_models import WeeklyReport

__all__ = ["OLD_DIRECTORY", "FileImport", "export_files", "import_files"]

# Where versions before 0006 kept the reports when [reports].directory was not set.
OLD_DIRECTORY = Path("var/reports")
EXTENSIONS = ("html", "csv", "json")  # ReportTexts' order
_STORED = re.compile(r"(\d{4}-W\d{2})\.(html|csv|json)")


def export_files(directory: Path, week: str, texts: ReportTexts) -> list[Path]:
    """Write ``texts`` as ``<directory>/<week>.{html,csv,json}``; returns the three paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for extension, text in zip(EXTENSIONS, texts, strict=True):
        path = report_file(directory, week, extension)
        temporary = path.with_name(f".{path.name}.tmp")
        # As bytes: write_text would turn the CSV's CRLF line ends (RFC 4180) into the platform's.
        temporary.write_bytes(text.encode("utf-8"))
        os.replace(temporary, path)
        paths.append(path)
    return paths


@dataclass
class FileImport:
    """What ``import_files`` did: the weeks it stored, and the others with the reason."""

    imported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (week, why), the sentence's end


def import_files(sessions: sessionmaker[Session], directory: Path) -> FileImport:
    """Store every week of ``directory`` that has its three files and no row yet, as built when its
    newest file was written; a week the database has is left as it is (it may be a newer build).

    Raises OSError when ``directory`` cannot be listed.
    """
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(directory.iterdir()):
        match = _STORED.fullmatch(path.name)
        if match is None or not path.is_file():
            continue  # temporary files of a build cut short, .mail/, anything else put there
        try:
            week = parse_week(match.group(1))
        except ValueError:
            continue
        found.setdefault(week, {})[match.group(2)] = path
    done = FileImport()
    with sessions() as session:
        for week, files in sorted(found.items()):
            missing = [extension.upper() for extension in EXTENSIONS if extension not in files]
            if missing:
                done.skipped.append((week, f"no {' or '.join(missing)} file"))
            elif session.get(WeeklyReport, week) is not None:
                done.skipped.append((week, "already in the database"))
            else:
                try:
                    # As bytes: read_text would turn the CSV's CRLF line ends into LF.
                    html, csv, json = (files[extension].read_bytes().decode("utf-8")
                                       for extension in EXTENSIONS)
                    newest = max(path.stat().st_mtime for path in files.values())
                except (OSError, UnicodeDecodeError) as error:
                    done.skipped.append((week, f"unreadable ({error})"))
                    continue
                session.add(WeeklyReport(week=week, html=html, csv=csv, json=json,
                                         built_at=datetime.fromtimestamp(newest, UTC)))
                done.imported.append(week)
        session.commit()
    return done
