"""The Overview page's figures, read from the database for one moment ``now`` (UTC).

Every function takes the caller's Session and ``now`` and returns plain dataclasses, so that the
page renders them and the tests check them on both backends without HTTP. The queries aggregate
in SQL and return a bounded number of rows: the page is what an admin opens first during an
incident, when the tables are at their largest.

Where each figure comes from (the same sources and counting as the weekly report, reports/build.py):

- stopped senders: ``reputation_decisions`` in force at throttled or above, with the start of
  their ``decision_history`` entry (the row's own ``decided_at`` moves when the numbers change);
- top identities over the last 24 hours, [now - 24 h, now): complaints and block bounces (signal
  group ``block`` of shared/reasons.md) from ``events`` through ``event_identities``; sends from
  ``counter_buckets``. Outbound IPs are left out: they carry every sender's mail and have their
  own section;
- provider-wide rates per UTC day: complaints / sends and hard bounces / sends (Amazon SES's
  bounce rate); events counted once each, sends as the largest per-kind total of the day (a send
  is counted once per identity kind it is attributed to). Counters older than [reputation]
  counter_days are pruned: days without counted sends have no rate;
- outbound IP health over the last 7 days: reports.build.ip_health.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, case, func, literal_column, select
from sqlalchemy.orm import Session

from bounces.model import Reason, SignalGroup
from reports.build import Figures, IpHealth, Thresholds, figures_from_counts, ip_health
from reputation import IdentityKind, RuleSet, State
from storage.models import Event, EventIdentity, EventKind
from storage.models import Identity as IdentityRow
from storage.reputation_models import CounterBucket, DecisionHistory, DecisionRow

__all__ = ["DayFigures", "Overview", "StoppedSender", "TopIdentities", "TopLine", "daily_figures",
           "outbound_ips", "overview", "stopped_senders", "top_identities"]

_EVENTS = cast(Table, Event.__table__).c
TOP = 10  # rows of each top table
STOPPED_SHOWN = 100  # stopped senders listed (the page says how many more there are)
IPS_SHOWN = 20  # outbound IPs listed
DAYS = 30  # days of the rate charts
TOP_WINDOW = timedelta(hours=24)
IP_WINDOW = timedelta(days=7)

# Most severe first: the order of the stopped senders (reputation.State.rank, highest first).
_STOPPED = tuple(state.value for state in sorted(State, key=lambda state: -state.rank)
                 if state.rank >= State.THROTTLED.rank)
_BLOCK_REASONS = tuple(reason.value for reason in Reason if reason.group is SignalGroup.BLOCK)


@dataclass(frozen=True)
class StoppedSender:
    """A sender throttled, paused, held or blocked now: the decision in force and why."""

    kind: str
    value: str
    state: str
    action: str
    rule: str | None
    why: str  # the decision's sentence: the rule, the window, the numbers
    limit_per_hour: int | None
    since: datetime  # when it entered this state (and rule)
    until: datetime | None  # the end of the cool-down, if any

    @property
    def numbers(self) -> str:
        """``why`` without what the State, Rule and Until columns already say: the numbers.

        "paused: rule 'x': complaint_rate over 24h is 0.62 % (31 of 5000), at or above 0.50 % -
        paused until 2026-11-30 05:38 UTC, pause number 1 (1h cool-down)" (reputation.explain.
        decision_reason) reads "complaint_rate over 24h is 0.62 % (31 of 5000), at or above
        0.50 % - pause number 1 (1h cool-down)". A sentence of another shape (an admin's
        override) is kept whole.
        """
        text = self.why
        for prefix in (f"{self.state}: ", f"rule '{self.rule}': " if self.rule else None):
            if prefix is not None and text.startswith(prefix):
                text = text[len(prefix):]
        if self.until is not None:
            text = text.replace(f"- {self.state} until {self.until:%Y-%m-%d %H:%M} UTC, ", "- ", 1)
        return text


@dataclass(frozen=True)
class TopLine:
    """One identity and its count."""

    kind: str
    value: str
    count: int


@dataclass(frozen=True)
class TopIdentities:
    """The identities with the most complaints, block bounces and sends in a window."""

    since: datetime
    complaints: tuple[TopLine, ...]
    block_bounces: tuple[TopLine, ...]
    sends: tuple[TopLine, ...]


@dataclass(frozen=True)
class DayFigures:
    """One UTC day, provider-wide (``figures.complaint_rate`` / ``bounce_rate``: None without sends)."""

    day: date
    figures: Figures


@dataclass(frozen=True)
class Overview:
    """Everything the Overview page shows."""

    now: datetime
    stopped: tuple[StoppedSender, ...]
    stopped_total: int
    top: TopIdentities
    days: tuple[DayFigures, ...]
    thresholds: Thresholds
    ips: tuple[IpHealth, ...]
    ips_total: int
    blocklists: dict[str, int]


def stopped_senders(session: Session, now: datetime,
                    limit: int = STOPPED_SHOWN) -> tuple[list[StoppedSender], int]:
    """The decisions in force at throttled or above (most severe, then newest first), and how many.

    A decision whose ``until`` has passed by ``now`` no longer applies, as the policy nodes see it
    (policy/cache.py), even before the evaluation job has written the next one: not listed.
    """
    stopped = DecisionRow.state.in_(_STOPPED) & (DecisionRow.until.is_(None) | (DecisionRow.until > now))
    severity = case({state: rank for rank, state in enumerate(_STOPPED)}, value=DecisionRow.state)
    since = func.coalesce(DecisionHistory.decided_at, DecisionRow.decided_at)
    rows = session.execute(
        select(DecisionRow, since)
        .outerjoin(DecisionHistory, DecisionHistory.id == DecisionRow.history_id)
        .where(stopped).order_by(severity, since.desc(), DecisionRow.id).limit(limit))
    senders = [StoppedSender(kind=row.identity_kind, value=row.identity_value, state=row.state,
                             action=row.action, rule=row.rule, why=row.reason,
                             limit_per_hour=row.limit_per_hour, since=began, until=row.until)
               for row, began in rows]
    total = session.scalar(select(func.count()).select_from(DecisionRow).where(stopped)) or 0
    return senders, int(total)


def top_identities(session: Session, now: datetime, top: int = TOP) -> TopIdentities:
    """The ``top`` identities (outbound IPs aside) by complaints, block bounces and sends in the last 24 h."""
    since = now - TOP_WINDOW
    complaints = _top_events(session, since, now, Event.kind == EventKind.COMPLAINT.value, top)
    blocks = _top_events(session, since, now, (Event.kind == EventKind.BOUNCE.value)
                         & Event.reason.in_(_BLOCK_REASONS), top)
    total = func.sum(CounterBucket.sends)
    sends = session.execute(
        select(CounterBucket.identity_kind, CounterBucket.identity_value, total)
        .where(CounterBucket.start >= since, CounterBucket.start < now,
               CounterBucket.identity_kind != IdentityKind.IP.value)
        .group_by(CounterBucket.identity_kind, CounterBucket.identity_value)
        .having(total > 0)
        .order_by(total.desc(), CounterBucket.identity_kind, CounterBucket.identity_value).limit(top))
    return TopIdentities(since=since, complaints=complaints, block_bounces=blocks,
                         sends=tuple(TopLine(kind, value, int(n)) for kind, value, n in sends))


def _top_events(session: Session, since: datetime, now: datetime, condition: Any,
                top: int) -> tuple[TopLine, ...]:
    count = func.count()
    rows = session.execute(
        select(IdentityRow.kind, IdentityRow.value, count)
        .join(EventIdentity, EventIdentity.identity_id == IdentityRow.id)
        .join(Event, Event.id == EventIdentity.event_id)
        .where(Event.occurred_at >= since, Event.occurred_at < now, condition,
               IdentityRow.kind != IdentityKind.IP.value)
        .group_by(IdentityRow.kind, IdentityRow.value)
        .order_by(count.desc(), IdentityRow.kind, IdentityRow.value).limit(top))
    return tuple(TopLine(kind, value, int(n)) for kind, value, n in rows)


def _utc_day(session: Session, column: Any) -> Any:
    """The UTC day of a UTCDateTime column as 'YYYY-MM-DD', grouped in SQL on either backend.

    The formats are literals, not bound parameters: PostgreSQL must see the same expression in
    SELECT and GROUP BY, and two bound parameters are two different expressions to it.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return func.to_char(func.timezone(literal_column("'UTC'"), column), literal_column("'YYYY-MM-DD'"))
    if dialect == "sqlite":  # stored as the UTC wall clock's digits (storage.types.UTCDateTime)
        return func.strftime(literal_column("'%Y-%m-%d'"), column)
    raise ValueError(f"unsupported database {dialect!r}: Ricochet runs on SQLite and PostgreSQL")


