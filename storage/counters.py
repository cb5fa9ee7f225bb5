"""Shared counters: policy nodes add their deltas, the evaluation job and the API read them back.

Several nodes count sends in memory (``reputation.CounterStore(track_deltas=True)``) and flush
``drain_deltas()`` about once a second with ``apply_deltas``: one upsert that ADDS each field
(``INSERT ... ON CONFLICT (identity, seconds, start) DO UPDATE SET sends = counter_buckets.sends +
excluded.sends, ...``; PostgreSQL and SQLite 3.24+ spell it the same), so two nodes counting the
same identity in the same minute add up instead of overwriting each other.

Distinct-recipient sketches cannot be added in SQL. The upsert keeps the stored sketch and returns
it; the sketch is then merged in Python and written back when the union differs. The upsert has
locked those rows for the rest of the transaction (PostgreSQL row locks; SQLite's database write
lock), so no other node's merge can come in between; rows are upserted sorted by key, so two nodes
lock them in the same order and do not deadlock. Merging is a union, so merging a sketch twice
changes nothing: readers may re-read a row safely.

``load_counters`` rebuilds a CounterStore from the table (at the start of the evaluation job, or
for one identity in an API request); ``changed_buckets`` is what the running job reads each run.
Nodes write minute rows; the upkeep job folds those older than a day into hour rows
(``roll_up_minutes``) and deletes what is older than [reputation].counter_days (``prune_buckets``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reputation import BucketDelta, CounterStore, DistinctSketch, Identity, IdentityKind
from reputation.counters import HOUR, MINUTE
from storage.reputation_models import COUNTER_COLUMNS, CounterBucket
from storage.types import utcnow

__all__ = ["StoredBucket", "apply_deltas", "changed_buckets", "load_counters", "prune_buckets"]

_TABLE = cast(Table, CounterBucket.__table__)
_KEY = ("identity_kind", "identity_value", "seconds", "start")
# Rows per statement: keeps a flush of a busy node under PostgreSQL's 65,535 bind parameters.
_BATCH = 1000
# Minute rows serve only the 10-minute and 1-hour windows (reputation.counters.MINUTES_KEPT): after
# this long they are folded into hour rows (roll_up_minutes).
MINUTE_ROWS_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class StoredBucket:
    """One row of counter_buckets as a reader sees it (its id, for remembering what was merged)."""

    id: int
    delta: BucketDelta
    updated_at: datetime


def _key(delta: BucketDelta) -> _Key:
    return (delta.identity.kind.value, delta.identity.value, delta.seconds, delta.start)


_Key = tuple[str, str, int, datetime]


def _combine(deltas: Iterable[BucketDelta]) -> dict[_Key, tuple[dict[str, int], bytes]]:
    """Deltas summed per bucket: one statement may not touch the same row twice (PostgreSQL)."""
    combined: dict[_Key, tuple[dict[str, int], bytes]] = {}
    for delta in deltas:
        unknown = set(delta.counts) - set(COUNTER_COLUMNS)
        if unknown or delta.seconds not in (60, 3600) or any(v < 0 for v in delta.counts.values()):
            raise ValueError(f"bad BucketDelta for {delta.identity}: fields {sorted(delta.counts)}, "
                             f"seconds {delta.seconds}; the fields are {', '.join(COUNTER_COLUMNS)}")
        key = _key(delta)
        counts, sketch = combined.get(key, ({}, b""))
        for name, value in delta.counts.items():
            counts[name] = counts.get(name, 0) + value
        if delta.distinct:
            sketch = _union(sketch, delta.distinct)
        combined[key] = (counts, sketch)
    return combined


def _union(a: bytes | None, b: bytes) -> bytes:
    if not a:
        return b
    merged = DistinctSketch.from_bytes(a)
    merged.merge(DistinctSketch.from_bytes(b))
    return merged.to_bytes()


def apply_deltas(session: Session, deltas: Iterable[BucketDelta], now: datetime | None = None) -> int:
    """Add ``deltas`` (from ``CounterStore.drain_deltas()``) to the shared buckets; the caller commits.

    Returns how many bucket rows were touched. Raises ValueError on a field that is not a counter.
    """
    combined = _combine(deltas)
    if not combined:
        return 0
    stamp = now or utcnow()
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_TABLE)
    statement = statement.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={**{name: _TABLE.c[name] + statement.excluded[name] for name in COUNTER_COLUMNS},
              "updated_at": statement.excluded.updated_at})
    statement = statement.returning(_TABLE.c.id, _TABLE.c.distinct_sketch, sort_by_parameter_order=True)
    keys = sorted(combined)
    for begin in range(0, len(keys), _BATCH):
        batch = keys[begin:begin + _BATCH]
        rows = [{"identity_kind": k[0], "identity_value": k[1], "seconds": k[2], "start": k[3],
                 **{name: combined[k][0].get(name, 0) for name in COUNTER_COLUMNS},
                 "distinct_sketch": combined[k][1] or None, "updated_at": stamp} for k in batch]
        returned = session.execute(statement, rows).all()
        merges = []
        for key, (row_id, stored) in zip(batch, returned, strict=True):
            sketch = combined[key][1]
            if sketch and stored != sketch:
                merged = _union(stored, sketch)
                if merged != stored:
                    merges.append({"row_id": row_id, "sketch": merged})
        if merges:
            session.connection().execute(
                update(_TABLE).where(_TABLE.c.id == bindparam("row_id"))
                .values(distinct_sketch=bindparam("sketch")), merges)
    return len(keys)


def _stored(row: Any) -> StoredBucket:
    counts = {name: int(getattr(row, name)) for name in COUNTER_COLUMNS if getattr(row, name)}
    identity = Identity(IdentityKind(row.identity_kind), row.identity_value)
    return StoredBucket(id=row.id, updated_at=row.updated_at,
                        delta=BucketDelta(identity=identity, start=row.start, seconds=row.seconds,
                                          counts=counts, distinct=row.distinct_sketch or b""))


def _select(identities: Sequence[Identity] | None) -> Any:
    query = select(_TABLE)
    if identities is not None:
        keys = [(i.kind.value, i.value) for i in identities]
        query = query.where(tuple_(_TABLE.c.identity_kind, _TABLE.c.identity_value).in_(keys))
    return query


def load_counters(session: Session, store: CounterStore, since: datetime,
                  identities: Sequence[Identity] | None = None) -> int:
    """Merge into ``store`` every bucket starting at or after ``since`` (of ``identities``, or all).

    Returns the number of rows merged. ``since``: usually now minus 169 hours (the 7-day window
    and the baseline); older rows would be dropped by the store anyway.
    """
    query = _select(identities).where(_TABLE.c.start >= since).order_by(_TABLE.c.start)
    count = 0
    for row in session.execute(query):
        store.merge([_stored(row).delta])
        count += 1
    return count


def changed_buckets(session: Session, since: datetime) -> list[StoredBucket]:
    """Rows updated at or after ``since`` (the evaluation job merges the difference to what it saw)."""
    query = select(_TABLE).where(_TABLE.c.updated_at >= since).order_by(_TABLE.c.id)
    return [_stored(row) for row in session.execute(query)]


def prune_buckets(session: Session, now: datetime, keep: timedelta) -> int:
    """Delete buckets that started before ``now - keep``; returns how many. The caller commits."""
    result = session.execute(delete(CounterBucket).where(CounterBucket.start < now - keep),
                             execution_options={"synchronize_session": False})
    return int(getattr(result, "rowcount", 0) or 0)


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def roll_up_minutes(session: Session, before: datetime, now: datetime, hours: int = 24) -> list[StoredBucket]:
    """Fold the minute rows that started before ``before`` into hour rows; the caller commits.

    Minute rows serve only the 10-minute and 1-hour windows; kept for weeks they would be one row
    per sending identity and minute. Their counts are added to the identity's hour row (which
    every reader sums the same way: totals do not change) and the minute rows deleted, at most
    ``hours`` hours of them per call, oldest first, whole hours at a time. Distinct-recipient
    sketches are dropped: hour buckets have none. Returns the hour rows written (their new totals),
    so that the evaluation job does not merge them a second time.
    """
    minute = (_TABLE.c.seconds == MINUTE) & (_TABLE.c.start < _hour(before))
    oldest = session.scalar(select(func.min(_TABLE.c.start)).where(minute))
    if oldest is None:
        return []
    cut = min(_hour(before), _hour(oldest) + timedelta(hours=hours))
    folded = (_TABLE.c.seconds == MINUTE) & (_TABLE.c.start < cut)
    deltas = [BucketDelta(stored.delta.identity, _hour(stored.delta.start), HOUR, stored.delta.counts)
              for stored in map(_stored, session.execute(select(_TABLE).where(folded)))]
    apply_deltas(session, deltas, now)
    session.execute(delete(_TABLE).where(folded), execution_options={"synchronize_session": False})
    written = select(_TABLE).where(_TABLE.c.seconds == HOUR, _TABLE.c.updated_at == now, _TABLE.c.start < cut)
    return [_stored(row) for row in session.execute(written)]
