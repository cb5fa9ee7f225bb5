"""The weekly reputation report's data, read from the database for one ISO week (UTC).

Where each figure comes from:

- sends: ``counter_buckets`` (what the policy nodes counted), summed per identity over the week;
  a send is counted once per identity kind it is attributed to, so the provider-wide figure is the
  largest of the per-kind totals (the kind that saw the most sends).
- complaints and bounces: ``events`` that occurred in the week; provider-wide each event counts
  once (attributed or not), per identity through ``event_identities``. The bounce rate is hard
  bounces / sends, as Amazon SES measures it; the complaint rate is complaints / sends.
- thresholds: from the rules in force (the complaint_rate rule that throttles: Gmail's and Yahoo's
  0.3 %; the hard_bounce_rate rules: SES's 5 % review and 10 % pause), defaults when absent.
- decisions: ``decision_history`` entries of throttled and above that overlapped the week, and how
  each ended (the admin's verdict when there is one, else the outcome).
- rule precision: ``reputation.rule_precision`` over every verdict given before the week's end.
- outbound IP health: block bounces per ``ip`` identity, and the blocklists the bounce diagnostics
  name (the substring table of ``bounces.blocklists``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from bounces.blocklists import BLOCKLISTS, blocklists_named
from bounces.model import Reason
from reputation import Identity, IdentityKind, RulePrecision, RuleSet, Verdict, VerdictKind, rule_precision
from storage.models import Event, EventIdentity, EventKind
from storage.models import Identity as IdentityRow
from storage.reputation_models import CounterBucket, DecisionHistory, VerdictRow

__all__ = ["BLOCKLISTS", "DecisionLine", "Figures", "IpHealth", "Report", "SenderLine", "Thresholds",
           "blocklists_named", "build_report", "figures_from_counts", "ip_health", "last_week", "parse_week",
           "report_file", "verdict_precision", "week_bounds"]

_EVENTS = cast(Table, Event.__table__).c
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_ACTED = ("throttled", "paused", "held", "blocked")
_REPORTED_KINDS = (IdentityKind.CUSTOMER.value, IdentityKind.ACCOUNT.value)
_BLOCK_REASONS = tuple(reason.value for reason in Reason if reason.group.value == "block")


def parse_week(text: str) -> str:
    """'2026-W48' (checked: a real ISO week) -> '2026-W48'; ValueError with the fix otherwise."""
    match = _WEEK.fullmatch(text.strip())
    if match is not None:
        try:
            date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
            return f"{match.group(1)}-W{match.group(2)}"
        except ValueError:
            pass
    raise ValueError(f"not an ISO week: {text!r}; write it as YYYY-Www, such as 2026-W48")


def report_file(directory: Path, week: str, extension: str) -> Path:
    """Where the report of ``week`` (checked) is stored in ``extension`` (html, csv, json)."""
    return directory / f"{parse_week(week)}.{extension}"


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """The week's start (Monday 00:00 UTC) and end (the next Monday 00:00 UTC, excluded)."""
    year, number = (int(part) for part in parse_week(week).split("-W"))
    start = datetime.combine(date.fromisocalendar(year, number, 1), datetime.min.time(), UTC)
    return start, start + timedelta(days=7)


def last_week(now: datetime) -> str:
    """The ISO week before the one ``now`` (UTC) is in."""
    year, number, _ = (now.astimezone(UTC) - timedelta(days=7)).isocalendar()
    return f"{year}-W{number:02d}"


@dataclass(frozen=True)
class Figures:
    """Sends, complaints and bounces of one week, with the rates (None without sends)."""

    sends: int = 0
    complaints: int = 0
    bounces: int = 0
    hard_bounces: int = 0

    @property
    def complaint_rate(self) -> float | None:
        """complaints / sends."""
        return self.complaints / self.sends if self.sends else None

    @property
    def bounce_rate(self) -> float | None:
        """hard bounces / sends (Amazon SES's bounce rate)."""
        return self.hard_bounces / self.sends if self.sends else None

    def as_dict(self) -> dict[str, Any]:
        """The counts and the rates."""
        return {"sends": self.sends, "complaints": self.complaints, "bounces": self.bounces,
                "hard_bounces": self.hard_bounces, "complaint_rate": self.complaint_rate,
                "bounce_rate": self.bounce_rate}


