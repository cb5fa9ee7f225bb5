"""The command line of the scheduler side: ``scheduler`` and ``collect imap --once``.

``app.py`` registers them (``cli_commands(settings_of)``), handing over how to read the settings
so that every command loads them the same way (``--config``, ``RICOCHET_*``).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

import click
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from config import Settings
from ingest.imap import ImapCollector
from ingest.runtime import Runtime
from jobs.evaluate import ReputationJobs
from jobs.lock import SchedulerLock
from jobs.scheduler import build_scheduler
from notify.deliver import NotifyJobs
from reports import WeeklyReports

__all__ = ["cli_commands"]

SettingsOf = Callable[[click.Context], Settings]

log = logging.getLogger(__name__)

# How often the main thread looks at the stop flag (a signal also wakes it at once).
_STOP_POLL_SECONDS = 1.0


def cli_commands(settings_of: SettingsOf) -> list[click.Command]:
    """The commands, reading their settings with ``settings_of(ctx)``."""
    return [_scheduler(settings_of), _collect(settings_of)]


def _collector(runtime: Runtime) -> ImapCollector:
    return ImapCollector(runtime.sessions, runtime.pipeline, runtime.settings.imap)


def _scheduler(settings_of: SettingsOf) -> click.Command:
    @click.command("scheduler")
    @click.option("--lock-retry", "lock_retry", type=click.FloatRange(min=0.1), default=15.0,
                  show_default=True, metavar="SECONDS", help="How often a waiting scheduler tries again.")
    @click.pass_context
    def scheduler(ctx: click.Context, lock_retry: float) -> None:
        """Run the periodic jobs (IMAP collection, reputation evaluation) until stopped.

        One scheduler runs per database: a second one (another node, a second start) waits and
        takes over when the first stops. SIGTERM or Ctrl-C stop it; a collection cut short is
        taken up again by the next run without loss.
        """
        settings = settings_of(ctx)
        if settings.log.level != "DEBUG":
            # APScheduler logs every run of every job at INFO; the collector logs what matters.
            logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        stopping = threading.Event()

        def stop(signum: int, frame: FrameType | None) -> None:
            # Only set the flag: the main thread acts on it. Calling into the scheduler from here
            # raced with its start (a signal before it counted as running was lost, and the
            # process then ran on after SIGTERM).
            log.info("stopping the scheduler (signal %d)", signum)
            stopping.set()

        signal.signal(signal.SIGTERM, stop)
        with Runtime.from_settings(settings) as runtime:
            lock = SchedulerLock(runtime.engine)
            runner: BaseScheduler | None = None
            try:
                if not _wait_for(lock, stopping, lock_retry):
                    return
                runner = build_scheduler(_collector(runtime), scheduler_class=BackgroundScheduler,
                                         reputation=ReputationJobs(runtime.sessions, settings.reputation,
                                                                   settings.attribution.rules.directory),
                                         notify=NotifyJobs(settings.notify, runtime.sessions),
                                         reports=WeeklyReports.from_settings(runtime.sessions, settings))
                _log_jobs(settings, runner)
                runner.start()
                while not stopping.wait(_STOP_POLL_SECONDS):
                    pass
            except KeyboardInterrupt:
                log.info("stopping the scheduler (interrupted)")
            finally:
                if runner is not None and runner.running:
                    runner.shutdown(wait=True)  # a job under way finishes; the next run takes up the rest
                lock.release()

    return scheduler


def _wait_for(lock: SchedulerLock, stopping: threading.Event, retry: float) -> bool:
    """Take ``lock``, waiting while another scheduler holds it; False when stopped first."""
    if lock.acquire():
        log.info("scheduler lock taken (%s)", lock.describe())
        return True
    log.warning("another scheduler runs on this database (%s is held); waiting to take over, "
                "trying every %.0f s", lock.describe(), retry)
    while not stopping.wait(retry):
        if lock.acquire():
            log.info("scheduler lock taken (%s): taking over", lock.describe())
            return True
    return False


def _log_jobs(settings: Settings, runner: BaseScheduler) -> None:
    if not settings.imap.enabled and settings.imap.mailboxes:
        log.info("[imap].enabled is false: the %d IMAP mailbox(es) are not collected",
                 len(settings.imap.mailboxes))
    for job in runner.get_jobs():
        log.info("job %s: %s", job.id, job.name)
    if not any(job.id.startswith("imap:") for job in runner.get_jobs()):
        log.info("no IMAP mailbox to collect: configure [[imap.mailbox]] tables (docs/imap.md)")


def _collect(settings_of: SettingsOf) -> click.Group:
    @click.group("collect")
    def collect() -> None:
        """Collect complaints and bounces from where they arrive."""

    @collect.command("imap")
    @click.option("--once", is_flag=True, help="One run over each mailbox, then exit (required for now).")
    @click.option("--mailbox", "names", multiple=True, metavar="NAME",
                  help="Only this configured mailbox (repeat for several).")
    @click.pass_context
    def imap(ctx: click.Context, once: bool, names: tuple[str, ...]) -> None:
        """Collect the [[imap.mailbox]] mailboxes: up to batch_size messages each.

        Prints one line per mailbox: fetched, new, duplicates, quarantined, moved. Exit status 1
        when a mailbox failed (the others are collected anyway).
        """
        settings = settings_of(ctx)
        if not once:
            raise click.UsageError("add --once (one run, then exit); `python app.py scheduler` collects "
                                   "every poll_seconds")
        configured = {mailbox.name for mailbox in settings.imap.mailboxes}
        if not configured:
            raise click.UsageError("no [[imap.mailbox]] is configured; docs/imap.md shows how")
        unknown = sorted(set(names) - configured)
        if unknown:
            raise click.UsageError(f"no mailbox named {unknown[0]!r}; "
                                   f"configured: {', '.join(sorted(configured))}")
        if not settings.imap.enabled:
            click.echo("[imap].enabled is false: nothing collected")
            return
        with Runtime.from_settings(settings) as runtime:
            collector = _collector(runtime)
            reports = [collector.collect(mailbox, wait_backoff=False) for mailbox in settings.imap.mailboxes
                       if not names or mailbox.name in names]
        for report in reports:
            click.echo(report.line())
        if any(report.error for report in reports):
            ctx.exit(1)

    return collect
