"""``CounterStore``: the in-memory counters of every identity (layout in reputation/counters.py)."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from reputation.counters import (
    BASELINE_HOURS,
    FIELDS,
    HOUR,
    HOURS_KEPT,
    MINUTE,
    MINUTES_KEPT,
    SIGNAL_FIELDS,
    TOP_DOMAINS,
    VOLUME_FIELDS,
    Baseline,
    BucketDelta,
    Totals,
    Window,
    epoch_seconds,
)
from reputation.model import SIGNAL_GROUPS, Identity
from reputation.sketch import DistinctSketch, address_hash

__all__ = ["CounterStore"]

_NV = len(VOLUME_FIELDS)
_MAX = 0xFFFFFFFF  # array('I') cells: counts saturate rather than overflow
_SIGNAL_INDEX = {name: index for index, name in enumerate(SIGNAL_FIELDS)}
_COMPLAINTS = _SIGNAL_INDEX["complaints"]


class _Track:
    """One identity's buckets (see the module docstring for the layout)."""

    __slots__ = ("domains", "hour_signals", "hours", "minute_signals", "minutes", "sketches")

    def __init__(self) -> None:
        self.minutes: array[int] | None = None  # (minute, sends, recipients, freemail) rows
        self.hours: array[int] | None = None  # (hour, sends, recipients, freemail) rows
        self.minute_signals: array[int] | None = None  # (minute, field, count) triples
        self.hour_signals: array[int] | None = None  # (hour, field, count) triples
        self.sketches: list[tuple[int, DistinctSketch]] | None = None  # (minute, sketch)
        self.domains: tuple[int, dict[str, int], dict[str, int]] | None = None  # (hour, this, previous)

    def empty(self) -> bool:
        return not (self.minutes or self.hours or self.minute_signals or self.hour_signals)


def _add_row(rows: array[int], n: int, sends: int, recipients: int, freemail: int) -> None:
    """Add to the volume row of bucket ``n``, creating it in order (usually at the end)."""
    i = len(rows) - 4
    while i >= 0 and rows[i] > n:
        i -= 4
    try:
        if i >= 0 and rows[i] == n:
            rows[i + 1] += sends
            rows[i + 2] += recipients
            rows[i + 3] += freemail
        else:
            rows[i + 4:i + 4] = array("I", (n, sends, recipients, freemail))
    except OverflowError:  # past 2**32 - 1 in one bucket: saturate (never in practice)
        if i >= 0 and rows[i] == n:
            for f, v in ((1, sends), (2, recipients), (3, freemail)):
                rows[i + f] = min(rows[i + f] + v, _MAX)
        else:
            rows[i + 4:i + 4] = array("I", (n, *(min(v, _MAX) for v in (sends, recipients, freemail))))


def _add_signal(triples: array[int], n: int, field: int, count: int) -> None:
    """Add to the (bucket ``n``, ``field``) triple, creating it in order."""
    i = len(triples) - 3
    while i >= 0 and triples[i] >= n:
        if triples[i] == n and triples[i + 1] == field:
            triples[i + 2] = min(triples[i + 2] + count, _MAX)
            return
        i -= 3
    triples[i + 3:i + 3] = array("I", (n, field, min(count, _MAX)))


def _trim(rows: array[int] | None, stride: int, cutoff: int) -> array[int] | None:
    """Drop rows of buckets before ``cutoff``; None when nothing is left (an empty array costs 64 B)."""
    if not rows:
        return None
    if rows[0] >= cutoff:
        return rows
    i = 0
    while i < len(rows) and rows[i] < cutoff:
        i += stride
    del rows[:i]
    return rows or None


