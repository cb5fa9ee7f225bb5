"""``python app.py user add|list|passwd|disable|enable|remove`` on both backends (CliRunner).

Expected behaviour from issue 5 ("passwords hashed, created from the command line") and
docs/dashboard.md: the password from a prompt asked twice, a file or RICOCHET_USER_PASSWORD; at
least 10 characters; errors are sentences with status 1 (2 for a bad command line).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

import storage.users
from app import cli
from storage import authenticate, find_user
from tests.dashboard import FAST_HASH
from tests.db import database_url, db_engine, db_session

__all__ = ["database_url", "db_engine", "db_session"]

GOOD = "a long enough password"


@pytest.fixture(autouse=True)
def fast_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A cheaper scrypt cost for the many hashes of these tests (tests/dashboard.py says why)."""
    monkeypatch.setattr(storage.users, "HASH_METHOD", FAST_HASH)
    yield


def run(url: str, *args: str, stdin: str | None = None, **env: str) -> Result:
    return CliRunner().invoke(cli, ["user", *args], input=stdin, env={"RICOCHET_DATABASE_URL": url,
                                                                     "RICOCHET_USER_PASSWORD": "", **env})


def can_log_in(session: Session, name: str, password: str) -> bool:
    """Whether the committed users table lets ``name`` in (the transaction is ended afterwards:
    SQLite's write lock, taken at BEGIN, must not stay held while the next command runs)."""
    session.rollback()
    try:
        return authenticate(session, name, password) is not None
    finally:
        session.rollback()


def test_add_from_a_prompt_asked_twice(database_url: str, db_session: Session) -> None:
    added = run(database_url, "add", "alice", "--role", "admin", stdin=f"{GOOD}\n{GOOD}\n")
    assert added.exit_code == 0, added.output
    assert "user 'alice' (admin) added" in added.output
    assert GOOD not in added.output  # hidden input
    assert can_log_in(db_session, "alice", GOOD)
    user = find_user(db_session, "alice")
    assert user is not None and user.role == "admin" and user.password_hash != GOOD


def test_a_prompt_whose_two_answers_differ_adds_nobody(database_url: str, db_session: Session) -> None:
    result = run(database_url, "add", "bob", "--role", "viewer", stdin=f"{GOOD}\n{GOOD}!\n")
    assert result.exit_code != 0
    assert "do not match" in result.output
    assert find_user(db_session, "bob") is None


def test_add_from_a_file_or_the_environment(database_url: str, db_session: Session, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(f"{GOOD} from a file\nsecond line ignored\n", encoding="utf-8")
    filed = run(database_url, "add", "filed", "--role", "viewer", "--password-file", str(secret))
    assert filed.exit_code == 0, filed.output
    assert run(database_url, "add", "scripted", "--role", "viewer",
               RICOCHET_USER_PASSWORD=f"{GOOD} from env").exit_code == 0
    assert can_log_in(db_session, "filed", f"{GOOD} from a file")
    assert can_log_in(db_session, "scripted", f"{GOOD} from env")
    missing = run(database_url, "add", "nofile", "--role", "viewer", "--password-file", str(tmp_path / "no"))
    assert missing.exit_code == 2 and "cannot read the password file" in missing.output


def test_bad_input_is_a_sentence(database_url: str, db_session: Session) -> None:
    assert run(database_url, "add", "carol", "--role", "admin", RICOCHET_USER_PASSWORD=GOOD).exit_code == 0
    duplicate = run(database_url, "add", "carol", "--role", "viewer", RICOCHET_USER_PASSWORD=GOOD)
    assert duplicate.exit_code == 1
    assert "Error: a user named 'carol' exists already" in duplicate.output
    short = run(database_url, "add", "dave", "--role", "viewer", RICOCHET_USER_PASSWORD="too short")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    role = run(database_url, "add", "erin", "--role", "root", RICOCHET_USER_PASSWORD=GOOD)
    assert role.exit_code == 2 and "'root' is not one of 'admin', 'viewer'" in role.output
    spaced = run(database_url, "add", "two words", "--role", "viewer", RICOCHET_USER_PASSWORD=GOOD)
    assert spaced.exit_code == 1 and "without spaces" in spaced.output
    for command in ("passwd", "disable", "enable", "remove"):
        unknown = run(database_url, command, "nobody", RICOCHET_USER_PASSWORD=GOOD)
        assert unknown.exit_code == 1, command
        assert "no user named 'nobody'" in unknown.output
    assert find_user(db_session, "dave") is None and find_user(db_session, "erin") is None


def test_list_passwd_disable_enable_remove(database_url: str, db_session: Session) -> None:
    assert "no user yet" in run(database_url, "list").output
    run(database_url, "add", "zoe", "--role", "viewer", RICOCHET_USER_PASSWORD=GOOD)
    run(database_url, "add", "adam", "--role", "admin", RICOCHET_USER_PASSWORD=GOOD)
    lines = run(database_url, "list").output.splitlines()
    assert [line.split()[:2] for line in lines] == [["adam", "admin"], ["zoe", "viewer"]]
    assert all(line.endswith("active") for line in lines)
    assert GOOD not in "".join(lines) and "scrypt" not in "".join(lines)

    assert run(database_url, "passwd", "zoe", RICOCHET_USER_PASSWORD=f"{GOOD} 2").exit_code == 0
    assert not can_log_in(db_session, "zoe", GOOD) and can_log_in(db_session, "zoe", f"{GOOD} 2")

    assert run(database_url, "disable", "zoe").exit_code == 0
    assert "disabled" in run(database_url, "list").output.splitlines()[1]
    assert not can_log_in(db_session, "zoe", f"{GOOD} 2")
    assert run(database_url, "enable", "zoe").exit_code == 0
    assert can_log_in(db_session, "zoe", f"{GOOD} 2")

    assert run(database_url, "remove", "zoe").output.strip() == "user 'zoe' removed"
    db_session.rollback()
    assert find_user(db_session, "zoe") is None
    db_session.rollback()
    assert [line.split()[0] for line in run(database_url, "list").output.splitlines()] == ["adam"]


def test_a_database_without_the_tables_is_told_to_upgrade(tmp_path: Path) -> None:
    result = run(f"sqlite:///{tmp_path / 'empty.db'}", "list")
    assert result.exit_code == 2
    assert "has no tables yet; run: python app.py db upgrade" in result.output
