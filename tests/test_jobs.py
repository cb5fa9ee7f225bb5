"""The scheduler: its jobs, their ids and safety settings, and the IMAP job run once for real.

The expected settings are those STYLE.md (habit 12) and the APScheduler 3.x FAQ ask for: stable
ids, coalesce, one instance at a time, a misfire grace time. Nothing sleeps: the job function is
called directly, and the scheduler is started paused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app import cli
from config.imap import imap_settings
from ingest.imap import ImapCollector
from ingest.pipeline import Pipeline
from jobs import MISFIRE_GRACE_SECONDS, build_scheduler, imap_job_id, run_imap_mailbox
from storage import RawMessage, make_engine, session_factory
from tests import db
from tests import dovecot as private_dovecot
from tests.dovecot import Dovecot

# The fixtures of tests/db.py (both backends) and tests/dovecot.py, used by name below.
database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session
dovecot = private_dovecot.dovecot

CORPUS = Path(__file__).parent / "data" / "corpus" / "emails" / "maildir" / "bsd"


def _settings(*mailboxes: dict[str, Any], enabled: bool = True) -> Any:
    return imap_settings({"enabled": enabled, "timeout_seconds": 10, "connect_attempts": 1,
                          "backoff_seconds": 0, "backoff_max_seconds": 0, "mailbox": list(mailboxes)})


def _mailbox(name: str, port: int = 143, user: str = "fbl@test", **extra: Any) -> dict[str, Any]:
    return {"name": name, "host": "127.0.0.1", "port": port, "security": "none", "user": user,
            "password_env": "RICOCHET_TEST_IMAP_PASSWORD", **extra}


def _collector(imap: Any, engine: Engine | None = None) -> ImapCollector:
    """A collector on ``engine``; without one, on an empty in-memory database nothing reads."""
    return ImapCollector(session_factory(engine or make_engine("sqlite://")), Pipeline(), imap)


def test_one_job_per_mailbox_with_stable_ids_and_safe_settings():
    imap = _settings(_mailbox("fbl", poll_seconds=60), _mailbox("bounces", poll_seconds=300))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    scheduler = build_scheduler(_collector(imap), scheduler_class=BackgroundScheduler, now=start)
    scheduler.start(paused=True)  # jobs get their final settings; nothing runs
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"imap:fbl", "imap:bounces"} == {imap_job_id("fbl"), imap_job_id("bounces")}
        for job in jobs.values():
            assert job.coalesce is True
            assert job.max_instances == 1
            assert job.misfire_grace_time == MISFIRE_GRACE_SECONDS
            assert job.func is run_imap_mailbox
            assert isinstance(job.trigger, IntervalTrigger)
            assert job.next_run_time == start  # the first poll at start-up, not one interval later
        assert jobs["imap:fbl"].trigger.interval.total_seconds() == 60
        assert jobs["imap:bounces"].trigger.interval.total_seconds() == 300
        assert jobs["imap:fbl"].args[1] == "fbl"
    finally:
        scheduler.shutdown(wait=False)


def test_the_same_settings_hold_before_the_scheduler_starts():
    scheduler = build_scheduler(_collector(_settings(_mailbox("fbl"))), scheduler_class=BackgroundScheduler)
    (job,) = scheduler.get_jobs()
    assert (job.id, job.coalesce, job.max_instances, job.misfire_grace_time) == \
        ("imap:fbl", True, 1, MISFIRE_GRACE_SECONDS)


def test_no_imap_job_when_imap_is_disabled():
    imap = _settings(_mailbox("fbl"), enabled=False)
    assert build_scheduler(_collector(imap), scheduler_class=BackgroundScheduler).get_jobs() == []
    assert build_scheduler(None, scheduler_class=BackgroundScheduler).get_jobs() == []


def test_the_imap_job_collects_once(dovecot: Dovecot, db_engine: Engine, db_session: Session,
                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RICOCHET_TEST_IMAP_PASSWORD", "secret")
    user = dovecot.add_user()
    dovecot.append(user, [(CORPUS / name).read_bytes() for name in ("arf-01.eml", "lhost-postfix-01.eml")])
    collector = _collector(_settings(_mailbox("fbl", port=dovecot.port, user=user)), db_engine)
    scheduler = build_scheduler(collector, scheduler_class=BackgroundScheduler)
    (job,) = scheduler.get_jobs()

    report = job.func(*job.args)

    assert (report.name, report.error, report.fetched, report.new, report.moved) == ("fbl", None, 2, 2, 2)
    assert len(db_session.scalars(select(RawMessage).where(RawMessage.source == "imap:fbl")).all()) == 2


def test_collect_imap_once_prints_a_line_per_mailbox_and_fails_when_one_fails(
        dovecot: Dovecot, database_url: str, db_session: Session, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RICOCHET_TEST_IMAP_PASSWORD", "secret")
    user = dovecot.add_user()
    dovecot.append(user, [(CORPUS / "arf-14.eml").read_bytes()])
    config = tmp_path / "ricochet.toml"
    config.write_text(f"""
[database]
url = "{database_url}"

[imap]
connect_attempts = 1

[[imap.mailbox]]
name = "fbl"
host = "127.0.0.1"
port = {dovecot.port}
security = "none"
user = "{user}"
password_env = "RICOCHET_TEST_IMAP_PASSWORD"

[[imap.mailbox]]
name = "broken"
host = "127.0.0.1"
port = {dovecot.port}
security = "none"
user = "{user}"
password_env = "RICOCHET_TEST_NO_SUCH_VARIABLE"
""", encoding="utf-8")

    result = CliRunner().invoke(cli, ["--config", str(config), "collect", "imap", "--once"])

    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert "fbl: fetched 1, new 1, duplicates 0, quarantined 0, moved 1" in lines
    assert any(line.startswith("broken: fetched 0") and "RICOCHET_TEST_NO_SUCH_VARIABLE" in line
               for line in lines)


def test_collect_imap_without_once_or_mailboxes_says_what_to_do(tmp_path: Path):
    result = CliRunner().invoke(cli, ["collect", "imap"])
    assert result.exit_code == 2
    assert "--once" in result.output
    config = tmp_path / "ricochet.toml"
    config.write_text("[imap]\nenabled = true\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "collect", "imap", "--once"])
    assert result.exit_code == 2
    assert "no [[imap.mailbox]] is configured" in result.output
