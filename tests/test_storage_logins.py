"""storage.logins on both backends: the window, the lockout, the prune, and counts that add up.

Expected behaviour comes from docs/dashboard.md ("Slowing down guessing"): [web].login_max_failures
failures within [web].login_lockout_seconds lock a name or an address for login_lockout_seconds,
shared by every process on the database. The limits here are the defaults of config/default.toml.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, String, func, select, text
from sqlalchemy.orm import Session

from config import load_settings
from storage import (
    LoginFailure,
    count_login_failures,
    forget_login_failures,
    login_lock_seconds,
    prune_login_failures,
    session_factory,
)
from storage.logins import KEY_LENGTH
from tests.db import database_url, db_engine, db_session

__all__ = ["database_url", "db_engine", "db_session"]

WEB = load_settings(env={}).web
MAX = WEB.login_max_failures
LOCKOUT = timedelta(seconds=WEB.login_lockout_seconds)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
NAME, ADDR = "name:carol", "addr:192.0.2.7"


def fail(session: Session, keys: list[str], now: datetime, times: int = 1,
         lockout: timedelta = LOCKOUT) -> None:
    """``times`` failures of ``keys`` at ``now``, each committed like a login's."""
    for _ in range(times):
        count_login_failures(session, keys, now, max_failures=MAX, lockout=lockout)
        session.commit()


def row(session: Session, key: str) -> LoginFailure | None:
    session.expire_all()
    return session.get(LoginFailure, key)


def rows(session: Session) -> int:
    return session.execute(select(func.count()).select_from(LoginFailure)).scalar_one()


def test_the_last_failure_allowed_locks_the_key_for_the_lockout(db_session: Session) -> None:
    fail(db_session, [NAME, ADDR], T0, MAX - 1)
    assert login_lock_seconds(db_session, [NAME], T0) == 0
    stored = row(db_session, NAME)
    assert stored is not None
    assert (stored.failures, stored.first_at, stored.locked_until) == (MAX - 1, T0, None)
    locked_at = T0 + 10 * SECOND
    fail(db_session, [NAME], locked_at)
    assert login_lock_seconds(db_session, [NAME], locked_at) == LOCKOUT.total_seconds()
    assert login_lock_seconds(db_session, [ADDR], locked_at) == 0  # one failure short
    # Both keys asked at once: the name's lock is the answer.
    assert login_lock_seconds(db_session, [ADDR, NAME], locked_at) == LOCKOUT.total_seconds()
    stored = row(db_session, NAME)
    # The lock starts a new window: the next failures count from zero.
    assert stored is not None and (stored.failures, stored.first_at, stored.locked_until) == (
        0, locked_at, locked_at + LOCKOUT)


def test_the_lockout_ends_after_lockout_seconds_rounded_up(db_session: Session) -> None:
    fail(db_session, [NAME], T0, MAX)
    ends = T0 + LOCKOUT
    assert login_lock_seconds(db_session, [NAME], ends - timedelta(milliseconds=500)) == 1
    assert login_lock_seconds(db_session, [NAME], ends) == 0
    assert login_lock_seconds(db_session, [NAME, "name:nobody"], ends + SECOND) == 0
    assert login_lock_seconds(db_session, [], T0) == 0


def test_failures_older_than_the_window_no_longer_count(db_session: Session) -> None:
    fail(db_session, [NAME], T0, MAX - 1)
    later = T0 + LOCKOUT + SECOND
    fail(db_session, [NAME], later)
    assert login_lock_seconds(db_session, [NAME], later) == 0
    stored = row(db_session, NAME)
    assert stored is not None and (stored.failures, stored.first_at) == (1, later)
    fail(db_session, [NAME], later, MAX - 2)
    assert login_lock_seconds(db_session, [NAME], later) == 0
    fail(db_session, [NAME], later)  # the MAX-th of the new window
    assert login_lock_seconds(db_session, [NAME], later) == LOCKOUT.total_seconds()


def test_the_window_includes_its_last_second(db_session: Session) -> None:
    fail(db_session, [NAME], T0, MAX - 1)
    fail(db_session, [NAME], T0 + LOCKOUT)
    assert login_lock_seconds(db_session, [NAME], T0 + LOCKOUT) == LOCKOUT.total_seconds()


