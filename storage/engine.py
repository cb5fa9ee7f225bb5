"""Engines and sessions for SQLite (embedded default) and PostgreSQL (psycopg 3).

The caller owns both: ``make_engine`` once at start, ``session_factory(engine)`` to open sessions,
``engine.dispose()`` at the end. Nothing here is a module-level global (STYLE.md, habit 10).

SQLite is set up for a service that several threads write to: WAL so readers never wait for the
writer (https://sqlite.org/wal.html), foreign keys on (they are off by default in SQLite), a
busy timeout so a writer waits for the lock instead of failing at once, and ``BEGIN IMMEDIATE``
so that a transaction that reads first and writes later takes the write lock at its start: with
a plain deferred BEGIN, upgrading to a write after another connection committed fails with
SQLITE_BUSY at once, whatever the busy timeout (https://sqlite.org/lang_transaction.html).
Long read-only work can opt out with ``engine.execution_options(sqlite_begin="DEFERRED")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

__all__ = ["DEFAULT_URL", "dialect_insert", "make_engine", "normalize_url", "session_factory"]

DEFAULT_URL = "sqlite:///var/ricochet.db"
# How long (milliseconds) a SQLite connection waits for another one's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalize_url(url: str | URL) -> URL:
    """``url`` as SQLAlchemy should see it: PostgreSQL always through psycopg 3.

    ``postgresql://`` and ``postgres://`` (the libpq and Heroku spellings) name the default
    driver, psycopg2, which Ricochet does not install.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL = DEFAULT_URL, **options: Any) -> Engine:
    """An engine for ``url``; ``options`` go to ``sqlalchemy.create_engine``.

    For a SQLite file, the folder that holds it is created when missing.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, options)
    if backend == "postgresql":
        # A connection the server closed (restart, idle timeout) is replaced instead of failing.
        options.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **options)
    raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
                     "use sqlite:///path/to/file.db or postgresql+psycopg://user:password@host/dbname")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions on ``engine``. Objects stay readable after commit (the web layer returns them)."""
    return sessionmaker(engine, expire_on_commit=False)


def _sqlite_engine(url: URL, options: dict[str, Any]) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    if in_memory:
        # Every connection to ":memory:" is a new, empty database: share one connection.
        options.setdefault("poolclass", StaticPool)
        options.setdefault("connect_args", {"check_same_thread": False})
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **options)
    event.listen(engine, "connect", _sqlite_on_connect(wal=not in_memory))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_on_connect(wal: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see _sqlite_begin): the sqlite3 module's own
        # implicit BEGIN breaks SAVEPOINT and transactional DDL (SQLAlchemy docs, "Serializable
        # isolation / Savepoints / Transactional DDL" for pysqlite).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    return on_connect


def _sqlite_begin(connection: Any) -> None:
    # A long read-only job (a report) can ask for a deferred transaction, so that it does not hold
    # the write lock: engine.execution_options(sqlite_begin="DEFERRED").
    mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    if mode not in ("IMMEDIATE", "DEFERRED", "EXCLUSIVE"):
        raise ValueError(f"sqlite_begin must be IMMEDIATE, DEFERRED or EXCLUSIVE, not {mode!r}")
    connection.exec_driver_sql(f"BEGIN {mode}")


def dialect_insert(session: Session, entity: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``entity`` (a model or table) with the ON CONFLICT clauses of the session's backend.

    PostgreSQL (9.5+) and SQLite (3.24+) share the syntax; SQLAlchemy has a construct for each.
    """
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(entity)
    if name == "sqlite":
        return sqlite.insert(entity)
    raise ValueError(f"unsupported database backend {name!r}")
