"""Mailing the weekly report (reports/mail.py) through a real aiosmtpd relay on loopback.

The week is tests/test_reports.py's seed (2026-W48) on both backends. What is checked comes from
issue 5 (section 3: "builds last week's report, stores it, and mails it"; HTML with inline SVG,
CSV and JSON) and RFC 2046 (multipart/alternative, plain text first): the received message is
parsed with the stdlib email package, and its summary, HTML and CSV agree with its JSON, whose
figures come from the seed. A relay that is down leaves the stored report in place and is retried.
The mailing state is read from its row (``report_mailings``) in a session of its own.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app import cli
from config import NotifySettings, load_settings
from jobs.scheduler import REPORT_MAIL_JOB_ID, build_scheduler
from reports import ReportMailer, WeeklyReports
from storage import session_factory
from storage.report_models import ReportMailing, WeeklyReport
from tests import db
from tests.test_notify_mail import Collector, free_port
from tests.test_reports import WEEK, seed

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

MONDAY_RUN = datetime(2026, 11, 30, 6, tzinfo=UTC)  # the weekly job's run after W48
ADMINS = ("postmaster@example.net", "noc@example.net")


class Refusing(Collector):
    """A relay that refuses one recipient (RFC 5321 550 5.1.1) and keeps the rest."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address == self.refused:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def _start(handler: Collector, port: int) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


@pytest.fixture
def relay() -> Iterator[tuple[int, Collector]]:
    handler = Collector()
    controller = _start(handler, free_port())
    try:
        yield controller.port, handler
    finally:
        controller.stop()


def _mailer(port: int, recipients: tuple[str, ...] = ADMINS, retries: tuple[int, ...] = (60, 600)
            ) -> ReportMailer:
    settings = NotifySettings(smtp_host="127.0.0.1", smtp_port=port, mail_from="ricochet@example.net",
                              timeout_seconds=5, retry_seconds=list(retries))
    return ReportMailer(settings, recipients)


def _job(engine: Engine, mailer: ReportMailer) -> WeeklyReports:
    return WeeklyReports(session_factory(engine), mailer=mailer)


def mailing(engine: Engine, week: str = WEEK) -> ReportMailing:
    """The mailing row of ``week`` as committed, read in a session of its own."""
    with session_factory(engine)() as session:
        row = session.get(ReportMailing, week)
    assert row is not None, f"no mailing of {week}"
    return row


def stored(engine: Engine, week: str = WEEK) -> WeeklyReport:
    """The report row of ``week`` as committed."""
    with session_factory(engine)() as session:
        row = session.get(WeeklyReport, week)
    assert row is not None, f"no report of {week}"
    return row


def _parts(message: EmailMessage) -> tuple[str, str, dict[str, bytes]]:
    """(plain text, HTML, {attachment file name: bytes}) of a received report."""
    assert message.get_content_type() == "multipart/mixed"
    alternative, *attachments = message.iter_parts()
    assert isinstance(alternative, EmailMessage)
    assert alternative.get_content_type() == "multipart/alternative"
    # RFC 2046 section 5.1.4: the plainest first, the preferred (HTML) last.
    text, html = alternative.iter_parts()
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    files = {}
    for part in attachments:
        assert isinstance(part, EmailMessage) and part.is_attachment()
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        files[str(part.get_filename())] = payload
    # SMTP carries CRLF line ends (RFC 5321 section 2.3.8); the text is read in lines.
    return "\n".join(text.get_content().splitlines()), html.get_content(), files


