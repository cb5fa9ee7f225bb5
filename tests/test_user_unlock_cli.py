"""``python app.py user unlock|locked`` on both backends (CliRunner): lifting login lockouts.

Expected behaviour from docs/dashboard.md ("Slowing down guessing"): [web].login_max_failures
failed logins lock a user name (in any case: the key is "name:<casefolded name>") or a client
address ("addr:<ip>") for [web].login_lockout_seconds; ``user unlock NAME`` / ``--address IP``
forgets the failures and lifts the lockout at once, and says which of the three it found (locked,
failures only, nothing); a bad IP is an error sentence with status 2. The limits are the defaults
of config/default.toml: 5 failures, 300 seconds, which the messages give as "5 minutes".
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import storage.users
from app import cli
from config import load_settings
from storage import LoginFailure, count_login_failures, create_user, login_lock_seconds, utcnow
from tests.dashboard import (
    FAST_HASH,
    PASSWORD,
    Dash,
    csrf_token_of,
    dash,
    database_url,
    db_engine,
    db_session,
)
from web.dashboard.throttle import address_key, name_key

__all__ = ["dash", "database_url", "db_engine", "db_session"]

WEB = load_settings(env={}).web
MAX = WEB.login_max_failures
LOCKOUT = timedelta(seconds=WEB.login_lockout_seconds)
# Right after a lockout begins, the whole lockout is left, said in minutes (rounded up).
MINUTES = f"{math.ceil(WEB.login_lockout_seconds / 60)} minutes"
WRONG = "wrong password!"
BAD_IP = "is not an IP address such as 192.0.2.7 or 2001:db8::7"


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["user", *args], env={"RICOCHET_DATABASE_URL": url})


def fail(session: Session, key: str, times: int, lockout: timedelta = LOCKOUT,
         ago: timedelta = timedelta(0)) -> None:
    """``times`` failed logins of ``key``, ``ago`` before now, each committed as the login does."""
    for _ in range(times):
        count_login_failures(session, [key], utcnow() - ago, max_failures=MAX, lockout=lockout)
        session.commit()


def locked_seconds(session: Session, key: str) -> int:
    """What the committed rows say of ``key`` now; the transaction is ended afterwards (SQLite's write
    lock, taken at BEGIN, must not stay held while the next command runs)."""
    session.rollback()
    try:
        return login_lock_seconds(session, [key], utcnow())
    finally:
        session.rollback()


def stored_rows(session: Session, key: str) -> int:
    session.rollback()
    try:
        return session.execute(select(func.count()).select_from(LoginFailure)
                               .where(LoginFailure.key == key)).scalar_one()
    finally:
        session.rollback()


def attempt(app: Flask, name: str, password: str, address: str) -> int:
    """The status of a login to ``app`` as ``name`` from the client address ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    token = csrf_token_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token}).status_code


def test_the_cli_and_the_login_make_the_same_keys() -> None:
    assert name_key(" Maria ") == name_key("MARIA") == "name:maria"
    # RFC 5952's one text form of an IPv6 address; an IPv4 client of a dual-stack socket is IPv4.
    assert address_key("2001:DB8:0::7") == "addr:2001:db8::7"
    assert address_key("::ffff:192.0.2.7") == address_key("192.0.2.7") == "addr:192.0.2.7"
    assert address_key(None) == "addr:-"


def test_a_name_locked_by_failed_logins_is_unlocked_in_any_case(dash: Dash, database_url: str) -> None:
    name = dash.add_user("admin", "maria")
    # "Maria" is no user, but counts against the same name; each try from an address of its own.
    for number in range(MAX):
        assert attempt(dash.app, "Maria" if number % 2 else name, WRONG, f"192.0.2.{number}") == 401
    assert attempt(dash.app, name, PASSWORD, "198.51.100.1") == 429
    result = run(database_url, "unlock", "MARIA")
    assert result.exit_code == 0, result.output
    assert result.output == f"unlocked 'MARIA' (the lockout had {MINUTES} left)\n"
    assert attempt(dash.app, name, PASSWORD, "198.51.100.1") == 302


def test_an_address_is_unlocked_and_the_name_stays_locked(dash: Dash, database_url: str) -> None:
    victim, colleague = dash.add_user("viewer"), dash.add_user("viewer")
    address = "192.0.2.9"  # a reverse proxy's: every client comes from it
    for _ in range(MAX):
        assert attempt(dash.app, victim, WRONG, address) == 401
    assert attempt(dash.app, colleague, PASSWORD, address) == 429
    result = run(database_url, "unlock", "--address", address)
    assert result.exit_code == 0, result.output
    assert result.output == f"unlocked the address {address} (the lockout had {MINUTES} left)\n"
    assert attempt(dash.app, colleague, PASSWORD, address) == 302
    assert attempt(dash.app, victim, PASSWORD, address) == 429  # the name's own lockout stays
    assert attempt(dash.app, victim, PASSWORD, "198.51.100.1") == 429