@dataclass(frozen=True)
class Thresholds:
    """The rates the report compares against (fractions)."""

    complaint_rate: float = 0.003  # Gmail and Yahoo, February 2024 sender guidelines
    bounce_review: float = 0.05  # Amazon SES reviews an account
    bounce_pause: float = 0.10  # Amazon SES may pause it

    @classmethod
    def from_rules(cls, rules: RuleSet | None) -> Thresholds:
        """The thresholds of the rules in force, the defaults where no rule says."""
        if rules is None:
            return cls()
        complaint = [r.threshold for r in rules.rules if r.metric.value == "complaint_rate"
                     and r.state.value == "throttled"]
        bounce = sorted(r.threshold for r in rules.rules if r.metric.value == "hard_bounce_rate")
        default = cls()
        return cls(complaint_rate=complaint[0] if complaint else default.complaint_rate,
                   bounce_review=bounce[0] if bounce else default.bounce_review,
                   bounce_pause=bounce[-1] if len(bounce) > 1 else default.bounce_pause)


@dataclass(frozen=True)
class SenderLine:
    """One customer or account: this week and last week."""

    kind: str
    value: str
    week: Figures
    previous: Figures


@dataclass(frozen=True)
class DecisionLine:
    """A sender throttled, paused, held or blocked during the week, and how it ended."""

    kind: str
    value: str
    state: str
    rule: str | None
    decided_at: datetime
    ended_at: datetime | None
    ended: str  # confirmed, false_positive, auto_resumed, admin_resumed, ..., or ongoing


@dataclass(frozen=True)
class IpHealth:
    """One outbound IP: its block bounces and the blocklists its bounces named."""

    ip: str
    block_bounces: int
    blocklists: dict[str, int]


@dataclass
class Report:
    """Everything the weekly report shows (render.py turns it into HTML, CSV and JSON)."""

    week: str
    start: datetime
    end: datetime
    thresholds: Thresholds
    provider: Figures
    previous: Figures
    senders: list[SenderLine] = field(default_factory=list)
    bounce_groups: dict[str, int] = field(default_factory=dict)
    decisions: list[DecisionLine] = field(default_factory=list)
    precision: list[dict[str, Any]] = field(default_factory=list)
    ips: list[IpHealth] = field(default_factory=list)
    blocklists: dict[str, int] = field(default_factory=dict)
    scripts: list[tuple[str, int]] = field(default_factory=list)


def _sends(session: Session, start: datetime, end: datetime) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(CounterBucket.identity_kind, CounterBucket.identity_value, func.sum(CounterBucket.sends))
        .where(CounterBucket.start >= start, CounterBucket.start < end)
        .group_by(CounterBucket.identity_kind, CounterBucket.identity_value))
    return {(kind, value): int(total or 0) for kind, value, total in rows}


def _in_week(start: datetime, end: datetime) -> Any:
    return (Event.occurred_at >= start) & (Event.occurred_at < end)


_Key = tuple[str, str]


