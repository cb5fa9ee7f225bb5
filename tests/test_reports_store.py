"""The weekly reports and their mailing state in the database, shared by every node (migration 0006).

What is checked comes from docs/reports.md ("Storage", "Mailing", "Upgrading"): the weekly job of
the scheduler node stores the report and another node's dashboard (its own create_app and engine,
another working directory) lists and serves it; a rebuild replaces the week's row; the mailing
state survives a fail-over, so a new scheduler mails only the recipients left, once; an attempt is
claimed before it is sent, so a second run (at once, or after a fail-over) does not mail it again;
the files of older versions are imported; a week without a row is a 404, and its mailing goes with it.
The week is tests/test_reports.py's seed (2026-W48), mailed through a real aiosmtpd relay on loopback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

import reports.mail
from app import cli
from reports import ReportTexts, WeeklyReports, build_and_store, export_files
from storage import make_engine, session_factory
from storage.report_models import ReportMailing, WeeklyReport
from tests.dashboard import Dash, dash, database_url, db_engine, db_session
from tests.seeding import add_sends
from tests.test_notify_mail import Collector, free_port
from tests.test_reports import A1, WEEK, seed
from tests.test_reports_mail import ADMINS, MONDAY_RUN, Refusing, _mailer, _start, mailing, relay, stored

__all__ = ["dash", "database_url", "db_engine", "db_session", "relay"]  # the fixtures

TUESDAY = datetime(2026, 11, 24, 10, tzinfo=UTC)  # in WEEK


@pytest.fixture
def other_node(database_url: str) -> Iterator[Engine]:
    """An engine of its own on the same database: another node, or the scheduler that takes over."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_the_weekly_job_of_one_node_is_listed_and_shown_by_another(
        dash: Dash, db_session: Session, other_node: Engine, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    seed(db_session)
    workdir = tmp_path / "scheduler-node"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    assert WeeklyReports(session_factory(other_node)).run(now=MONDAY_RUN) == WEEK
    assert list(workdir.iterdir()) == []  # [reports].directory unset: no file anywhere
    monkeypatch.chdir(tmp_path)  # the dashboard node: its own app, engine and directory
    viewer = dash.login("viewer")
    listing = viewer.get("/reports").get_data(as_text=True)
    assert f'data-week="{WEEK}"' in listing and f'href="/reports/{WEEK}.json"' in listing
    page = viewer.get(f"/reports/{WEEK}")
    assert page.status_code == 200 and "alice@one.example" in page.get_data(as_text=True)
    data = json.loads(viewer.get(f"/reports/{WEEK}.json").get_data())
    # The seed: 1200 sends, 8 complaints, 34 hard bounces in the week.
    assert (data["provider"]["week"]["sends"], data["provider"]["week"]["complaints"]) == (1200, 8)
    assert viewer.get(f"/reports/{WEEK}.csv").get_data() == stored(other_node).csv.encode("utf-8")


def test_a_rebuild_replaces_the_row_and_keeps_its_mailing(db_engine: Engine, db_session: Session) -> None:
    seed(db_session)
    job = WeeklyReports(session_factory(db_engine), mailer=_mailer(free_port()))  # nothing listens
    job.run(now=MONDAY_RUN)
    assert json.loads(stored(db_engine).json)["provider"]["week"]["sends"] == 1200
    add_sends(db_session, A1, TUESDAY, 300)  # late counts of the account: 1500 in all
    db_session.commit()
    later = MONDAY_RUN + timedelta(hours=2)
    build_and_store(session_factory(db_engine), WEEK, now=later)  # an admin's build, from the dashboard
    row = stored(db_engine)
    assert (json.loads(row.json)["provider"]["week"]["sends"], row.built_at) == (1500, later)
    with session_factory(db_engine)() as session:
        assert session.query(WeeklyReport).count() == 1
    state = mailing(db_engine)  # still owed, with its attempt
    assert (state.status, state.attempts, sorted(state.pending)) == ("pending", 1, sorted(ADMINS))