def test_the_weekly_job_stores_and_mails_the_report(db_engine: Engine, db_session: Session,
                                                    relay: tuple[int, Collector]) -> None:
    port, got = relay
    seed(db_session)
    assert _job(db_engine, _mailer(port)).run(now=MONDAY_RUN) == WEEK
    assert sorted(rcpts[0] for _, rcpts, _ in got.received) == sorted(ADMINS)
    for sender, rcpts, message in got.received:
        assert sender == "ricochet@example.net" and message["To"] == rcpts[0]
        text, html, files = _parts(message)
        name = f"ricochet-report-{WEEK}"
        assert sorted(files) == [f"{name}.csv", f"{name}.json"]
        assert [p.get_content_type() for p in message.iter_parts()][1:] == ["text/csv", "application/json"]
        data = json.loads(files[f"{name}.json"])
        assert files[f"{name}.json"] == stored(db_engine).json.encode("utf-8")  # mailed as stored
        week, previous = data["provider"]["week"], data["provider"]["previous"]
        # The seed (tests/test_reports.py): 8 complaints, 36 bounces of which 34 hard, 1200 sends;
        # the week before: 500 sends and 1 complaint.
        assert (week["sends"], week["complaints"], week["bounces"], week["hard_bounces"]) == (1200, 8, 36, 34)
        lines = re.findall(r"^(Sends|Complaints|Bounces|Hard bounces): (\d+) \(last week (\d+)\)$", text,
                           re.MULTILINE)
        summary = {label: (int(this), int(last)) for label, this, last in lines}
        assert summary == {label: (week[key], previous[key]) for label, key in (
            ("Sends", "sends"), ("Complaints", "complaints"), ("Bounces", "bounces"),
            ("Hard bounces", "hard_bounces"))}
        assert "Complaint rate: 0.667 % (last week 0.200 %; threshold 0.300 %)" in text  # 8/1200, 1/500
        assert "account alice@one.example: 1000 sends, 7 complaints" in text
        assert "192.0.2.10: 4 block bounces; Spamhaus (4)" in text
        assert message["Subject"] == (f"[Ricochet] weekly report {WEEK}: 1200 sends, complaint rate 0.667 %, "
                                      "bounce rate 2.833 %")
        cells = dict(re.findall(r'data-key="([^"]+)">([^<]*)</td>', html))
        assert "<svg" in html
        for key in ("sends", "complaints", "bounces", "hard_bounces"):
            assert cells[f"provider.week.{key}"] == str(week[key])
        rows = {(r[0], r[1], r[2], r[3]): r[4]
                for r in csv.reader(io.StringIO(files[f"{name}.csv"].decode("utf-8")))}
        assert rows[("provider", "week", "", "hard_bounces")] == str(week["hard_bounces"])
        assert files[f"{name}.csv"].count(b"\r\n") == len(rows)  # RFC 4180 line ends kept
    state = mailing(db_engine)
    assert (state.status, sorted(state.delivered), state.pending, state.attempts) == (
        "delivered", sorted(ADMINS), [], 1)
    assert (state.next_attempt_at, state.last_error) == (None, None)