def _week_figures(session: Session, start: datetime, end: datetime) -> tuple[Figures, dict[_Key, Figures]]:
    """Provider-wide and per identity (every kind) figures of [start, end)."""
    sends = _sends(session, start, end)
    per_kind: Counter[str] = Counter()
    for (kind, _), count in sends.items():
        per_kind[kind] += count
    totals = Counter({(kind, bool(hard)): n for kind, hard, n in session.execute(
        select(Event.kind, _EVENTS.hard, func.count()).where(_in_week(start, end))
        .group_by(Event.kind, _EVENTS.hard))})
    provider = figures_from_counts(max(per_kind.values(), default=0), totals)
    linked: dict[tuple[str, str], Counter[tuple[str, bool]]] = {}
    for ikind, value, kind, hard, count in session.execute(
            select(IdentityRow.kind, IdentityRow.value, Event.kind, _EVENTS.hard, func.count())
            .join(EventIdentity, EventIdentity.identity_id == IdentityRow.id)
            .join(Event, Event.id == EventIdentity.event_id).where(_in_week(start, end))
            .group_by(IdentityRow.kind, IdentityRow.value, Event.kind, _EVENTS.hard)):
        linked.setdefault((ikind, value), Counter())[(kind, bool(hard))] += count
    keys = set(sends) | set(linked)
    return provider, {key: figures_from_counts(sends.get(key, 0), linked.get(key, Counter())) for key in keys}


def figures_from_counts(sends: int, counts: Counter[tuple[str, bool]]) -> Figures:
    """Figures from ``sends`` and event counts keyed (event kind, hard); a bounce not known hard is soft.

    Also the dashboard's Overview (its provider-wide rates per day).
    """
    hard = counts[(EventKind.BOUNCE.value, True)]
    return Figures(sends=sends, complaints=counts[(EventKind.COMPLAINT.value, True)]
                   + counts[(EventKind.COMPLAINT.value, False)],
                   bounces=hard + counts[(EventKind.BOUNCE.value, False)], hard_bounces=hard)


def _badness(line: SenderLine, limits: Thresholds) -> tuple[float, int, int, str, str]:
    """How far over the thresholds (events without any counted send come first: nothing vouches)."""
    figures = line.week
    if figures.sends == 0:
        ratio = float("inf") if figures.complaints or figures.hard_bounces else 0.0
    else:
        ratio = max((figures.complaint_rate or 0) / limits.complaint_rate,
                    (figures.bounce_rate or 0) / limits.bounce_review)
    return (-ratio, -figures.complaints, -figures.bounces, line.kind, line.value)


def build_report(session: Session, week: str, rules: RuleSet | None = None) -> Report:
    """The report of ISO ``week`` (such as '2026-W48') from what the database holds."""
    start, end = week_bounds(week)
    limits = Thresholds.from_rules(rules)
    provider, identities = _week_figures(session, start, end)
    previous, before = _week_figures(session, start - timedelta(days=7), start)
    senders = [SenderLine(kind, value, figures, before.get((kind, value), Figures()))
               for (kind, value), figures in identities.items() if kind in _REPORTED_KINDS]
    senders.sort(key=lambda line: (_REPORTED_KINDS.index(line.kind), *_badness(line, limits)))
    report = Report(week=parse_week(week), start=start, end=end, thresholds=limits, provider=provider,
                    previous=previous, senders=senders)
    report.bounce_groups = _bounce_groups(session, start, end)
    report.decisions = _decisions(session, start, end)
    report.precision = _precision(session, end)
    report.ips, report.blocklists = ip_health(session, start, end)
    report.scripts = _scripts(session, start, end)
    return report


