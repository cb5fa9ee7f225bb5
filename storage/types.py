"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no time-zone-aware timestamp: SQLAlchemy stores the wall-clock digits and hands back a
naive ``datetime``, while PostgreSQL's ``timestamp with time zone`` hands back an aware one.
``UTCDateTime`` makes both backends store UTC and return aware UTC values, so code that compares
times never meets "can't compare offset-naive and offset-aware datetimes" on one backend only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["BigId", "UTCDateTime", "utcnow"]

# 64-bit ids on PostgreSQL. On SQLite only a column declared exactly INTEGER PRIMARY KEY is the
# auto-incrementing rowid (https://sqlite.org/autoinc.html), so the variant keeps that spelling.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time, aware, in UTC (the default of every ``*_at`` column)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back time-zone aware (UTC).

    A naive value given to the database is taken to be UTC already; an aware one is converted.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC) if dialect.name != "sqlite" else value
        value = value.astimezone(UTC)
        # SQLite stores the digits only: give it the UTC wall clock so that ordering by text works.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