def test_a_success_forgets_the_name_and_not_the_address(db_session: Session) -> None:
    fail(db_session, [NAME, ADDR], T0, MAX - 1)
    assert forget_login_failures(db_session, [NAME]) == 1
    db_session.commit()
    assert row(db_session, NAME) is None
    fail(db_session, [NAME, ADDR], T0)
    assert login_lock_seconds(db_session, [NAME], T0) == 0
    assert login_lock_seconds(db_session, [ADDR], T0) == LOCKOUT.total_seconds()
    assert forget_login_failures(db_session, ["name:nobody"]) == 0


def test_a_failure_prunes_the_rows_whose_window_and_lock_have_passed(db_session: Session) -> None:
    made_up = [f"name:made-up-{number}" for number in range(50)]
    for key in made_up:
        fail(db_session, [key, ADDR], T0)
    fail(db_session, [NAME], T0 + 30 * SECOND, MAX)  # locked until T0 + 30 s + LOCKOUT
    assert rows(db_session) == len(made_up) + 2
    later = T0 + LOCKOUT + SECOND
    fail(db_session, ["name:someone-else"], later)
    # The made-up names and the address are gone; the lock and the new failure stay.
    assert {key for (key,) in db_session.execute(select(LoginFailure.key))} == {NAME, "name:someone-else"}
    assert login_lock_seconds(db_session, [NAME], later) == (30 * SECOND - SECOND).total_seconds()
    assert prune_login_failures(db_session, T0 + 31 * SECOND + LOCKOUT, LOCKOUT) == 1  # NAME's lock ended
    db_session.commit()
    assert rows(db_session) == 1


def test_a_lock_outlives_a_shorter_lockout_setting(db_session: Session) -> None:
    # A restart with a shorter [web].login_lockout_seconds keeps the lockouts already given.
    long = timedelta(hours=1)
    fail(db_session, [NAME], T0, MAX, lockout=long)
    assert prune_login_failures(db_session, T0 + 2 * LOCKOUT, LOCKOUT) == 0
    db_session.commit()
    assert login_lock_seconds(db_session, [NAME], T0 + 2 * LOCKOUT) == (long - 2 * LOCKOUT).total_seconds()
    assert prune_login_failures(db_session, T0 + long, LOCKOUT) == 1


def test_long_keys_and_nul_characters_are_stored_apart(db_session: Session) -> None:
    # The login form takes any name: a longer one than a column holds, or one that PostgreSQL
    # refuses in text, is still counted, and never in place of another.
    long, longer, nul = "name:" + "x" * 500, "name:" + "x" * 501, "name:eve\x00"
    fail(db_session, [long, nul], T0, MAX)
    assert login_lock_seconds(db_session, [long], T0) == LOCKOUT.total_seconds()
    assert login_lock_seconds(db_session, [nul], T0) == LOCKOUT.total_seconds()
    assert login_lock_seconds(db_session, [longer], T0) == 0
    assert login_lock_seconds(db_session, ["name:eve"], T0) == 0
    stored = [key for (key,) in db_session.execute(select(LoginFailure.key))]
    assert len(stored) == 2 and all(len(key) <= KEY_LENGTH and "\x00" not in key for key in stored)
    column = LoginFailure.__table__.c.key.type
    assert isinstance(column, String) and column.length == KEY_LENGTH


def test_concurrent_failures_of_one_key_all_count(db_engine: Engine, db_session: Session) -> None:
    # Several processes count the same name and address at the same moment (real connections of
    # their own): none of the counts is lost, and the lock comes at the MAX-th, as in series.
    threads = MAX + 2
    sessions = session_factory(db_engine)
    postgresql = db_engine.dialect.name == "postgresql"
    start = threading.Barrier(threads)
    backends: set[int] = set()
    errors: list[Exception] = []

    def count(number: int) -> None:
        try:
            with sessions() as session:
                if postgresql:  # in a transaction already, on a connection of its own
                    backends.add(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
                start.wait(timeout=30)
                keys = [NAME, ADDR] if number % 2 else [ADDR, NAME]  # both orders: no deadlock
                count_login_failures(session, keys, T0, max_failures=MAX, lockout=LOCKOUT)
                session.commit()
        except Exception as error:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(error)

    workers = [threading.Thread(target=count, args=(number,)) for number in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert errors == []
    if postgresql:
        assert len(backends) == threads
    for key in (NAME, ADDR):
        stored = row(db_session, key)
        assert stored is not None
        assert (stored.failures, stored.locked_until) == (threads % MAX, T0 + LOCKOUT)
