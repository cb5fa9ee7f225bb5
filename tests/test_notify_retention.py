"""Retention of the delivery log (notify/retention.py), on SQLite and PostgreSQL.

Expected rows come from the seed and docs/notify.md: a delivered row is kept
[notify].keep_delivered_days after it was created, a failed one keep_failed_days, a pending one
for ever; a row exactly at the limit stays.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from config import NotifySettings, load_settings
from jobs.scheduler import RETENTION_JOB_ID, build_scheduler
from notify import NotifyJobs
from storage import Delivery, session_factory
from tests import db

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

NOW = datetime(2026, 11, 30, 4, 30, tzinfo=UTC)


def _row(session: Session, label: str, status: str, age: timedelta) -> None:
    created = NOW - age
    session.add(Delivery(channel="webhook", target=f"https://panel.example/{label}", event="state_change",
                         payload={"label": label}, status=status, attempts=1, next_attempt_at=created,
                         created_at=created, delivered_at=created if status == "delivered" else None))


def test_old_delivered_and_failed_rows_go_pending_ones_stay(db_engine: Engine, db_session: Session) -> None:
    day = timedelta(days=1)
    seed = [("delivered-new", "delivered", 89 * day), ("delivered-at-limit", "delivered", 90 * day),
            ("delivered-old", "delivered", 90 * day + timedelta(seconds=1)),
            ("failed-100", "failed", 100 * day), ("failed-old", "failed", 181 * day),
            ("pending-old", "pending", 400 * day)]
    for label, status, age in seed:
        _row(db_session, label, status, age)
    db_session.commit()
    settings = NotifySettings(keep_delivered_days=90, keep_failed_days=180)
    pruned = NotifyJobs(settings, session_factory(db_engine)).prune(now=NOW)
    assert (pruned.delivered, pruned.failed) == (1, 1)
    db_session.expire_all()
    left = sorted(row.payload["label"] for row in db_session.scalars(select(Delivery)))
    assert left == ["delivered-at-limit", "delivered-new", "failed-100", "pending-old"]


def test_shorter_retention_for_failures_is_honoured(db_engine: Engine, db_session: Session) -> None:
    _row(db_session, "failed", "failed", timedelta(days=8))
    _row(db_session, "delivered", "delivered", timedelta(days=8))
    db_session.commit()
    pruned = NotifyJobs(NotifySettings(keep_delivered_days=30, keep_failed_days=7),
                        session_factory(db_engine)).prune(now=NOW)
    assert (pruned.delivered, pruned.failed) == (0, 1)
    db_session.expire_all()
    assert [row.status for row in db_session.scalars(select(Delivery))] == ["delivered"]


def test_the_scheduler_runs_it_daily(db_engine: Engine) -> None:
    settings = load_settings(env={})
    assert (settings.notify.keep_delivered_days, settings.notify.keep_failed_days) == (90, 180)
    jobs = NotifyJobs(settings.notify, session_factory(db_engine))
    scheduler = build_scheduler(None, scheduler_class=BackgroundScheduler, notify=jobs)
    job = scheduler.get_job(RETENTION_JOB_ID)
    assert job is not None and (job.coalesce, job.max_instances) == (True, 1)
    first = job.trigger.get_next_fire_time(None, NOW - timedelta(hours=1))
    assert first == datetime(2026, 11, 30, 4, 30, tzinfo=UTC)
    assert job.trigger.get_next_fire_time(first, first + timedelta(seconds=1)) == first + timedelta(days=1)
