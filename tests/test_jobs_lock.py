"""One scheduler per database: the lock, and two real scheduler processes on one database.

Expected behaviour from DESIGN.md ("Scale": exactly one node runs the scheduler's jobs, by a
PostgreSQL advisory lock) and docs/imap.md (a second scheduler waits and takes over).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


def _start(config: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "app.py", "--config", str(config), "scheduler", "--lock-retry", "0.2"]
    return subprocess.Popen(command, cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for_line(process: subprocess.Popen[str], needle: str, seen: list[str]) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"{needle!r} never came; output:\n{''.join(seen)}")


def test_a_second_scheduler_waits_and_takes_over(database_url: str, tmp_path: Path):
    config = tmp_path / "ricochet.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    first = _start(config)
    first_lines: list[str] = []
    second: subprocess.Popen[str] | None = None
    try:
        _wait_for_line(first, "scheduler lock taken", first_lines)
        second = _start(config)
        second_lines: list[str] = []
        _wait_for_line(second, "another scheduler runs on this database", second_lines)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        _wait_for_line(second, "taking over", second_lines)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
