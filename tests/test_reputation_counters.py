"""reputation counters: windows, baseline, distinct counting, deltas between nodes, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reputation import BucketDelta, CounterStore, DistinctSketch, Identity, IdentityKind, Window

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ALICE = Identity(IdentityKind.ACCOUNT, "alice@example.net")
BOB = Identity(IdentityKind.SCRIPT, "/home/bob/public_html/form.php")
MIN, HOUR = timedelta(minutes=1), timedelta(hours=1)


def store(**kw: object) -> CounterStore:
    return CounterStore(["gmail.com", "yahoo.com"], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("window", "age", "counted"), [
    # A window of k buckets ends with the current (partial) minute or hour.
    ("10m", 9 * MIN, True), ("10m", 10 * MIN, False),
    ("1h", 59 * MIN, True), ("1h", 60 * MIN, False),
    ("24h", 23 * HOUR, True), ("24h", 24 * HOUR, False),
    ("7d", 167 * HOUR, True), ("7d", 168 * HOUR, False),
])
def test_window_edges(window: str, age: timedelta, counted: bool) -> None:
    s = store()
    now = T0 + timedelta(days=8)
    s.record_send(ALICE, ["a@example.org", "b@gmail.com"], now - age)
    totals = s.window_totals(ALICE, window, now)
    assert (totals.sends, totals.recipients) == ((1, 2) if counted else (0, 0))


def test_totals_count_every_field() -> None:
    s = store()
    s.record_send(ALICE, ["x@gmail.com", "y@GMAIL.COM", "z@example.org", "x@gmail.com"], T0)
    s.record_send(ALICE, 5, T0 + MIN)  # a bare count (END-OF-MESSAGE recipient_count): no addresses
    s.record_bounce(ALICE, "list_quality", True, T0 + 2 * MIN)
    s.record_bounce(ALICE, "block", False, T0 + 2 * MIN, count=3)
    s.record_complaint(ALICE, T0 + 3 * MIN)
    t = s.window_totals(ALICE, Window.TEN_MINUTES, T0 + 5 * MIN)
    assert (t.sends, t.recipients, t.freemail_recipients, t.complaints) == (2, 9, 3, 1)
    assert t.distinct_recipients == 3  # x@gmail.com twice
    assert (t.hard["list_quality"], t.soft["block"], t.bounces(), t.hard_bounces) == (1, 3, 4, 1)
    assert s.window_totals(ALICE, "24h", T0 + 5 * MIN).distinct_recipients is None  # minute-level only
    assert s.window_totals(BOB, "1h", T0).sends == 0


def test_since_cuts_a_window_to_the_minute() -> None:
    s = store()
    for minute in range(30):
        s.record_send(ALICE, ["a@example.org"], T0 + minute * MIN)
    # A recent cut is read from minute buckets even for a 24-hour window.
    assert s.window_totals(ALICE, "24h", T0 + 29 * MIN, since=T0 + 20 * MIN).sends == 10
    assert s.window_totals(ALICE, "10m", T0 + 29 * MIN, since=T0 + 25 * MIN).sends == 5


def test_baseline_is_the_past_week_before_the_current_hour() -> None:
    s = store()
    now = T0 + timedelta(days=7)
    for day in range(7):  # one busy hour a day: 100, 200, ... 700 messages
        for _ in range((day + 1) * 100):
            s.record_send(ALICE, 1, now - timedelta(days=7 - day))
    for _ in range(5000):  # the current hour is not part of its own baseline
        s.record_send(ALICE, 1, now)
    b = s.baseline(ALICE, now)
    assert (b.peak, b.median, b.active_hours) == (700, 0, 7)


def test_distinct_is_exact_when_small_and_close_when_large() -> None:
    small = DistinctSketch()
    for i in range(50):
        small.add(f"user{i % 40}@example.org")
    assert small.estimate() == 40
    large = DistinctSketch()
    for i in range(5000):
        large.add(f"user{i}@example.org")
    assert abs(large.estimate() - 5000) < 5000 * 0.2  # 6.5 % standard error: 3 sigma is ~20 %


def test_sketch_bytes_round_trip_and_refuse_garbage() -> None:
    for n in (3, 500):
        sketch = DistinctSketch()
        for i in range(n):
            sketch.add(f"u{i}@example.org")
        assert DistinctSketch.from_bytes(sketch.to_bytes()).estimate() == sketch.estimate()
    with pytest.raises(ValueError, match="not a DistinctSketch"):
        DistinctSketch.from_bytes(b"Zgarbage")


def test_drained_deltas_rebuild_the_same_counts_on_another_node() -> None:
    node_a, node_b = store(track_deltas=True), store()
    for i in range(120):
        node_a.record_send(ALICE, [f"u{i}@gmail.com", f"v{i}@example.org"], T0 + i * timedelta(seconds=15))
    node_a.record_bounce(ALICE, "rate", False, T0 + 5 * MIN)
    node_a.record_complaint(BOB, T0 + 6 * MIN)
    deltas = node_a.drain_deltas()
    assert all(d.seconds == 60 for d in deltas) and node_a.drain_deltas() == []
    node_b.merge(deltas)
    now = T0 + 30 * MIN
    for identity in (ALICE, BOB):
        for window in Window:
            assert node_b.window_totals(identity, window, now) == node_a.window_totals(identity, window, now)


def test_merge_of_hour_history_feeds_long_windows_only() -> None:
    s = store()
    counts = {"sends": 40, "recipients": 90, "hard_list_quality": 4}
    s.merge([BucketDelta(ALICE, T0 - 3 * HOUR, 3600, counts)])
    assert s.window_totals(ALICE, "24h", T0).sends == 40
    assert s.window_totals(ALICE, "24h", T0).hard["list_quality"] == 4
    assert s.window_totals(ALICE, "1h", T0).sends == 0
    assert s.baseline(ALICE, T0).peak == 40


@pytest.mark.parametrize("delta", [
    BucketDelta(ALICE, T0, 600, {"sends": 1}),
    BucketDelta(ALICE, T0, 60, {"messages": 1}),
    BucketDelta(ALICE, T0, 60, {"sends": -1}),
])
def test_merge_refuses_bad_deltas(delta: BucketDelta) -> None:
    with pytest.raises(ValueError):
        store().merge([delta])


def test_refuses_naive_times_and_unknown_groups() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store().record_send(ALICE, 1, datetime(2026, 11, 2, 9, 0))
    with pytest.raises(ValueError, match="unknown bounce signal group 'complaint'"):
        store().record_bounce(ALICE, "complaint", False, T0)


def test_prune_forgets_idle_identities_and_writes_trim_old_buckets() -> None:
    s = store()
    s.record_send(ALICE, ["a@example.org"], T0)
    s.record_bounce(BOB, "block", False, T0)
    assert s.prune(T0 + timedelta(days=7)) == 0  # still inside the 169 hours kept
    assert s.prune(T0 + timedelta(days=7, hours=1)) == 2 and len(s) == 0
    s.record_send(ALICE, ["a@example.org"], T0)
    s.record_send(ALICE, ["a@example.org"], T0 + 2 * HOUR)  # the first minute bucket expires on write
    assert s.window_totals(ALICE, "7d", T0 + 2 * HOUR).sends == 2


def test_top_domains_of_the_last_two_hours() -> None:
    s = store()
    for i in range(30):
        s.record_send(ALICE, [f"u{i}@gmail.com"], T0 + i * MIN)
    for i in range(10):
        s.record_send(ALICE, [f"u{i}@yahoo.com", f"w{i}@example.org"], T0 + HOUR + i * MIN)
    assert s.top_domains(ALICE, T0 + HOUR + 20 * MIN, n=2) == [("gmail.com", 30), ("example.org", 10)]
    assert s.top_domains(ALICE, T0 + 3 * HOUR) == []
