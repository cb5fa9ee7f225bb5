"""The storage commands: ``db upgrade`` on a new database, ``token create|list|revoke``."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine, inspect, select

from app import cli
from storage import ApiToken, find_token, make_engine, session_factory
from storage.migrate import current, head, schema_diff
from tests import db

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session
empty_database_url = db.empty_database_url


def run(url: str, *args: str):
    return CliRunner().invoke(cli, list(args), env={"RICOCHET_DATABASE_URL": url}, catch_exceptions=False)


def test_db_upgrade_creates_a_new_sqlite_file(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'new' / 'ricochet.db'}"
    result = run(url, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "ricochet.db").is_file()
    assert current(url) == head()
    assert f"is at revision {head()}" in result.stdout
    assert schema_diff(url) == []
    # Running it again is harmless.
    assert run(url, "db", "upgrade").exit_code == 0


def test_db_upgrade_on_an_empty_database_of_each_backend(empty_database_url: str):
    result = run(empty_database_url, "db", "upgrade")
    assert result.exit_code == 0, result.output
    engine = make_engine(empty_database_url)
    try:
        assert {"raw_messages", "events", "api_tokens"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_token_create_list_revoke(database_url: str, db_engine: Engine):
    try:
        created = run(database_url, "token", "create", "mta-1", "--role", "ingest")
        assert created.exit_code == 0, created.output
        [secret] = created.stdout.split()
        assert re.fullmatch(r"rct_[A-Za-z0-9_-]{43}", secret)
        with session_factory(db_engine)() as session:
            row = find_token(session, secret)
            assert row is not None and (row.name, row.role) == ("mta-1", "ingest")
            # Only the hash is stored.
            assert secret not in {value for value in session.execute(select(ApiToken.__table__)).one()
                                  if isinstance(value, str)}

        again = CliRunner().invoke(cli, ["token", "create", "mta-1", "--role", "viewer"],
                                   env={"RICOCHET_DATABASE_URL": database_url})
        assert again.exit_code == 1
        assert "a token named 'mta-1' exists already" in again.output
        assert run(database_url, "token", "create", "x", "--role", "root").exit_code == 2

        listed = run(database_url, "token", "list")
        line = r"^mta-1\s+ingest\s+created \d{4}-\d\d-\d\d \d\d:\d\dZ\s+active$"
        assert re.search(line, listed.stdout, re.M)
        assert secret not in listed.stdout

        assert run(database_url, "token", "revoke", "mta-1").exit_code == 0
        with session_factory(db_engine)() as session:
            assert find_token(session, secret) is None
        assert "revoked" in run(database_url, "token", "list").stdout
        assert run(database_url, "token", "revoke", "mta-1").exit_code == 1
    finally:
        db.clear(db_engine)


def test_commands_ask_for_db_upgrade_on_a_database_without_tables(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    for args in (["import", str(tmp_path)], ["reprocess", "--all-quarantined"], ["token", "list"]):
        result = CliRunner().invoke(cli, args, env={"RICOCHET_DATABASE_URL": url})
        assert result.exit_code == 2, args
        assert f"Error: the database {url} has no tables yet; run: python app.py db upgrade" in result.output
