"""One scheduler per database: a lock that the running scheduler holds for its whole life.

Two schedulers on the same database would collect the same mailboxes at the same time (nothing
would be stored twice, the pipeline deduplicates, but both would move the same messages and every
later singleton job would run twice). DESIGN.md ("Scale"): exactly one node runs the scheduler's
jobs, by a PostgreSQL advisory lock. The others wait and take over when it stops.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``, PostgreSQL documentation
  9.27.10) on a connection kept open; the server releases it when that connection ends, also
  when the process is killed.
- SQLite: an exclusive ``flock`` on a file beside the database (SQLite is one machine); the kernel
  releases it when the process ends. An in-memory database is private to its process: no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path

from sqlalchemy import Connection, Engine, text

__all__ = ["SchedulerLock"]

# A fixed 64-bit key, from a name so that it is recognisable and does not collide by accident.
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"ricochet scheduler").digest()[:8], "big", signed=True)


class SchedulerLock:
    """The right to run the scheduler's jobs on ``engine``'s database; ``acquire`` never waits."""

    def __init__(self, engine: Engine) -> None:
        """A lock for the database of ``engine`` (not taken yet)."""
        self.engine = engine
        self._connection: Connection | None = None
        self._file: int | None = None
        self._held = False

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._held

    def describe(self) -> str:
        """What is locked, for log lines."""
        backend = self.engine.url.get_backend_name()
        if backend == "postgresql":
            return f"PostgreSQL advisory lock {ADVISORY_KEY} on {self.engine.url.render_as_string()}"
        path = self._path()
        return f"file lock {path}" if path else "in-memory SQLite (no lock needed)"

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this process holds it (now or already)."""
        if self._held:
            return True
        backend = self.engine.url.get_backend_name()
        if backend == "postgresql":
            self._held = self._acquire_postgresql()
        else:
            self._held = self._acquire_file()
        return self._held

    def release(self) -> None:
        """Give the lock back (also done by the server or the kernel when the process ends)."""
        if self._connection is not None:
            with contextlib.suppress(Exception):  # the connection may be gone: then so is the lock
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
            self._connection.close()
            self._connection = None
        if self._file is not None:
            os.close(self._file)  # closing the descriptor drops the flock
            self._file = None
        self._held = False

    def _acquire_postgresql(self) -> bool:
        connection = self.engine.connect()
        taken = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                        {"key": ADVISORY_KEY}).scalar())
        # Commit the implicit transaction: the lock is of the session, not of the transaction, and an
        # idle-in-transaction connection would be killed by idle_in_transaction_session_timeout.
        connection.commit()
        if taken:
            self._connection = connection
        else:
            connection.close()
        return taken

    def _acquire_file(self) -> bool:
        path = self._path()
        if path is None:
            return True
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._file = descriptor
        return True

    def _path(self) -> Path | None:
        database = self.engine.url.database or ""
        if database in ("", ":memory:") or self.engine.url.query.get("mode") == "memory":
            return None
        return Path(database).expanduser().with_name(Path(database).name + ".scheduler.lock")
