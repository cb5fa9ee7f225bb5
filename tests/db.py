"""Test databases on both backends: a SQLite file and a throw-away PostgreSQL database.

Every storage and ingest test runs on SQLite and on the PostgreSQL of this machine (issue 3). The
PostgreSQL server is found at ``RICOCHET_TEST_PG_URL`` (default: user postgres, trust auth,
127.0.0.1:5432, database ``test``); each test module creates its own database
``ricochet_test_<random>`` there and drops it when it is done, so runs never see each other's rows.
When the server cannot be reached the PostgreSQL half is skipped with the reason, except under
``CI=true``, where it fails: CI must not go green by testing one backend.

Fixtures (import them into a test module, or re-export them from conftest.py):

- ``database_url``: module-scoped, parametrized ``sqlite`` / ``postgresql``; a migrated database.
- ``db_engine``: an engine on it (``storage.engine.make_engine``).
- ``db_session``: a session for one test; the tables are emptied after the test.
- ``empty_database_url``: per test, parametrized; a new database with no tables at all.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from storage.engine import make_engine, normalize_url, session_factory
from storage.migrate import upgrade
from storage.models import Base

__all__ = ["BACKENDS", "clear", "database_url", "db_engine", "db_session", "empty_database_url",
           "pg_admin_url", "postgresql_unavailable", "require_postgresql", "temporary_database"]

BACKENDS = ("sqlite", "postgresql")
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_admin_url() -> URL:
    """Where test databases are created: ``RICOCHET_TEST_PG_URL`` or the local default."""
    return normalize_url(os.environ.get("RICOCHET_TEST_PG_URL") or DEFAULT_PG_URL)


@functools.cache
def postgresql_unavailable() -> str | None:
    """Why the test PostgreSQL cannot be used, or None when it can (asked once per run)."""
    url = pg_admin_url()
    engine = make_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as error:
        cause = error.orig if isinstance(error, DBAPIError) else error
        first_line = (str(cause).strip().splitlines() or [""])[0]
        where = url.render_as_string(hide_password=True)
        return (f"PostgreSQL at {where} is unreachable ({type(cause).__name__}: {first_line}); "
                "start it or set RICOCHET_TEST_PG_URL")
    finally:
        engine.dispose()
    return None


def require_postgresql() -> None:
    """Skip the calling test when PostgreSQL is unreachable; fail it instead under CI=true."""
    reason = postgresql_unavailable()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def temporary_database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new, empty database on ``backend``; a PostgreSQL one is dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'ricochet-test.db'}"
        return
    if backend != "postgresql":
        raise ValueError(f"unknown test backend {backend!r}")
    require_postgresql()
    admin_url = pg_admin_url()
    name = f"ricochet_test_{secrets.token_hex(6)}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                # FORCE (PostgreSQL 13+): a connection a failed test leaked must not keep it alive.
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def clear(engine: Engine) -> None:
    """Delete every row of every model table (children first), keeping the schema."""
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))


# Module scope, not session: a fixture a test module imports is that module's own to pytest, so
# a session-scoped one made a database and an engine per module all the same, and kept them (and
# the engine's connections) open to the end of the session: past PostgreSQL's 100 connections
# once the suite had enough modules. Now each module's are dropped when the module is done.
@pytest.fixture(scope="module", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to the newest revision, shared by a test module (one per backend)."""
    backend = str(request.param)
    with temporary_database(backend, tmp_path_factory.mktemp(backend)) as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="module")
def db_engine(database_url: str) -> Iterator[Engine]:
    """An engine on ``database_url``."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session(db_engine: Engine) -> Iterator[Session]:
    """A session for one test; whatever it (or anything else) committed is deleted afterwards."""
    session = session_factory(db_engine)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()
        clear(db_engine)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database without any table, for one test."""
    with temporary_database(str(request.param), tmp_path) as url:
        yield url