def test_a_new_scheduler_mails_only_the_recipients_left(db_engine: Engine, db_session: Session,
                                                         other_node: Engine) -> None:
    seed(db_session)
    refusing = Refusing(ADMINS[1])
    controller = _start(refusing, free_port())
    try:
        WeeklyReports(session_factory(db_engine), mailer=_mailer(controller.port)).run(now=MONDAY_RUN)
    finally:
        controller.stop()
    assert [rcpts for _, rcpts, _ in refusing.received] == [[ADMINS[0]]]
    # The first scheduler is gone; another node takes over with its own engine, mailer and relay.
    handler = Collector()
    controller = _start(handler, free_port())
    try:
        taker = WeeklyReports(session_factory(other_node), mailer=_mailer(controller.port))
        taker.retry_mail(now=MONDAY_RUN + timedelta(seconds=59))  # [notify].retry_seconds' first: 60
        assert handler.received == []
        taker.retry_mail(now=MONDAY_RUN + timedelta(seconds=60))
        taker.retry_mail(now=MONDAY_RUN + timedelta(hours=1))  # once delivered, never again
    finally:
        controller.stop()
    assert [rcpts for _, rcpts, _ in handler.received] == [[ADMINS[1]]]
    state = mailing(db_engine)
    assert (state.status, state.delivered, state.pending, state.attempts) == (
        "delivered", list(ADMINS), [], 2)


class Crash(BaseException):
    """The scheduler process dying (nothing in the mailer catches a BaseException)."""


