"""Per-identity counters in time buckets, and the windows and baseline rules read from them.

Two resolutions, chosen so each window is read from one of them:

- minute buckets, the last 60 minutes: the 10-minute and 1-hour windows, to the minute;
- hour buckets, the last 169 hours: the 24-hour and 7-day windows and the baseline (the 168 hours
  before the current one, so a weekly newsletter's previous issue is still in it).

A window of k buckets ends with the current, partial bucket: the 1-hour window covers 59 to 60
minutes, the 24-hour window 23 to 24 hours. ``since`` cuts a window at the bucket holding it (a
sender on probation is judged on what it did since it resumed).

Memory stays bounded and idle identities cost nothing in the hot path: only buckets that saw an
event exist; a write trims that identity's expired buckets; ``prune(now)`` (a periodic job) trims
every identity and forgets the ones left empty. Per identity and resolution, volume rows are packed
in one ``array('I')`` of (bucket, sends, recipients, freemail recipients): 16 bytes a bucket.
Bounces and complaints are rare, so they are stored sparsely as (bucket, field, count) triples.
Distinct recipients are counted with a ``DistinctSketch`` per minute bucket, so the distinct count
exists for the 10-minute and 1-hour windows only (the windows the rules need it for).

Several nodes share counts (``reputation.store.CounterStore``): with ``track_deltas=True`` every
event is also added to a pending minute-bucket ``BucketDelta``; ``drain_deltas()`` hands them
over (the caller upserts them) and ``merge()`` adds deltas from elsewhere (other nodes, or hour
buckets loaded from the database) without pending them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from reputation.model import SIGNAL_GROUPS, Identity

__all__ = [
    "BASELINE_HOURS",
    "FIELDS",
    "HOUR",
    "HOURS_KEPT",
    "MINUTE",
    "MINUTES_KEPT",
    "SIGNAL_FIELDS",
    "TOP_DOMAINS",
    "VOLUME_FIELDS",
    "Baseline",
    "BucketDelta",
    "Totals",
    "Window",
    "epoch_seconds",
]

MINUTE, HOUR = 60, 3600
MINUTES_KEPT, HOURS_KEPT = 60, 169
BASELINE_HOURS = 168

VOLUME_FIELDS = ("sends", "recipients", "freemail_recipients")
SIGNAL_FIELDS = (*(f"hard_{g.value}" for g in SIGNAL_GROUPS), *(f"soft_{g.value}" for g in SIGNAL_GROUPS),
                 "complaints")
FIELDS: tuple[str, ...] = (*VOLUME_FIELDS, *SIGNAL_FIELDS)
TOP_DOMAINS = 8  # space-saving counters kept per identity and hour (Metwally et al. 2005)


class Window(StrEnum):
    """The windows rules read: 10 minutes, 1 hour, 24 hours, 7 days."""

    TEN_MINUTES = "10m"
    HOUR = "1h"
    DAY = "24h"
    WEEK = "7d"

    @property
    def bucket_seconds(self) -> int:
        """The width of the buckets this window is read from."""
        return MINUTE if self in (Window.TEN_MINUTES, Window.HOUR) else HOUR

    @property
    def buckets(self) -> int:
        """How many buckets, the current one included, the window spans."""
        return {"10m": 10, "1h": 60, "24h": 24, "7d": 168}[self.value]


def epoch_seconds(at: datetime) -> int:
    """Whole seconds since the epoch; ``at`` must be timezone-aware (naive times are refused)."""
    if at.tzinfo is None:
        raise ValueError(f"reputation needs timezone-aware UTC datetimes, got naive {at.isoformat()}")
    return int(at.timestamp())


@dataclass(frozen=True)
class Totals:
    """The sums of one identity's counters over one window.

    ``distinct_recipients`` is None for the 24-hour and 7-day windows (not tracked there).
    ``hard`` and ``soft`` map each signal group to its bounce count.
    """

    window: Window
    sends: int
    recipients: int
    distinct_recipients: int | None
    freemail_recipients: int
    hard: Mapping[str, int]
    soft: Mapping[str, int]
    complaints: int

    def bounces(self, group: str | None = None) -> int:
        """Hard plus soft bounces, of one signal group or of all."""
        if group is None:
            return sum(self.hard.values()) + sum(self.soft.values())
        return self.hard.get(group, 0) + self.soft.get(group, 0)

    @property
    def hard_bounces(self) -> int:
        """Hard bounces of every group."""
        return sum(self.hard.values())

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly numbers, for a Decision's evidence."""
        return {"window": self.window.value, "sends": self.sends, "recipients": self.recipients,
                "distinct_recipients": self.distinct_recipients,
                "freemail_recipients": self.freemail_recipients, "complaints": self.complaints,
                "bounces": self.bounces(), "hard_bounces": dict(self.hard), "soft_bounces": dict(self.soft)}


@dataclass(frozen=True)
class Baseline:
    """Hourly sends over the 168 hours before the current one (idle hours count as 0).

    ``peak`` is the busiest hour (what volume rules compare with: a weekly newsletter's issue hour
    is its normal peak); ``median`` the typical hour; ``active_hours`` how many hours sent at all.
    """

    peak: int
    median: int
    active_hours: int


@dataclass(frozen=True)
class BucketDelta:
    """Counts added to one bucket of one identity, to share between nodes or load from storage.

    ``start`` is the bucket start (UTC, a multiple of ``seconds``); ``seconds`` is 60 (a minute
    bucket: what ``drain_deltas`` produces; merged into both resolutions) or 3600 (an hour bucket,
    e.g. history loaded from the database; merged into the hour resolution only). ``counts`` maps
    names of ``FIELDS`` to non-negative deltas (zeros may be left out); ``distinct`` is a
    ``DistinctSketch.to_bytes()`` of the recipients seen (b"" for none).
    """

    identity: Identity
    start: datetime
    seconds: int
    counts: Mapping[str, int]
    distinct: bytes = b""