def daily_figures(session: Session, now: datetime, days: int = DAYS) -> list[DayFigures]:
    """Provider-wide sends, complaints and bounces per UTC day, the ``days`` days up to ``now`` (today
    partial), oldest first."""
    today = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
    start = today - timedelta(days=days - 1)
    bucket_day = _utc_day(session, CounterBucket.start)
    per_kind: dict[str, Counter[str]] = {}
    for day, kind, total in session.execute(
            select(bucket_day, CounterBucket.identity_kind, func.sum(CounterBucket.sends))
            .where(CounterBucket.start >= start, CounterBucket.start < now)
            .group_by(bucket_day, CounterBucket.identity_kind)):
        per_kind.setdefault(day, Counter())[kind] += int(total or 0)
    event_day = _utc_day(session, Event.occurred_at)
    counts: dict[str, Counter[tuple[str, bool]]] = {}
    for day, kind, hard, n in session.execute(
            select(event_day, Event.kind, _EVENTS.hard, func.count())
            .where(Event.occurred_at >= start, Event.occurred_at < now)
            .group_by(event_day, Event.kind, _EVENTS.hard)):
        counts.setdefault(day, Counter())[(kind, bool(hard))] += int(n)
    result = []
    for offset in range(days):
        day = (start + timedelta(days=offset)).date()
        key = day.isoformat()
        sends = max(per_kind.get(key, Counter()).values(), default=0)
        result.append(DayFigures(day, figures_from_counts(sends, counts.get(key, Counter()))))
    return result


def outbound_ips(session: Session, now: datetime,
                 limit: int = IPS_SHOWN) -> tuple[list[IpHealth], int, dict[str, int]]:
    """Outbound IPs by block bounces over the last 7 days (worst first, ``limit`` of them), how many
    IPs had bounces, and the blocklists the bounce texts named."""
    ips, named = ip_health(session, now - IP_WINDOW, now)
    return ips[:limit], len(ips), named


def overview(session: Session, now: datetime, rules: RuleSet | None) -> Overview:
    """The whole page at ``now``; thresholds from ``rules`` (the rules in force), as the report does."""
    stopped, stopped_total = stopped_senders(session, now)
    ips, ips_total, named = outbound_ips(session, now)
    return Overview(now=now, stopped=tuple(stopped), stopped_total=stopped_total,
                    top=top_identities(session, now), days=tuple(daily_figures(session, now)),
                    thresholds=Thresholds.from_rules(rules), ips=tuple(ips), ips_total=ips_total,
                    blocklists=named)