class CounterStore:
    """Counters of sends, recipients, bounces and complaints per identity, in minute and hour buckets.

    ``freemail_domains``: recipient domains counted as freemail (gmail.com, outlook.com, ...: the
    ``[freemail]`` list of config/rules.toml, ``RuleSet.freemail_domains``). With
    ``track_deltas=True`` the store also keeps what it counted since the last ``drain_deltas()``;
    drain it every few seconds, or it grows with the traffic.
    """

    def __init__(self, freemail_domains: Iterable[str] = (), *, track_deltas: bool = False) -> None:
        self._freemail = frozenset(d.strip().lower() for d in freemail_domains)
        self._tracks: dict[Identity, _Track] = {}
        self._pending: dict[tuple[Identity, int], tuple[list[int], DistinctSketch | None]] | None = (
            {} if track_deltas else None)

    def __len__(self) -> int:
        return len(self._tracks)

    def __contains__(self, identity: object) -> bool:
        return identity in self._tracks

    def identities(self) -> list[Identity]:
        """The identities that have counts."""
        return list(self._tracks)

    # -- events ---------------------------------------------------------------------------------

    def record_send(self, identity: Identity, recipients: Sequence[str] | int, at: datetime) -> None:
        """Count one message sent by ``identity`` at ``at`` to ``recipients`` (addresses, or a count).

        With addresses the freemail share, distinct recipients and top domains are counted too;
        with a bare count only sends and recipients are.
        """
        ts = epoch_seconds(at)
        track = self._track(identity, ts)
        minute = ts // MINUTE
        if isinstance(recipients, int):
            self._add_volume(track, minute, 1, max(recipients, 0), 0)
            if self._pending is not None:
                counts = self._pending_for(identity, minute, False)[0]
                counts[0] += 1
                counts[1] += max(recipients, 0)
            return
        freemail = 0
        hashes: list[int] = []
        domains: list[str] = []
        for address in recipients:  # one pass: this is the policy service's hot path
            domain = address.rpartition("@")[2].strip().strip(">").lower()
            domains.append(domain)
            freemail += domain in self._freemail
            hashes.append(address_hash(address))
        self._add_volume(track, minute, 1, len(hashes), freemail)
        if hashes:
            sketch = self._sketch(track, minute)
            for value in hashes:
                sketch.add_hash(value)
            self._count_domains(track, ts // HOUR, domains)
        if self._pending is not None:
            counts, pending_sketch = self._pending_for(identity, minute, bool(hashes))
            counts[0] += 1
            counts[1] += len(hashes)
            counts[2] += freemail
            if pending_sketch is not None:
                for value in hashes:
                    pending_sketch.add_hash(value)

    def record_bounce(self, identity: Identity, group: str, hard: bool, at: datetime, count: int = 1) -> None:
        """Count ``count`` bounced recipients of signal ``group`` (a ``SignalGroup`` value).

        Raises ValueError for a group that is not a bounce group (``complaint``: use
        ``record_complaint``; ``none``: auto-replies and success DSNs are not counted).
        """
        name = f"{'hard' if hard else 'soft'}_{group}"
        if name not in _SIGNAL_INDEX:
            raise ValueError(f"unknown bounce signal group {group!r}; the groups are "
                             f"{', '.join(g.value for g in SIGNAL_GROUPS)}")
        self._add_signal_event(identity, _SIGNAL_INDEX[name], count, at)

    def record_complaint(self, identity: Identity, at: datetime, count: int = 1) -> None:
        """Count ``count`` complaints (feedback-loop reports) against ``identity``."""
        self._add_signal_event(identity, _COMPLAINTS, count, at)

    # -- reading --------------------------------------------------------------------------------

    def window_totals(self, identity: Identity, window: Window | str, now: datetime,
                      since: datetime | None = None) -> Totals:
        """The sums over ``window`` ending at ``now`` (and starting no earlier than ``since``)."""
        window = Window(window)
        width = window.bucket_seconds
        hi = epoch_seconds(now) // width
        lo = hi - window.buckets + 1
        if since is not None:
            since_minute = epoch_seconds(since) // MINUTE
            if width == HOUR and since_minute > epoch_seconds(now) // MINUTE - MINUTES_KEPT:
                # A recent cut is read from the minute rows: an hour bucket would bring back up to an
                # hour of what was done before the sender resumed.
                width, hi, lo = MINUTE, epoch_seconds(now) // MINUTE, since_minute
            else:
                lo = max(lo, epoch_seconds(since) // width)
        track = self._tracks.get(identity)
        volume = [0] * _NV
        signals = [0] * len(SIGNAL_FIELDS)
        distinct: int | None = None if width == HOUR else 0
        if track is not None:
            rows = track.minutes if width == MINUTE else track.hours
            triples = track.minute_signals if width == MINUTE else track.hour_signals
            for i in range(len(rows or ()) - 4, -1, -4):
                assert rows is not None
                if rows[i] < lo:
                    break
                if rows[i] <= hi:
                    for f in range(_NV):
                        volume[f] += rows[i + 1 + f]
            for i in range(len(triples or ()) - 3, -1, -3):
                assert triples is not None
                if triples[i] < lo:
                    break
                if triples[i] <= hi:
                    signals[triples[i + 1]] += triples[i + 2]
            if width == MINUTE and track.sketches:
                union = DistinctSketch()
                for minute, sketch in track.sketches:
                    if lo <= minute <= hi:
                        union.merge(sketch)
                distinct = union.estimate()
        groups = len(SIGNAL_GROUPS)
        return Totals(window=window, sends=volume[0], recipients=volume[1], distinct_recipients=distinct,
                      freemail_recipients=volume[2],
                      hard={g.value: signals[i] for i, g in enumerate(SIGNAL_GROUPS)},
                      soft={g.value: signals[groups + i] for i, g in enumerate(SIGNAL_GROUPS)},
                      complaints=signals[_COMPLAINTS])

    def baseline(self, identity: Identity, now: datetime) -> Baseline:
        """Hourly sends over the 168 hours before the current hour (see ``Baseline``)."""
        hour = epoch_seconds(now) // HOUR
        lo = hour - BASELINE_HOURS
        track = self._tracks.get(identity)
        hourly = [0] * BASELINE_HOURS
        rows = track.hours if track is not None else None
        for i in range(0, len(rows or ()), 4):
            assert rows is not None
            if lo <= rows[i] < hour:
                hourly[rows[i] - lo] = rows[i + 1]
        ordered = sorted(hourly)
        return Baseline(peak=ordered[-1], median=ordered[BASELINE_HOURS // 2],
                        active_hours=sum(1 for v in hourly if v))

    def top_domains(self, identity: Identity, now: datetime, n: int = 5) -> list[tuple[str, int]]:
        """The recipient domains this identity sent most to in this hour and the previous one.

        Approximate (space-saving with 8 counters an hour): a domain's count may be over-stated by
        at most the smallest count kept; good for evidence, not for rules.
        """
        track = self._tracks.get(identity)
        if track is None or track.domains is None:
            return []
        hour, current, previous = track.domains
        now_hour = epoch_seconds(now) // HOUR
        merged: dict[str, int] = {}
        for age, counts in ((now_hour - hour, current), (now_hour - hour + 1, previous)):
            if 0 <= age <= 1:
                for domain, count in counts.items():
                    merged[domain] = merged.get(domain, 0) + count
        return sorted(merged.items(), key=lambda item: (-item[1], item[0]))[:n]

    # -- upkeep and sharing ---------------------------------------------------------------------

    def prune(self, now: datetime) -> int:
        """Trim every identity's expired buckets and forget the empty ones; returns how many."""
        ts = epoch_seconds(now)
        forgotten = [identity for identity, track in self._tracks.items() if not self._trim(track, ts)]
        for identity in forgotten:
            del self._tracks[identity]
        return len(forgotten)

    def drain_deltas(self) -> list[BucketDelta]:
        """What was counted since the last drain, as minute-bucket deltas (empty without tracking)."""
        if not self._pending:
            return []
        pending, self._pending = self._pending, {}
        return [BucketDelta(identity=identity, start=datetime.fromtimestamp(minute * MINUTE, UTC),
                            seconds=MINUTE,
                            counts={name: value for name, value in zip(FIELDS, counts, strict=True) if value},
                            distinct=sketch.to_bytes() if sketch is not None else b"")
                for (identity, minute), (counts, sketch) in pending.items()]

    def merge(self, deltas: Iterable[BucketDelta]) -> None:
        """Add deltas counted elsewhere; raises ValueError on an unknown field or bucket width."""
        for delta in deltas:
            if delta.seconds not in (MINUTE, HOUR):
                raise ValueError(f"a BucketDelta covers 60 or 3600 seconds, got {delta.seconds}")
            unknown = set(delta.counts) - set(FIELDS)
            if unknown or any(v < 0 for v in delta.counts.values()):
                raise ValueError(f"bad BucketDelta counts {dict(delta.counts)!r}; the fields are "
                                 f"{', '.join(FIELDS)}, with counts >= 0")
            ts = epoch_seconds(delta.start)
            track = self._track(delta.identity, ts)
            n = ts // delta.seconds
            sends, recipients, freemail = (delta.counts.get(f, 0) for f in VOLUME_FIELDS)
            if sends or recipients or freemail:
                if delta.seconds == MINUTE:
                    self._add_volume(track, n, sends, recipients, freemail)
                else:
                    track.hours = track.hours if track.hours is not None else array("I")
                    _add_row(track.hours, n, sends, recipients, freemail)
            for name, count in delta.counts.items():
                if count and name in _SIGNAL_INDEX:
                    self._add_signal(track, ts, _SIGNAL_INDEX[name], count, minutes=delta.seconds == MINUTE)
            if delta.distinct and delta.seconds == MINUTE:
                self._sketch(track, n).merge(DistinctSketch.from_bytes(delta.distinct))

    # -- internals ------------------------------------------------------------------------------

    def _track(self, identity: Identity, ts: int) -> _Track:
        track = self._tracks.get(identity)
        if track is None:
            track = self._tracks[identity] = _Track()
        elif track.minutes and track.minutes[0] <= ts // MINUTE - MINUTES_KEPT:
            self._trim(track, ts)  # pruning on write: only when the oldest minute has expired
        return track

    def _add_volume(self, track: _Track, minute: int, sends: int, recipients: int, freemail: int) -> None:
        if track.minutes is None:
            track.minutes = array("I")
        if track.hours is None:
            track.hours = array("I")
        _add_row(track.minutes, minute, sends, recipients, freemail)
        _add_row(track.hours, minute * MINUTE // HOUR, sends, recipients, freemail)

    def _add_signal_event(self, identity: Identity, field: int, count: int, at: datetime) -> None:
        ts = epoch_seconds(at)
        self._add_signal(self._track(identity, ts), ts, field, count, minutes=True)
        if self._pending is not None:
            self._pending_for(identity, ts // MINUTE, False)[0][len(VOLUME_FIELDS) + field] += count

    def _add_signal(self, track: _Track, ts: int, field: int, count: int, *, minutes: bool) -> None:
        if minutes:
            track.minute_signals = track.minute_signals if track.minute_signals is not None else array("I")
            _add_signal(track.minute_signals, ts // MINUTE, field, count)
        track.hour_signals = track.hour_signals if track.hour_signals is not None else array("I")
        _add_signal(track.hour_signals, ts // HOUR, field, count)

    def _sketch(self, track: _Track, minute: int) -> DistinctSketch:
        sketches = track.sketches if track.sketches is not None else []
        track.sketches = sketches
        for m, sketch in reversed(sketches):
            if m == minute:
                return sketch
            if m < minute:
                break
        sketch = DistinctSketch()
        sketches.append((minute, sketch))
        if len(sketches) > 1 and sketches[-2][0] > minute:  # a merged delta from the past
            sketches.sort(key=lambda pair: pair[0])
        return sketch

    def _count_domains(self, track: _Track, hour: int, domains: Iterable[str]) -> None:
        if track.domains is None or track.domains[0] != hour:
            previous = track.domains[1] if track.domains is not None and track.domains[0] == hour - 1 else {}
            track.domains = (hour, {}, previous)
        counts = track.domains[1]
        for domain in domains:
            if domain in counts:
                counts[domain] += 1
            elif len(counts) < TOP_DOMAINS:
                counts[domain] = 1
            else:  # space-saving: the newcomer takes the smallest counter's place and count
                smallest = min(counts, key=counts.__getitem__)
                counts[domain] = counts.pop(smallest) + 1

    def _pending_for(self, identity: Identity, minute: int,
                     with_sketch: bool) -> tuple[list[int], DistinctSketch | None]:
        assert self._pending is not None
        entry = self._pending.get((identity, minute))
        if entry is None:
            entry = self._pending[(identity, minute)] = ([0] * len(FIELDS), None)
        if with_sketch and entry[1] is None:
            entry = self._pending[(identity, minute)] = (entry[0], DistinctSketch())
        return entry

    @staticmethod
    def _trim(track: _Track, ts: int) -> bool:
        """Drop expired buckets of ``track``; False when nothing is left of it."""
        minute_cut, hour_cut = ts // MINUTE - MINUTES_KEPT + 1, ts // HOUR - HOURS_KEPT + 1
        track.minutes = _trim(track.minutes, 4, minute_cut)
        track.minute_signals = _trim(track.minute_signals, 3, minute_cut)
        track.hours = _trim(track.hours, 4, hour_cut)
        track.hour_signals = _trim(track.hour_signals, 3, hour_cut)
        if track.sketches:
            track.sketches = [pair for pair in track.sketches if pair[0] >= minute_cut] or None
        if track.domains is not None and track.domains[0] < ts // HOUR - 1:
            track.domains = None
        return not track.empty()
