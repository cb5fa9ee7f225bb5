"""Building the scheduler and its jobs from the settings.

Settings that every job gets (APScheduler 3.x user guide, "Missed job executions and coalescing",
and its FAQ on running one scheduler): ``coalesce=True`` (runs missed while the process was busy or
stopped become one run, not a burst), ``max_instances=1`` (a slow IMAP poll is never overlapped by
the next one on the same mailbox) and ``misfire_grace_time`` (a run late by less than this still
happens; a later one is skipped and the next interval takes over). They are given to each job
explicitly, not only as scheduler defaults, so that they hold before the scheduler starts too.

The reputation jobs (jobs/evaluate.py): ``reputation:evaluate`` every [reputation].evaluate_seconds
and ``reputation:upkeep`` every upkeep_seconds; they run under the same one-scheduler-per-database
lock, so exactly one node evaluates.

The weekly report (reports/archive.py): ``reports:weekly``, a cron job (default Monday 06:00 UTC)
that builds last week's report, stores it in the database and mails it; its misfire grace is an
hour, since a weekly run missed by a restart should still happen when the process is back. When
the report is mailed ([notify].smtp_host and someone to mail), ``reports:mail`` retries every
minute a mailing that failed, with [notify].retry_seconds' delays (reports/mail.py); the mailing
state is in the database too, so a scheduler that takes over goes on with it.

The notification jobs (notify/deliver.py): ``notify:deliver`` every [notify].deliver_seconds sends
the webhooks and e-mails the evaluation job queued, so a slow receiver never delays an evaluation;
``notify:retention``, daily at 04:30 UTC (a cron time, so frequent restarts never skip it), deletes
old delivered and failed rows of the delivery log (notify/retention.py).

Job ids are stable (``imap:<mailbox name>``, ``reputation:evaluate``), so logs and any later
persistent job store name the same job across restarts.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ingest.imap import ImapCollector, MailboxReport
from jobs.evaluate import ReputationJobs
from notify.deliver import NotifyJobs
from reports.archive import WeeklyReports

__all__ = ["DELIVER_JOB_ID", "EVALUATE_JOB_ID", "JOB_DEFAULTS", "MISFIRE_GRACE_SECONDS", "REPORT_JOB_ID",
           "REPORT_MAIL_JOB_ID", "RETENTION_JOB_ID", "UPKEEP_JOB_ID",
           "build_scheduler", "imap_job_id", "run_imap_mailbox"]

log = logging.getLogger(__name__)

# A run may start this late (seconds) and still happen: long enough for a busy thread pool or a
# slow start, short against the shortest sensible poll interval.
MISFIRE_GRACE_SECONDS = 30
JOB_DEFAULTS: dict[str, Any] = {"coalesce": True, "max_instances": 1,
                                 "misfire_grace_time": MISFIRE_GRACE_SECONDS}
# Mailboxes are collected in parallel, each by its own job; more threads than this wait their turn.
MAX_WORKERS = 4
EVALUATE_JOB_ID = "reputation:evaluate"
UPKEEP_JOB_ID = "reputation:upkeep"
DELIVER_JOB_ID = "notify:deliver"
REPORT_JOB_ID = "reports:weekly"
REPORT_MISFIRE_GRACE_SECONDS = 3600
REPORT_MAIL_JOB_ID = "reports:mail"
REPORT_MAIL_SECONDS = 60
RETENTION_JOB_ID = "notify:retention"
RETENTION_MISFIRE_GRACE_SECONDS = 3600  # a daily run missed by a restart still happens within the hour


def imap_job_id(mailbox: str) -> str:
    """The id of the job that collects ``mailbox``."""
    return f"imap:{mailbox}"


def run_imap_mailbox(collector: ImapCollector, mailbox: str) -> MailboxReport:
    """The IMAP job: one run over ``mailbox`` (failures are in the report and the log, never raised)."""
    return collector.collect(collector.mailbox(mailbox))


def build_scheduler(collector: ImapCollector | None, *,
                    scheduler_class: type[BaseScheduler] = BlockingScheduler,
                    now: datetime | None = None, reputation: ReputationJobs | None = None,
                    reports: WeeklyReports | None = None,
                    notify: NotifyJobs | None = None) -> BaseScheduler:
    """A scheduler (not started) with every periodic job; ``collector`` None means no IMAP jobs,
    ``reputation`` None no reputation jobs, ``reports`` None no weekly report, ``notify`` None no
    notification job.

    Each mailbox's first run is at ``now`` (default: the current time), then every poll_seconds.
    """
    scheduler = scheduler_class(job_defaults=dict(JOB_DEFAULTS), timezone=UTC,
                                executors={"default": ThreadPoolExecutor(MAX_WORKERS)})
    start = now or datetime.now(UTC)
    if collector is not None and collector.settings.enabled:
        for mailbox in collector.settings.mailboxes:
            scheduler.add_job(run_imap_mailbox, IntervalTrigger(seconds=mailbox.poll_seconds, timezone=UTC),
                              args=(collector, mailbox.name), id=imap_job_id(mailbox.name),
                              name=f"collect IMAP mailbox {mailbox.name} every {mailbox.poll_seconds} s",
                              next_run_time=start, replace_existing=True, **JOB_DEFAULTS)
    if reputation is not None:
        every = reputation.settings.evaluate_seconds
        scheduler.add_job(reputation.evaluate, IntervalTrigger(seconds=every, timezone=UTC),
                          id=EVALUATE_JOB_ID, name=f"evaluate the reputation rules every {every} s",
                          next_run_time=start, replace_existing=True, **JOB_DEFAULTS)
        every = reputation.settings.upkeep_seconds
        scheduler.add_job(reputation.upkeep, IntervalTrigger(seconds=every, timezone=UTC),
                          id=UPKEEP_JOB_ID, name=f"prune old reputation counters every {every} s",
                          replace_existing=True, **JOB_DEFAULTS)
    if reports is not None:
        when = CronTrigger(day_of_week=reports.day_of_week, hour=reports.hour, minute=reports.minute,
                           timezone=UTC)
        scheduler.add_job(reports.run, when, id=REPORT_JOB_ID, replace_existing=True,
                          name=f"build last week's report ({reports.day_of_week} {reports.hour:02d}:"
                               f"{reports.minute:02d} UTC)",
                          **{**JOB_DEFAULTS, "misfire_grace_time": REPORT_MISFIRE_GRACE_SECONDS})
        if reports.mailer is not None:
            scheduler.add_job(reports.retry_mail, IntervalTrigger(seconds=REPORT_MAIL_SECONDS, timezone=UTC),
                              id=REPORT_MAIL_JOB_ID, name="retry mailing the weekly report",
                              replace_existing=True, **JOB_DEFAULTS)
    if notify is not None:
        every = notify.settings.deliver_seconds
        scheduler.add_job(notify.deliver, IntervalTrigger(seconds=every, timezone=UTC), id=DELIVER_JOB_ID,
                          name=f"send queued notifications every {every} s", replace_existing=True,
                          **JOB_DEFAULTS)
        scheduler.add_job(notify.prune, CronTrigger(hour=4, minute=30, timezone=UTC), id=RETENTION_JOB_ID,
                          name="delete old rows of the delivery log (daily 04:30 UTC)", replace_existing=True,
                          **{**JOB_DEFAULTS, "misfire_grace_time": RETENTION_MISFIRE_GRACE_SECONDS})
    return scheduler