def test_a_scheduler_that_dies_while_mailing_leaves_the_rest_claimed(
        db_engine: Engine, db_session: Session, other_node: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(db_session)
    handler = Collector()
    controller = _start(handler, free_port())
    real_send = reports.mail.send_mail

    def first_then_die(*args: Any) -> None:
        if handler.received:
            raise Crash
        real_send(*args)

    monkeypatch.setattr(reports.mail, "send_mail", first_then_die)
    try:
        with pytest.raises(Crash):
            WeeklyReports(session_factory(db_engine), mailer=_mailer(controller.port)).run(now=MONDAY_RUN)
        monkeypatch.setattr(reports.mail, "send_mail", real_send)
        state = mailing(db_engine)
        # Written when the attempt was claimed: held for [notify].timeout_seconds (5) x 10 SMTP steps x
        # 2 recipients, longer than the first retry delay (60 s); the recipient mailed was written at once.
        held = MONDAY_RUN + timedelta(seconds=5 * 10 * 2)
        assert (state.status, state.attempts, state.next_attempt_at) == ("pending", 1, held)
        assert (state.delivered, state.pending) == ([ADMINS[0]], [ADMINS[1]])
        assert state.last_error is not None and "attempt 1 did not finish" in state.last_error
        taker = WeeklyReports(session_factory(other_node), mailer=_mailer(controller.port))
        taker.retry_mail(now=MONDAY_RUN + timedelta(seconds=60))  # still held by the attempt that died
        assert len(handler.received) == 1
        taker.retry_mail(now=held)
    finally:
        controller.stop()
    assert [rcpts for _, rcpts, _ in handler.received] == [[ADMINS[0]], [ADMINS[1]]]
    assert (mailing(db_engine).status, mailing(db_engine).last_error) == ("delivered", None)


class Meddling(Collector):
    """A relay that, while it takes the first message, lets ``during`` run (another scheduler's retry)."""

    def __init__(self, during: Callable[[], None]) -> None:
        super().__init__()
        self.during: Callable[[], None] | None = during

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        during, self.during = self.during, None
        if during is not None:
            during()
        return await super().handle_DATA(server, session, envelope)


def test_a_retry_that_runs_while_another_mails_sends_nothing(db_engine: Engine, db_session: Session,
                                                             other_node: Engine) -> None:
    seed(db_session)
    found: list[list[str]] = []
    second = _mailer(free_port())  # it must not get as far as a relay

    def retry_meanwhile() -> None:
        for late in (0, 60, 99):  # at once, after the first retry delay, just before the claim ends
            found.append(second.send_due(session_factory(other_node), MONDAY_RUN + timedelta(seconds=late)))

    handler = Meddling(retry_meanwhile)
    controller = _start(handler, free_port())
    try:
        job = WeeklyReports(session_factory(db_engine), mailer=_mailer(controller.port))
        job.run(now=MONDAY_RUN)
        job.retry_mail(now=MONDAY_RUN + timedelta(days=1))  # the minute job, later: nothing is due
    finally:
        controller.stop()
    assert found == [[], [], []]
    assert sorted(rcpts[0] for _, rcpts, _ in handler.received) == sorted(ADMINS)  # each once
    assert mailing(db_engine).status == "delivered"


def test_a_week_without_a_row(dash: Dash, db_session: Session, db_engine: Engine) -> None:
    viewer = dash.login("viewer")
    page = viewer.get("/reports/2026-W40.csv")
    assert page.status_code == 404
    assert "There is no stored CSV report of 2026-W40" in page.get_data(as_text=True)
    assert ReportTexts.stored(db_session, "2026-W40") is None
    seed(db_session)
    job = WeeklyReports(session_factory(db_engine), mailer=_mailer(free_port()))
    job.run(now=MONDAY_RUN)  # stored, its mailing failed once
    with session_factory(db_engine)() as session:
        session.execute(delete(WeeklyReport).where(WeeklyReport.week == WEEK))
        session.commit()
        assert session.get(ReportMailing, WEEK) is None  # the mailing went with it
    job.retry_mail(now=MONDAY_RUN + timedelta(days=1))  # nothing left to mail, nothing raised
    assert viewer.get(f"/reports/{WEEK}").status_code == 404


def test_import_files_of_an_old_archive(database_url: str, db_engine: Engine, db_session: Session,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = tmp_path / "var" / "reports"
    w47 = ReportTexts("<p>2026-W47</p>", "section,period\r\nprovider,week\r\n", '{"week": "2026-W47"}')
    export_files(old, "2026-W47", w47)  # the names and bytes versions before 0006 wrote
    for extension, written in (("html", 1_794_999_990), ("csv", 1_794_999_995), ("json", 1_795_000_000)):
        os.utime(old / f"2026-W47.{extension}", (written, written))  # the newest: when it was built
    export_files(old, "2026-W46", ReportTexts("<p>old W46</p>", "a\r\n", "{}"))
    export_files(old, "2026-W45", ReportTexts("<p>W45</p>", "a\r\n", "{}"))
    (old / "2026-W45.csv").unlink()
    (old / ".2026-W48.html.tmp").write_text("a build cut short")
    (old / ".mail").mkdir()
    (old / ".mail" / "2026-W47.json").write_text('{"status": "pending"}')
    with session_factory(db_engine)() as session:  # a week the database has: a newer build
        session.add(WeeklyReport(week="2026-W46", html="<p>new W46</p>", csv="", json="{}",
                                 built_at=MONDAY_RUN))
        session.commit()
    monkeypatch.chdir(tmp_path)  # var/reports, the old default, is the default directory
    env = {"RICOCHET_DATABASE_URL": database_url}
    result = CliRunner().invoke(cli, ["report", "import-files"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["imported the report of 2026-W47",
                                          "skipped 2026-W45: no CSV file",
                                          "skipped 2026-W46: already in the database"]
    row = stored(db_engine, "2026-W47")
    assert (row.html, row.csv, row.json) == tuple(w47)  # CRLF kept
    assert row.built_at == datetime.fromtimestamp(1_795_000_000, UTC)
    assert stored(db_engine, "2026-W46").html == "<p>new W46</p>"
    with session_factory(db_engine)() as session:
        assert session.get(ReportMailing, "2026-W47") is None  # the .mail state is not imported
        assert session.get(WeeklyReport, "2026-W48") is None
    again = CliRunner().invoke(cli, ["report", "import-files", str(old)], env=env)
    assert again.exit_code == 0 and "skipped 2026-W47: already in the database" in again.stdout
    missing = CliRunner().invoke(cli, ["report", "import-files", str(tmp_path / "none")], env=env)
    assert missing.exit_code == 2 and "is not a directory" in missing.stderr


def test_of_two_runs_that_read_a_due_mailing_at_once_one_mails_it(
        db_engine: Engine, db_session: Session, other_node: Engine, relay: tuple[int, Collector],
        monkeypatch: pytest.MonkeyPatch) -> None:
    port, got = relay
    seed(db_session)
    first = WeeklyReports(session_factory(db_engine), mailer=_mailer(port))
    with session_factory(db_engine)() as session:  # stored and owed, not tried yet
        build_and_store(session_factory(db_engine), WEEK, now=MONDAY_RUN)
        assert first.mailer is not None
        first.mailer.queue(session, WEEK, MONDAY_RUN)
        session.commit()
    real_due = reports.mail.due_mailings

    def read_then_let_the_other_run(session: Session, now: datetime) -> list[ReportMailing]:
        due = real_due(session, now)  # attempts 0, as read by the second run
        monkeypatch.setattr(reports.mail, "due_mailings", real_due)
        first.retry_mail(now)  # the first run claims and mails it meanwhile
        return due

    monkeypatch.setattr(reports.mail, "due_mailings", read_then_let_the_other_run)
    second = _mailer(port)
    # A deferred SQLite transaction, so that the first run can write while the second reads (as on
    # PostgreSQL); with BEGIN IMMEDIATE, SQLite runs them one after the other anyway.
    readers = session_factory(other_node.execution_options(sqlite_begin="DEFERRED"))
    assert second.send_due(readers, MONDAY_RUN) == []  # its claim found attempts 1, not 0
    assert sorted(rcpts[0] for _, rcpts, _ in got.received) == sorted(ADMINS)  # each once
    assert (mailing(db_engine).status, mailing(db_engine).attempts) == ("delivered", 1)
