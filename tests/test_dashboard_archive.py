"""The reports archive (/reports): listing the stored weeks, serving each format, the admins' build.

Reports are built with the real ``reports.archive.build_and_store`` from a seeded week on both
backends and read back from ``weekly_reports``; the figures checked in the served CSV and JSON are
the seeded ones. Week names are the ISO 8601 week dates ``YYYY-Www``; anything else, path traversal
included, is refused. No file is written or read: the tests run in an empty working directory.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from reports.archive import build_and_store
from reports.build import last_week, week_bounds
from reputation import BucketDelta, Identity, IdentityKind
from storage.counters import apply_deltas
from storage.engine import session_factory
from storage.report_models import WeeklyReport
from tests import db
from tests.dashboard import Dash, dash
from tests.test_dashboard_rules import rows
from web.dashboard.archive import REPORT_POLICY
from web.dashboard.archive_data import FORMATS, split_name, stored_reports, stored_text, this_week

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session
__all__ = ["dash", "database_url", "db_engine", "db_session"]

SENDER = "alice@example.net"
SENDS = 1234


def seed_week(session: Session, week: str) -> None:
    """SENDS messages of one account on the Tuesday of ``week`` (counted as the policy nodes do)."""
    tuesday = week_bounds(week)[0] + timedelta(days=1, hours=9)
    apply_deltas(session, [BucketDelta(Identity(IdentityKind.ACCOUNT, SENDER), tuesday, 60,
                                       {"sends": SENDS, "recipients": SENDS})])
    session.commit()


def test_split_name() -> None:
    assert split_name("2026-W48", None) == ("2026-W48", "html")
    assert split_name("2026-W48.csv", None) == ("2026-W48", "csv")
    assert split_name("2026-W48", "json") == ("2026-W48", "json")
    assert split_name("2026-W48.json", "json") == ("2026-W48", "json")
    for name, wanted in (("../../etc/passwd", None), ("..", None), ("2026-W48.exe", None),
                         ("2026-W48", "exe"), ("2026-W48.csv", "json"), ("2025-W53", None),  # 2025 has 52
                         ("2026-W48/../x", None), ("2026-48", None), ("", None)):
        with pytest.raises(ValueError):
            split_name(name, wanted)


def test_this_week() -> None:
    # ISO 8601: 2026-01-01 is a Thursday, so it is in 2026-W01; 2027-01-01 (a Friday) is in 2026-W53.
    assert this_week(datetime(2026, 1, 1, 12, tzinfo=UTC)) == "2026-W01"
    assert this_week(datetime(2027, 1, 1, 12, tzinfo=UTC)) == "2026-W53"


def test_stored_reports_newest_first(db_engine: Engine, db_session: Session) -> None:
    assert stored_reports(db_session) == []
    built = datetime(2026, 11, 30, 6, tzinfo=UTC)
    for number, week in enumerate(("2026-W47", "2025-W52", "2026-W03")):
        seed_week(db_session, week)
        build_and_store(session_factory(db_engine), week, now=built + timedelta(minutes=number))
    found = stored_reports(db_session)
    assert [report.week for report in found] == ["2026-W47", "2026-W03", "2025-W52"]
    assert all(report.formats == ("html", "csv", "json") for report in found)
    assert found[0].start == datetime(2026, 11, 16, tzinfo=UTC)  # the Monday of 2026-W47
    assert [report.built_at for report in found] == [built, built + timedelta(minutes=2),
                                                     built + timedelta(minutes=1)]


def test_stored_text(db_engine: Engine, db_session: Session) -> None:
    seed_week(db_session, "2026-W47")
    build_and_store(session_factory(db_engine), "2026-W47")
    found = stored_text(db_session, "2026-W47", "json")
    assert found is not None and json.loads(found.text)["provider"]["week"]["sends"] == SENDS
    assert stored_text(db_session, "2026-W46", "json") is None  # no row: not stored
    with pytest.raises(ValueError):
        stored_text(db_session, "2026-W47", "exe")


def test_build_list_and_serve(dash: Dash, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # nothing may be written here
    week = last_week(datetime.now(UTC))
    with dash.session() as session:
        seed_week(session, week)
    admin = dash.login("admin")
    assert week not in rows(admin.get("/reports").get_data(as_text=True), "data-week")
    response = admin.post("/reports/build", data={"week": "last", "csrf_token": dash.csrf(admin, "/reports")})
    assert response.status_code == 303
    with dash.session() as session:
        assert session.get(WeeklyReport, week) is not None
    assert list(workdir.iterdir()) == []

    viewer = dash.login("viewer")
    listing = viewer.get("/reports").get_data(as_text=True)
    for extension in FORMATS:
        assert f'href="/reports/{week}.{extension}"' in rows(listing, "data-week")[week]
    assert "/reports/build" not in listing  # viewers see no build button

    page = viewer.get(f"/reports/{week}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"] == REPORT_POLICY
    assert "sandbox" in REPORT_POLICY and "script-src" not in REPORT_POLICY
    assert SENDER in page.get_data(as_text=True)

    download = viewer.get(f"/reports/{week}.csv")
    assert download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"] == f"attachment; filename=ricochet-report-{week}.csv"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    values = {tuple(row[:4]): row[4] for row in csv.reader(io.StringIO(download.get_data(as_text=True)))}
    assert values[("provider", "week", "", "sends")] == str(SENDS)

    data = viewer.get(f"/reports/{week}?format=json")
    assert data.mimetype == "application/json"
    assert data.headers["Content-Disposition"] == f"attachment; filename=ricochet-report-{week}.json"
    assert json.loads(data.get_data())["provider"]["week"]["sends"] == SENDS


def test_refused_names(dash: Dash, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    secret = tmp_path / "var" / "secret.json"
    secret.parent.mkdir(parents=True)
    secret.write_text('{"secret": true}')
    viewer = dash.login("viewer")
    for url in ("/reports/..%2Fsecret.json", "/reports/..%2F..%2Fvar%2Fsecret", "/reports/2026-W48.exe",
                "/reports/2026-W48?format=../../secret", "/reports/2025-W53", "/reports/2026-W48"):
        response = viewer.get(url)
        assert response.status_code in (400, 404), url
        assert b'"secret": true' not in response.get_data(), url


def test_only_admins_build(dash: Dash, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    viewer = dash.login("viewer")
    token = dash.csrf(viewer, "/reports")
    response = viewer.post("/reports/build", data={"week": "last", "csrf_token": token})
    assert response.status_code == 403
    with dash.session() as session:
        assert stored_reports(session) == []
    admin = dash.login("admin")
    token = dash.csrf(admin, "/reports")
    assert admin.post("/reports/build", data={"week": "last"}).status_code == 400  # no CSRF token
    assert admin.post("/reports/build", data={"week": "2026-W01", "csrf_token": token}).status_code == 400
    with dash.session() as session:
        assert stored_reports(session) == []