def test_failures_without_a_lockout_and_nothing_at_all(database_url: str, db_session: Session,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fail(db_session, "name:carol", MAX - 1)
    result = run(database_url, "unlock", "Carol")
    assert result.exit_code == 0, result.output
    assert result.output == (f"'Carol' was not locked; its {MAX - 1} failed logins are forgotten; "
                             "no user has this name\n")
    assert stored_rows(db_session, "name:carol") == 0
    fail(db_session, "name:carol", MAX - 1)  # forgotten: counting starts again from zero
    assert locked_seconds(db_session, "name:carol") == 0
    run(database_url, "unlock", "carol")
    again = run(database_url, "unlock", "carol")
    assert again.exit_code == 0
    assert again.output == "nothing to unlock for 'carol'; no user has this name\n"

    monkeypatch.setattr(storage.users, "HASH_METHOD", FAST_HASH)
    create_user(db_session, "dave", "viewer", PASSWORD)
    db_session.commit()
    fail(db_session, "name:dave", 1)
    once = run(database_url, "unlock", "dave")
    assert once.output == "'dave' was not locked; its 1 failed login is forgotten\n"
    # A lockout that has ended, and failures whose window is over, are nothing to unlock either.
    fail(db_session, "name:dave", MAX, ago=LOCKOUT + timedelta(seconds=1))
    fail(db_session, "addr:192.0.2.1", MAX - 1, ago=LOCKOUT + timedelta(seconds=1))
    assert run(database_url, "unlock", "dave", "--address", "192.0.2.1").output == (
        "nothing to unlock for 'dave'\nnothing to unlock for the address 192.0.2.1\n")
    assert stored_rows(db_session, "name:dave") == stored_rows(db_session, "addr:192.0.2.1") == 0


@pytest.mark.parametrize("bad", ["300.1.2.3", "192.0.2", "mail.example.com", "192.0.2.0/24", ""])
def test_a_bad_address_is_a_sentence_and_status_2(database_url: str, db_session: Session, bad: str) -> None:
    fail(db_session, "name:erin", MAX)
    result = run(database_url, "unlock", "erin", "--address", bad)
    assert result.exit_code == 2
    assert result.output == f"Error: --address {bad!r} {BAD_IP}\n"
    assert locked_seconds(db_session, "name:erin") > 0  # nothing was done


def test_unlock_without_a_name_or_an_address_is_status_2(database_url: str) -> None:
    result = run(database_url, "unlock")
    assert result.exit_code == 2
    assert result.output.startswith("Error: say what to unlock") and result.output.count("\n") == 1


def test_locked_lists_the_lockouts_in_force_with_the_time_left(database_url: str,
                                                                db_session: Session) -> None:
    assert run(database_url, "locked").output == "nothing is locked now\n"
    fail(db_session, "name:frank", MAX)
    fail(db_session, "addr:2001:db8::7", MAX)
    fail(db_session, "name:grace", MAX, lockout=timedelta(seconds=86400))  # the longest setting: a day
    fail(db_session, "name:heidi", MAX - 1)  # not locked
    fail(db_session, "name:ivan", MAX, ago=LOCKOUT)  # locked, and just over
    lines = run(database_url, "locked").output.splitlines()
    assert [line.split() for line in lines] == [["addr:2001:db8::7", *MINUTES.split(), "left"],
                                                ["name:frank", *MINUTES.split(), "left"],
                                                ["name:grace", "24", "hours", "left"]]
    # Another spelling of the same IPv6 address lifts that lockout.
    result = run(database_url, "unlock", "--address", "2001:DB8:0::7")
    assert result.output == f"unlocked the address 2001:DB8:0::7 (the lockout had {MINUTES} left)\n"
    assert locked_seconds(db_session, "addr:2001:db8::7") == 0
    assert [line.split()[0] for line in run(database_url, "locked").output.splitlines()] == [
        "name:frank", "name:grace"]


def test_a_guessers_control_characters_are_not_sent_to_the_terminal(database_url: str,
                                                                    db_session: Session) -> None:
    fail(db_session, "name:\x1b[2Jmallory", MAX)
    output = run(database_url, "locked").output
    assert "\x1b" not in output and "\\x1b[2Jmallory" in output
