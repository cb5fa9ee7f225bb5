"""The scheduler process: APScheduler 3 running Ricochet's periodic jobs (STYLE.md, habit 12).

One process (``python app.py scheduler``), never inside the web workers, and one per database
(``jobs.lock.SchedulerLock``; another waits to take over): every job has a stable id,
``coalesce=True``, ``max_instances=1`` and a misfire grace time. The jobs so far: one IMAP
collection per configured mailbox (``imap:<name>``, every ``poll_seconds``).
"""

from jobs.scheduler import JOB_DEFAULTS, MISFIRE_GRACE_SECONDS, build_scheduler, imap_job_id, run_imap_mailbox

__all__ = ["JOB_DEFAULTS", "MISFIRE_GRACE_SECONDS", "build_scheduler", "imap_job_id", "run_imap_mailbox"]