def test_a_relay_that_is_down_keeps_the_report_and_is_retried(db_engine: Engine, db_session: Session,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    seed(db_session)
    port = free_port()  # nothing listens yet
    job = _job(db_engine, _mailer(port))
    with caplog.at_level(logging.WARNING, logger="reports.mail"):
        job.run(now=MONDAY_RUN)
    assert json.loads(stored(db_engine).json)["provider"]["week"]["complaints"] == 8
    state = mailing(db_engine)
    assert (state.status, state.attempts, state.next_attempt_at) == (
        "pending", 1, MONDAY_RUN + timedelta(seconds=60))
    assert state.last_error is not None and f"SMTP relay 127.0.0.1:{port}" in state.last_error
    assert f"mailing the report of {WEEK}, attempt 1 of 3, failed" in caplog.text
    handler = Collector()
    controller = _start(handler, port)
    try:
        job.retry_mail(now=MONDAY_RUN + timedelta(seconds=30))  # not due yet
        assert handler.received == []
        job.retry_mail(now=MONDAY_RUN + timedelta(seconds=60))
    finally:
        controller.stop()
    assert sorted(rcpts[0] for _, rcpts, _ in handler.received) == sorted(ADMINS)
    assert mailing(db_engine).status == "delivered"


def test_a_refused_recipient_alone_is_retried_then_given_up(db_engine: Engine, db_session: Session,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    seed(db_session)
    handler = Refusing(ADMINS[1])
    controller = _start(handler, free_port())
    try:
        job = _job(db_engine, _mailer(controller.port, retries=(60,)))
        job.run(now=MONDAY_RUN)
        state = mailing(db_engine)
        assert (state.delivered, state.pending, state.status) == ([ADMINS[0]], [ADMINS[1]], "pending")
        assert state.last_error is not None and "550 5.1.1 No such mailbox" in state.last_error
        with caplog.at_level(logging.ERROR, logger="reports.mail"):
            job.retry_mail(now=MONDAY_RUN + timedelta(minutes=1))
    finally:
        controller.stop()
    assert [rcpts for _, rcpts, _ in handler.received] == [[ADMINS[0]]]  # no second copy
    state = mailing(db_engine)
    assert (state.status, state.attempts, state.next_attempt_at) == ("failed", 2, None)
    assert f"giving up mailing the report of {WEEK} to {ADMINS[1]} after 2 attempts" in caplog.text


def test_recipients_come_from_mail_to_else_the_admins(tmp_path: Path) -> None:
    base = {"RICOCHET_NOTIFY_SMTP_HOST": "127.0.0.1"}
    toml = tmp_path / "r.toml"
    toml.write_text('[notify]\nadmins = ["postmaster@example.net"]\n', encoding="utf-8")
    mailer = ReportMailer.from_settings(load_settings(toml, env=base))
    assert mailer is not None and mailer.recipients == ("postmaster@example.net",)
    toml.write_text('[notify]\nadmins = ["postmaster@example.net"]\n'
                    '[reports]\nmail_to = ["boss@example.net"]\n', encoding="utf-8")
    mailer = ReportMailer.from_settings(load_settings(toml, env=base))
    assert mailer is not None and mailer.recipients == ("boss@example.net",)
    assert ReportMailer.from_settings(load_settings(toml, env={})) is None  # no relay: stored only
    unmailed = WeeklyReports.from_settings(sessionmaker(), load_settings(env={}))  # no database opened
    assert unmailed.mailer is None


def test_the_scheduler_retries_mailing_every_minute(db_engine: Engine) -> None:
    job = _job(db_engine, _mailer(free_port()))
    scheduler = build_scheduler(None, scheduler_class=BackgroundScheduler, reports=job)
    found = scheduler.get_job(REPORT_MAIL_JOB_ID)
    assert found is not None and found.trigger.interval == timedelta(minutes=1)
    unmailed = build_scheduler(None, scheduler_class=BackgroundScheduler,
                               reports=WeeklyReports(session_factory(db_engine)))
    assert unmailed.get_job(REPORT_MAIL_JOB_ID) is None


def test_cli_mails_on_demand(database_url: str, db_session: Session, relay: tuple[int, Collector],
                             tmp_path: Path) -> None:
    port, got = relay
    seed(db_session)
    config = tmp_path / "ricochet.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[notify]\nsmtp_host = "127.0.0.1"\n'
                      f'smtp_port = {port}\nadmins = ["postmaster@example.net"]\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "report", "--week", WEEK, "--mail"], env={})
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and f"mailed the report of {WEEK} to postmaster@example.net" in result.stderr
    [(_, rcpts, message)] = got.received
    assert rcpts == ["postmaster@example.net"]
    _, _, files = _parts(message)
    assert json.loads(files[f"ricochet-report-{WEEK}.json"])["provider"]["week"]["hard_bounces"] == 34
    config.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "report", "--week", WEEK, "--mail"], env={})
    assert result.exit_code == 2 and "--mail needs [notify].smtp_host" in result.stderr


def test_cli_says_who_did_not_get_it(database_url: str, db_session: Session, tmp_path: Path) -> None:
    seed(db_session)
    port = free_port()
    config = tmp_path / "ricochet.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[notify]\nsmtp_host = "127.0.0.1"\n'
                      f'smtp_port = {port}\ntimeout_seconds = 2\n[reports]\nmail_to = ["boss@example.net"]\n',
                      encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "report", "--week", WEEK, "--mail"], env={})
    assert result.exit_code == 1
    assert (f"Error: the report of {WEEK} was not mailed to boss@example.net: SMTP relay 127.0.0.1:{port}"
            in result.stderr)
