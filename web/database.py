"""The request's way to the database: the Runtime of the app, and sessions that never half-write.

One session per unit of work, opened and closed by the view (STYLE.md habit 10: the caller owns
the session). A failure rolls the session back before the error reaches the JSON handler, so a
database that fails mid-request leaves nothing of that request behind (the 503 of docs/api.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from ingest.runtime import Runtime

__all__ = ["RUNTIME_KEY", "current_runtime", "session_scope"]

RUNTIME_KEY = "ricochet.runtime"


def current_runtime() -> Runtime:
    """The Runtime that ``web.init_app`` attached to the current app."""
    runtime: Runtime = current_app.extensions[RUNTIME_KEY]
    return runtime


@contextmanager
def session_scope(runtime: Runtime, *, read_only: bool = False) -> Iterator[Session]:
    """A session that is rolled back on any error and closed at the end; the caller commits.

    ``read_only`` sessions open SQLite transactions DEFERRED: the engine's default, BEGIN
    IMMEDIATE, takes the write lock at the start (storage/engine.py), which a token lookup or a
    GET must not hold while an ingest waits for it. PostgreSQL ignores the option.
    """
    if read_only:
        session = runtime.sessions(bind=runtime.engine.execution_options(sqlite_begin="DEFERRED"))
    else:
        session = runtime.sessions()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
