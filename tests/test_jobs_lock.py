"""One scheduler per database: the lock, and two real scheduler processes on one database.

Expected behaviour from DESIGN.md ("Scale": exactly one node runs the scheduler's jobs, by a
PostgreSQL advisory lock) and docs/imap.md (a second scheduler waits and takes over).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from jobs.lock import SchedulerLock
from storage import make_engine
from tests import db

# The fixtures of tests/db.py (both backends), used by name below.
database_url, db_engine = db.database_url, db.db_engine

REPO = Path(__file__).resolve().parent.parent


def test_only_one_holder_at_a_time(db_engine: Engine):
    first, second = SchedulerLock(db_engine), SchedulerLock(make_engine(db_engine.url))
    try:
        assert first.acquire() is True
        assert first.acquire() is True  # already held: still ours
        assert second.acquire() is False
        first.release()
        assert second.acquire() is True
        assert second.held and not first.held
    finally:
        first.release()
        second.release()
        second.engine.dispose()


def test_an_in_memory_database_needs_no_lock():
    lock = SchedulerLock(make_engine("sqlite://"))
    assert lock.acquire() is True
    lock.release()


class _Scheduler:
    """A scheduler subprocess whose output a thread keeps reading, so that the process never
    blocks on a full pipe (it would then not see SIGTERM's exit through) and a wait has a deadline."""

    def __init__(self, config: Path) -> None:
        command = [sys.executable, "app.py", "--config", str(config), "scheduler", "--lock-retry", "0.2"]
        self.process = subprocess.Popen(command, cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for_line(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in list(self.lines)):
                return
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} never came; output:\n{''.join(self.lines)}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def test_a_second_scheduler_waits_and_takes_over(database_url: str, tmp_path: Path):
    config = tmp_path / "ricochet.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    first = _Scheduler(config)
    second: _Scheduler | None = None
    try:
        first.wait_for_line("scheduler lock taken")
        second = _Scheduler(config)
        second.wait_for_line("another scheduler runs on this database")
        assert first.stop() == 0, "".join(first.lines)
        second.wait_for_line("taking over")
        assert second.stop() == 0, "".join(second.lines)
    finally:
        for scheduler in (first, second):
            if scheduler is not None:
                scheduler.kill()
