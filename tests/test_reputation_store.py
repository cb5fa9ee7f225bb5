"""Reputation's tables on SQLite and PostgreSQL: shared counters, decisions and their history.

Expected counts are the traffic the tests make (two policy nodes' sends add up; the distinct
count of 50 addresses is exact below the sketch's 64-address exact mode, reputation/sketch.py).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session

from reputation import (
    FIELDS,
    Action,
    BucketDelta,
    CounterStore,
    Decision,
    Identity,
    IdentityKind,
    State,
    Window,
)
from storage import CounterBucket, DecisionHistory, migrate, session_factory
from storage.counters import apply_deltas, changed_buckets, load_counters, prune_buckets, roll_up_minutes
from storage.engine import make_engine
from storage.reputation import current_decisions, decisions_changed_since, record_decision
from storage.reputation_models import COUNTER_COLUMNS
from tests import db

database_url, db_engine, db_session, empty_database_url = (db.database_url, db.db_engine, db.db_session,
                                                           db.empty_database_url)

NOW = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)
ALICE = Identity(IdentityKind.ACCOUNT, "alice@example.com")
SCRIPT = Identity(IdentityKind.SCRIPT, "/home/alice/public_html/contact.php")


def test_the_columns_are_reputations_fields() -> None:
    assert COUNTER_COLUMNS == FIELDS


def test_migration_0002_upgrades_0001_and_downgrades(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url, "0001")
    migrate.upgrade(empty_database_url, "0002")
    assert migrate.current(empty_database_url) == "0002"
    engine = make_engine(empty_database_url)
    try:
        assert {"counter_buckets", "reputation_decisions", "decision_history", "reputation_overrides",
                "reputation_verdicts"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    migrate.downgrade(empty_database_url, "0001")
    assert migrate.current(empty_database_url) == "0001"


def node(first: int, last: int, at: datetime = NOW) -> CounterStore:
    """A policy node that sent one message to each of a<first>..a<last-1>@gmail.com."""
    store = CounterStore(["gmail.com"], track_deltas=True)
    for i in range(first, last):
        store.record_send(ALICE, [f"a{i}@gmail.com"], at)
        store.record_send(SCRIPT, 2, at)
    return store


def test_deltas_of_two_nodes_applied_concurrently_add_up(db_engine: Engine, db_session: Session) -> None:
    sessions = session_factory(db_engine)
    nodes = [node(0, 30), node(20, 50)]
    # Each node flushes twice (what it counted, then 10 more sends), both nodes at the same time.
    batches: list[list[list[BucketDelta]]] = [[n.drain_deltas()] for n in nodes]
    for index, (n, first) in enumerate(zip(nodes, (30, 50), strict=True)):
        for i in range(first, first + 10):
            n.record_send(ALICE, [f"a{i}@gmail.com"], NOW)
        batches[index].append(n.drain_deltas())
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def flush(mine: list[list[BucketDelta]]) -> None:
        try:
            start.wait()
            for deltas in mine:
                with sessions() as session:
                    apply_deltas(session, deltas, NOW)
                    session.commit()
        except Exception as error:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=flush, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    store = CounterStore(["gmail.com"])
    assert load_counters(db_session, store, NOW - timedelta(hours=169)) == 2  # one row per identity
    totals = store.window_totals(ALICE, Window.TEN_MINUTES, NOW)
    # 30 + 30 sends, then 10 + 10; a0..a59 are 60 distinct addresses, all at gmail.com.
    assert (totals.sends, totals.recipients, totals.freemail_recipients) == (80, 80, 80)
    assert totals.distinct_recipients == 60
    script = store.window_totals(SCRIPT, Window.HOUR, NOW)
    assert (script.sends, script.recipients, script.distinct_recipients) == (60, 120, 0)


def test_load_counters_filters_by_identity_and_time(db_session: Session) -> None:
    apply_deltas(db_session, node(0, 5).drain_deltas(), NOW)
    apply_deltas(db_session, node(0, 7, NOW - timedelta(hours=200)).drain_deltas(), NOW)
    db_session.commit()
    store = CounterStore()
    assert load_counters(db_session, store, NOW - timedelta(hours=169), [SCRIPT]) == 1
    assert ALICE not in store and store.window_totals(SCRIPT, Window.DAY, NOW).sends == 5
    assert len(changed_buckets(db_session, NOW)) == 4
    assert prune_buckets(db_session, NOW, timedelta(days=8)) == 2
    db_session.commit()
    assert db_session.scalar(select(func.count()).select_from(CounterBucket)) == 2


def decision(state: State, rule: str | None, at: datetime, strikes: int = 0) -> Decision:
    ladder = {"state": state.value, "rule": rule, "strikes": strikes}
    return Decision(identity=ALICE, state=state, action={State.OK: Action.ALLOW, State.PAUSED: Action.DEFER,
                                                         State.WATCH: Action.ALLOW}[state],
                    rule=rule, reason=f"{state.value} by {rule}", limit_per_hour=None, until=None,
                    evidence={"ladder": ladder, "at": at}, decided_at=at)


def test_decisions_in_force_and_their_history(db_session: Session) -> None:
    row, changed = record_decision(db_session, decision(State.OK, None, NOW), NOW)
    assert (row, changed) == (None, False)  # ok and never decided: nothing stored
    record_decision(db_session, decision(State.PAUSED, "complaint-rate-pause", NOW, 1), NOW)
    same, changed = record_decision(db_session, decision(State.PAUSED, "complaint-rate-pause", NOW, 1),
                                    NOW + timedelta(seconds=5))
    assert not changed and same is not None and same.updated_at == NOW
    later = NOW + timedelta(hours=1)
    record_decision(db_session, decision(State.WATCH, "complaint-rate-pause", later, 1), later)
    db_session.commit()
    assert [(d.state, d.evidence["at"]) for d in current_decisions(db_session)] == [
        (State.WATCH, later.isoformat())]
    assert decisions_changed_since(db_session, later) and not decisions_changed_since(
        db_session, later + timedelta(seconds=1))
    history = db_session.scalars(select(DecisionHistory).order_by(DecisionHistory.id)).all()
    assert [(h.state, h.outcome, h.ended_at) for h in history] == [
        ("paused", "auto_resumed", later), ("watch", None, None)]


def test_minute_rows_older_than_a_day_are_folded_into_hour_rows(db_session: Session) -> None:
    two_days_ago = (NOW - timedelta(days=2)).replace(second=0)  # the start of an hour
    apply_deltas(db_session, node(0, 3, two_days_ago + timedelta(minutes=5)).drain_deltas(), NOW)
    apply_deltas(db_session, node(3, 7, two_days_ago + timedelta(minutes=40)).drain_deltas(), NOW)
    apply_deltas(db_session, node(0, 4, NOW - timedelta(hours=2)).drain_deltas(), NOW)
    db_session.commit()

    def sends() -> dict[tuple[str, int, datetime], int]:
        rows = db_session.execute(select(CounterBucket.identity_value, CounterBucket.seconds,
                                         CounterBucket.start, CounterBucket.sends))
        return {(value, seconds, start): count for value, seconds, start, count in rows}

    before = sends()
    written = roll_up_minutes(db_session, NOW - timedelta(days=1), NOW)
    db_session.commit()
    after = sends()
    # The 3 + 4 sends of two days ago are one hour row per identity now; two hours ago is untouched.
    for value in {key[0] for key in before}:
        old = {k: v for k, v in before.items() if k[0] == value and k[2] < NOW - timedelta(days=1)}
        assert after[(value, 3600, two_days_ago)] == sum(old.values())
        assert not [k for k in after if k[0] == value and k[1] == 60 and k[2] < NOW - timedelta(days=1)]
    recent = {k: v for k, v in before.items() if k[2] >= NOW - timedelta(days=1)}
    assert recent and all(after[k] == v for k, v in recent.items())
    assert sum(after.values()) == sum(before.values())
    assert {(w.delta.seconds, w.delta.start) for w in written} == {(3600, two_days_ago)}
    assert roll_up_minutes(db_session, NOW - timedelta(days=1), NOW) == []  # nothing left to fold