def _bounce_groups(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    groups: Counter[str] = Counter()
    for reason, count in session.execute(select(Event.reason, func.count()).where(
            _in_week(start, end), Event.kind == EventKind.BOUNCE.value).group_by(Event.reason)):
        try:
            groups[Reason(reason).group.value] += count
        except ValueError:  # a reason this version does not know: counted, not guessed
            groups["unknown"] += count
    return dict(sorted(groups.items(), key=lambda item: (-item[1], item[0])))


def _decisions(session: Session, start: datetime, end: datetime) -> list[DecisionLine]:
    rows = session.scalars(select(DecisionHistory).where(
        DecisionHistory.state.in_(_ACTED), DecisionHistory.decided_at < end,
        (DecisionHistory.ended_at.is_(None)) | (DecisionHistory.ended_at >= start))
        .order_by(DecisionHistory.decided_at, DecisionHistory.id))
    return [DecisionLine(kind=row.identity_kind, value=row.identity_value, state=row.state, rule=row.rule,
                         decided_at=row.decided_at, ended_at=row.ended_at,
                         ended=row.verdict or row.outcome or "ongoing") for row in rows]


def verdict_precision(session: Session, end: datetime) -> dict[str, RulePrecision]:
    """Per rule, the confirmed and false-positive verdicts given before ``end`` (the report, /rules)."""
    verdicts = [Verdict(identity=Identity(IdentityKind(row.identity_kind), row.identity_value), rule=row.rule,
                        kind=VerdictKind(row.kind), author=row.author, reason=row.note, at=row.at)
                for row in session.scalars(select(VerdictRow).where(VerdictRow.at < end))]
    return rule_precision(verdicts)


def _precision(session: Session, end: datetime) -> list[dict[str, Any]]:
    return [{"rule": p.rule, "confirmed": p.confirmed, "false_positives": p.false_positives,
             "precision": p.precision} for p in verdict_precision(session, end).values()]


def ip_health(session: Session, start: datetime, end: datetime) -> tuple[list[IpHealth], dict[str, int]]:
    """Block bounces and named blocklists per outbound IP in [start, end), worst first, and the
    blocklists named by every bounce of the period (attributed to an IP or not), most named first.

    The database counts the bounces per distinct text (a receiver often repeats its refusal word
    for word), so each text is searched once and no bounce row is fetched on its own: the
    dashboard's Overview asks for the last 7 days on every view.
    """
    bounces = (Event.kind == EventKind.BOUNCE.value) & _in_week(start, end)
    names: dict[str | None, list[str]] = {}

    def named_in(diagnostic: str | None) -> list[str]:
        if diagnostic not in names:
            names[diagnostic] = blocklists_named(diagnostic)
        return names[diagnostic]

    named: Counter[str] = Counter()
    for diagnostic, count in session.execute(
            select(_EVENTS.diagnostic, func.count()).where(bounces).group_by(_EVENTS.diagnostic)):
        named.update(dict.fromkeys(named_in(diagnostic), count))
    blocks: Counter[str] = Counter()
    per_ip: dict[str, Counter[str]] = {}
    for ip, reason, diagnostic, count in session.execute(
            select(IdentityRow.value, Event.reason, _EVENTS.diagnostic, func.count())
            .join(EventIdentity, EventIdentity.identity_id == IdentityRow.id)
            .join(Event, Event.id == EventIdentity.event_id)
            .where(bounces, IdentityRow.kind == IdentityKind.IP.value)
            .group_by(IdentityRow.value, Event.reason, _EVENTS.diagnostic)):
        per_ip.setdefault(ip, Counter()).update(dict.fromkeys(named_in(diagnostic), count))
        blocks[ip] += count if reason in _BLOCK_REASONS else 0
    ips = [IpHealth(ip, blocks[ip], dict(sorted(per_ip[ip].items()))) for ip in per_ip]
    ips.sort(key=lambda health: (-health.block_bounces, -sum(health.blocklists.values()), health.ip))
    return ips, dict(sorted(named.items(), key=lambda item: (-item[1], item[0])))


def _scripts(session: Session, start: datetime, end: datetime, top: int = 10) -> list[tuple[str, int]]:
    rows = session.execute(
        select(IdentityRow.value, func.count())
        .join(EventIdentity, EventIdentity.identity_id == IdentityRow.id)
        .join(Event, Event.id == EventIdentity.event_id)
        .where(_in_week(start, end), Event.kind == EventKind.COMPLAINT.value,
               IdentityRow.kind == IdentityKind.SCRIPT.value)
        .group_by(IdentityRow.value).order_by(func.count().desc(), IdentityRow.value).limit(top))
    return [(value, int(count)) for value, count in rows]
