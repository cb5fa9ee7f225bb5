"""Alembic, run from code: ``upgrade(url)``, ``current(url)``, ``schema_diff(url)``.

The Alembic configuration is built here instead of read from an alembic.ini: the scripts live in
storage/migrations/ and the database is whatever the caller names (the application's settings,
a test's temporary database). ``python app.py db upgrade`` and ``make run`` call ``upgrade``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import URL, Connection

from storage.engine import make_engine, normalize_url
from storage.models import Base

__all__ = ["MIGRATIONS", "alembic_config", "current", "downgrade", "head", "schema_diff", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

Database = str | URL | Engine


def alembic_config(connection: Connection | None = None, url: str | URL | None = None) -> Config:
    """An Alembic Config for storage/migrations, running on ``connection`` (or on ``url``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        # ConfigParser interpolation: a literal "%" in a password must be doubled.
        rendered = normalize_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Migrate ``database`` (a URL or an Engine) up to ``revision``, in one transaction."""
    with _connection(database, write=True) as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(database: Database, revision: str) -> None:
    """Migrate ``database`` down to ``revision`` ("base" removes every table)."""
    with _connection(database, write=True) as connection:
        command.downgrade(alembic_config(connection), revision)


def current(database: Database) -> str | None:
    """The revision ``database`` is at; None for a database never migrated."""
    with _connection(database, write=False) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    """The newest revision in storage/migrations/versions."""
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if found is None:
        raise RuntimeError(f"no migration found in {MIGRATIONS / 'versions'}")
    return found


def schema_diff(database: Database) -> list[Any]:
    """What differs between the models and ``database``'s tables (Alembic autogenerate's view).

    Empty when the migrations produce exactly the models' schema: tables, columns, types,
    nullability, indexes, unique constraints and foreign keys.
    """
    with _connection(database, write=False) as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


@contextmanager
def _connection(database: Database, write: bool) -> Iterator[Connection]:
    engine = database if isinstance(database, Engine) else make_engine(database)
    try:
        if write:
            with engine.begin() as connection:
                yield connection
        else:
            with engine.connect() as connection:
                yield connection
    finally:
        if engine is not database:
            engine.dispose()
