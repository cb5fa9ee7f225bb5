"""Engines and migrations on SQLite and PostgreSQL: the schema the migrations build is the models'."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import CheckConstraint, inspect, text
from sqlalchemy.engine import make_url

from storage import migrate
from storage.engine import make_engine, normalize_url
from storage.models import Base
from tests import db

# The two-backend fixture of tests/db.py, used by name below.
empty_database_url = db.empty_database_url


def test_upgrade_from_empty_creates_every_table(empty_database_url: str) -> None:
    assert migrate.current(empty_database_url) is None
    migrate.upgrade(empty_database_url)
    assert migrate.current(empty_database_url) == migrate.head()
    engine = make_engine(empty_database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


def test_models_and_migrations_agree(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    assert migrate.schema_diff(empty_database_url) == []


def test_models_and_migrations_have_the_same_check_constraints(empty_database_url: str) -> None:
    # Alembic's comparison skips CHECK constraints; the closed vocabularies live in them.
    migrate.upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        inspector = inspect(engine)
        stored = {(table, check["name"], " ".join(check["sqltext"].split()).replace("(", "").replace(")", ""))
                  for table in Base.metadata.tables for check in inspector.get_check_constraints(table)}
    finally:
        engine.dispose()
    declared = {(table.name, str(constraint.name), str(constraint.sqltext).replace("(", "").replace(")", ""))
                for table in Base.metadata.sorted_tables for constraint in table.constraints
                if isinstance(constraint, CheckConstraint)}
    assert {(table, name) for table, name, _ in stored} == {(table, name) for table, name, _ in declared}
    values = {name: set(re.findall(r"'(\w+)'", text)) for _, name, text in declared}
    assert {name: set(re.findall(r"'(\w+)'", text)) for _, name, text in stored} == values


def test_schema_diff_sees_what_the_migrations_missed(empty_database_url: str) -> None:
    # The agreement test above is only worth something if a difference shows.
    migrate.upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_events_reason_id"))
        diff = migrate.schema_diff(engine)
    finally:
        engine.dispose()
    assert [entry[0] for entry in diff] == ["add_index"]
    assert diff[0][1].name == "ix_events_reason_id"


def test_downgrade_to_base_and_up_again(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    migrate.downgrade(empty_database_url, "base")
    assert migrate.current(empty_database_url) is None
    engine = make_engine(empty_database_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    migrate.upgrade(empty_database_url)
    assert migrate.schema_diff(empty_database_url) == []


def test_upgrade_twice_changes_nothing(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    migrate.upgrade(empty_database_url)
    assert migrate.current(empty_database_url) == migrate.head()


def test_sqlite_engine_is_set_up_for_concurrent_writers(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'deeper' / 'ricochet.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    finally:
        engine.dispose()
    # The folder of the file is created when missing (the default is var/ricochet.db).
    assert (tmp_path / "var" / "deeper" / "ricochet.db").is_file()


def test_sqlite_in_memory_is_one_database_for_every_connection() -> None:
    engine = make_engine("sqlite://")
    try:
        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.head()
        assert migrate.schema_diff(engine) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize(("given", "driver"), [
    ("postgresql://u:p@db.example/ricochet", "postgresql+psycopg"),
    ("postgres://u:p@db.example/ricochet", "postgresql+psycopg"),
    ("postgresql+psycopg://u:p@db.example/ricochet", "postgresql+psycopg"),
    ("sqlite:///var/ricochet.db", "sqlite"),
])
def test_postgresql_urls_use_psycopg_3(given: str, driver: str) -> None:
    url = normalize_url(given)
    assert url.drivername == driver
    assert url.database == make_url(given).database


def test_unsupported_database_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"postgresql\+psycopg://"):
        make_engine("mysql://u:p@db.example/ricochet")


def test_head_is_the_weekly_reports_revision() -> None:
    assert migrate.head() == "0006"
