"""The dashboard's failed logins, counted in the database so that every process shares them.

A key ("name:<casefolded name>", "addr:<ip>": web/dashboard/throttle.py) that fails
``max_failures`` times within ``lockout`` is locked for ``lockout``. Several workers and nodes
count the same key at the same moment, so a failure is counted by one statement instead of being
read, changed in Python and written back (two nodes would both read 4 and both write 5):

    INSERT INTO login_failures (key, failures, first_at, locked_until)
    VALUES (:key, 1, :now, NULL)          -- the first failure (a lockout at once if max_failures = 1)
    ON CONFLICT (key) DO UPDATE SET
      failures     = CASE WHEN reached THEN 0 ELSE counted END,
      first_at     = CASE WHEN reached OR expired THEN :now ELSE first_at END,
      locked_until = CASE WHEN reached THEN :now + lockout ELSE locked_until END

where ``expired`` is ``first_at < :now - lockout`` (the window is over: start a new one),
``counted`` is ``CASE WHEN expired THEN 1 ELSE failures + 1 END`` and ``reached`` is
``counted >= max_failures``. Every expression of a SET sees the row as it was before the
statement. PostgreSQL guarantees each row of an ON CONFLICT DO UPDATE an insert or an update,
even when another transaction inserts or deletes that row meanwhile, and holds the row's lock
until the commit, so concurrent counts of one key queue and add up; SQLite has one writer at a
time (BEGIN IMMEDIATE, storage/engine.py). Keys are written sorted, so that two transactions lock
the rows of a name and an address in the same order and cannot deadlock.

``prune_login_failures`` (run with every count) deletes the rows whose window and lockout have
both passed, so a flood of made-up names cannot grow the table without bound. It skips the rows
another transaction holds (PostgreSQL's SKIP LOCKED; the next prune takes them), so it never waits
and cannot deadlock with a count.

Times come from the caller's clock (``now``): the nodes' clocks must agree, as NTP keeps them, for
a lockout to end at the same moment on each.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, literal, or_, select
from sqlalchemy.orm import Session

from storage.engine import dialect_insert
from storage.models import LoginFailure
from storage.types import UTCDateTime

__all__ = ["KEY_LENGTH", "count_login_failures", "counted_login_failures", "forget_login_failures",
           "locked_login_keys", "login_lock_seconds", "prune_login_failures"]

# The length of login_failures.key: "name:" and a user name of up to 100 characters
# (storage.users.MAX_NAME_LENGTH) with room to spare.
KEY_LENGTH = 120
_DIGEST = "#sha256:"


def _stored_key(key: str) -> str:
    """``key`` as stored in the column of KEY_LENGTH characters.

    A longer key (a name no user can have, or one that casefolding grew) keeps its start and ends
    with its SHA-256, so that different keys stay different; so does a key with a NUL character,
    which PostgreSQL refuses in text.
    """
    if len(key) <= KEY_LENGTH and "\x00" not in key:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    start = key[:KEY_LENGTH - len(_DIGEST) - len(digest)].replace("\x00", "")
    return f"{start}{_DIGEST}{digest}"


def _stored_keys(keys: Iterable[str]) -> list[str]:
    return sorted({_stored_key(key) for key in keys})


def login_lock_seconds(session: Session, keys: Iterable[str], now: datetime) -> int:
    """Seconds (rounded up) until none of ``keys`` is locked any more; 0 when none is locked now."""
    stored = _stored_keys(keys)
    if not stored:
        return 0
    until = session.execute(
        select(func.max(LoginFailure.locked_until))
        .where(LoginFailure.key.in_(stored), LoginFailure.locked_until > now)).scalar_one_or_none()
    return math.ceil((until - now).total_seconds()) if until is not None else 0


def counted_login_failures(session: Session, key: str, now: datetime, lockout: timedelta) -> int:
    """How many failures of ``key`` count towards a lockout at ``now``: 0 once its window is over.

    A lockout starts a new window, so a key locked now has 0 failures counted.
    """
    counted = session.execute(select(LoginFailure.failures).where(
        LoginFailure.key == _stored_key(key), LoginFailure.first_at >= now - lockout)).scalar_one_or_none()
    return counted or 0


def locked_login_keys(session: Session, now: datetime) -> list[tuple[str, int]]:
    """(key as stored, seconds rounded up until its lockout ends) of every key locked at ``now``, by key."""
    rows = session.execute(select(LoginFailure.key, LoginFailure.locked_until)
                           .where(LoginFailure.locked_until > now))
    return sorted((key, math.ceil((until - now).total_seconds())) for key, until in rows if until is not None)


def count_login_failures(session: Session, keys: Iterable[str], now: datetime, *, max_failures: int,
                         lockout: timedelta) -> None:
    """Count one failed login at ``now`` for each of ``keys``; lock those that reach ``max_failures``.

    Then prune the rows that say nothing any more. The caller commits (soon: the rows stay locked).
    """
    stored = _stored_keys(keys)
    if not stored:
        return
    table = LoginFailure.__table__
    until = literal(now + lockout, UTCDateTime)
    expired = LoginFailure.first_at < now - lockout
    counted = case((expired, 1), else_=LoginFailure.failures + 1)
    reached = counted >= max_failures
    first_locks = max_failures <= 1
    statement = dialect_insert(session, table).values([
        {"key": key, "failures": 0 if first_locks else 1, "first_at": now,
         "locked_until": now + lockout if first_locks else None} for key in stored])
    statement = statement.on_conflict_do_update(index_elements=["key"], set_={
        "failures": case((reached, 0), else_=counted),
        "first_at": case((or_(reached, expired), literal(now, UTCDateTime)), else_=LoginFailure.first_at),
        "locked_until": case((reached, until), else_=LoginFailure.locked_until),
    })
    session.execute(statement)
    prune_login_failures(session, now, lockout)


def forget_login_failures(session: Session, keys: Iterable[str]) -> int:
    """Delete the failures (and any lockout) of ``keys``; returns how many rows went. The caller commits."""
    stored = _stored_keys(keys)
    if not stored:
        return 0
    result = session.execute(delete(LoginFailure).where(LoginFailure.key.in_(stored)))
    return int(getattr(result, "rowcount", 0) or 0)


def prune_login_failures(session: Session, now: datetime, lockout: timedelta) -> int:
    """Delete the rows whose window (``lockout`` long) and lockout have both passed at ``now``.

    Rows that another transaction holds are skipped, not waited for. Returns how many rows went.
    """
    stale = (LoginFailure.first_at < now - lockout,
             or_(LoginFailure.locked_until.is_(None), LoginFailure.locked_until <= now))
    # SQLite has no FOR UPDATE (nor the need: it has one writer at a time); SQLAlchemy leaves it out.
    free = select(LoginFailure.key).where(*stale).with_for_update(skip_locked=True)
    result = session.execute(delete(LoginFailure).where(LoginFailure.key.in_(free), *stale))
    return int(getattr(result, "rowcount", 0) or 0)
