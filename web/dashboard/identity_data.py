"""What the identity page shows, read from the database as plain values (no Flask here).

The decision in force, the overrides and the history come from ``jobs.identity_actions.
identity_report``, the same code as ``GET /v1/identities/...`` and ``identity show``, so the page,
the API and the CLI never disagree. The page adds what a person needs besides: the evidence of
every history entry (its rule's numbers, recipient domains, scripts, subjects, samples) with the
raw message behind each sample, and a timeline of sends, bounces by signal group and complaints.

Sends come from the shared counters (``counter_buckets``, kept [reputation].counter_days days);
bounces and complaints from the stored events, grouped by the signal group of their reason
(shared/reasons.md, ``bounces.model.Reason.group``) as the evaluation job counts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from bounces.model import Reason
from bounces.model import SignalGroup as ReasonGroup
from jobs.identity_actions import identity_report
from reputation import Identity, RuleSet, SignalGroup
from reputation.explain import format_value
from reputation.ruleset import Metric
from storage.models import Event
from storage.models import Identity as IdentityRow
from storage.reputation_models import CounterBucket, DecisionHistory, DecisionRow, OverrideRow
from storage.signals import identity_events

__all__ = ["DecisionView", "Evidence", "HistoryView", "IdentityPage", "OverrideView", "Sample", "Span",
           "Timeline", "VerdictView", "evidence_of", "identity_known", "identity_page", "shown", "timeline"]

Counted = tuple[tuple[str, int], ...]


class Span(StrEnum):
    """The timeline's ranges: 48 hours by the hour, or 14 days by the day (``?range=``)."""

    HOURS = "48h"
    DAYS = "14d"

    @property
    def step(self) -> timedelta:
        """The width of one bar."""
        return timedelta(hours=1) if self is Span.HOURS else timedelta(days=1)

    @property
    def bars(self) -> int:
        """How many bars, the current (partial) hour or day included."""
        return 48 if self is Span.HOURS else 14


@dataclass(frozen=True)
class Sample:
    """A complaint or bounce behind a decision; ``message_id``: the raw message that reported it."""

    event_id: int
    message_id: int | None
    reason: str
    recipient_domain: str
    status: str
    diagnostic: str
    occurred_at: str


@dataclass(frozen=True)
class Evidence:
    """The numbers and samples a decision stored (its ``evidence``), ready to show.

    ``value`` and ``threshold`` are formatted like the explanation ("1.00 %", "12.5x", "300");
    ``numbers`` are the rule window's totals; ``override`` the admin's instruction that decided.
    """

    rule: str | None
    metric: str | None
    window: str | None
    value: str | None
    threshold: str | None
    volume: int | None
    min_volume: int | None
    detail: str
    tier: str | None
    fired: tuple[str, ...]
    numbers: Counted
    top_recipient_domains: Counted
    recipient_domains: Counted
    scripts: Counted
    subjects: Counted
    complaints: tuple[Sample, ...]
    bounces: tuple[Sample, ...]
    override: Mapping[str, Any] | None


@dataclass(frozen=True)
class DecisionView:
    """The decision in force: state, action, the explanation sentence and its evidence."""

    state: str
    action: str
    rule: str | None
    explanation: str
    limit_per_hour: int | None
    until: str | None
    decided_at: str
    evidence: Evidence


@dataclass(frozen=True)
class VerdictView:
    """An admin's verdict on a decision of the history."""

    kind: str
    author: str
    note: str
    at: str


@dataclass(frozen=True)
class HistoryView:
    """One state the identity was put in, how it ended, and the admins' verdicts on it."""

    id: int
    state: str
    rule: str | None
    explanation: str
    limit_per_hour: int | None
    decided_at: str
    until: str | None
    ended_at: str | None
    outcome: str | None
    verdict: str | None
    evidence: Evidence
    verdicts: tuple[VerdictView, ...]

    @property
    def judgeable(self) -> bool:
        """A verdict judges a rule: entries an override made cannot be judged."""
        return self.rule is not None


@dataclass(frozen=True)
class OverrideView:
    """An admin's standing instruction (allow, block, limit, resume)."""

    id: int
    kind: str
    limit_per_hour: int | None
    author: str
    reason: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    active: bool


@dataclass(frozen=True)
class Timeline:
    """Per bar (``labels``, UTC): sends, bounces per signal group (groups with none left out), complaints."""

    span: Span
    labels: tuple[str, ...]
    sends: tuple[int, ...]
    bounces: tuple[tuple[str, tuple[int, ...]], ...]
    complaints: tuple[int, ...]

    @property
    def empty(self) -> bool:
        """Nothing at all happened in the range."""
        return not any(self.sends) and not self.bounces and not any(self.complaints)


@dataclass(frozen=True)
class IdentityPage:
    """Everything the identity page shows; ``windows``: the counters per window (10m ... 7d)."""

    kind: str
    value: str
    state: str
    action: str
    decision: DecisionView | None
    windows: tuple[Mapping[str, Any], ...]
    history: tuple[HistoryView, ...]
    overrides: tuple[OverrideView, ...]
    timeline: Timeline


def shown(at: datetime | str | None) -> str | None:
    """A stored time as UTC ISO 8601 to the second ("2026-11-30T18:30:00Z"); pages show it with ``|utc``."""
    if at is None:
        return None
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def identity_known(session: Session, identity: Identity) -> bool:
    """Whether Ricochet has seen ``identity`` at all: an event, counted sends, a decision or an override."""
    for model in (DecisionRow, OverrideRow, CounterBucket):
        if session.scalar(select(exists().where(model.identity_kind == identity.kind.value,
                                                model.identity_value == identity.value))):
            return True
    return bool(session.scalar(select(exists().where(IdentityRow.kind == identity.kind.value,
                                                     IdentityRow.value == identity.value))))


def identity_page(session: Session, identity: Identity, rules: RuleSet, now: datetime,
                  span: Span = Span.HOURS) -> IdentityPage | None:
    """The identity page's content, or None when Ricochet has never seen ``identity``."""
    if not identity_known(session, identity):
        return None
    report = identity_report(session, identity, rules, now)
    evidence = _history_evidence(session, [entry["id"] for entry in report["history"]])
    decision = report["decision"]
    stored = [*evidence.values(), *([decision["evidence"]] if decision is not None else [])]
    messages = _message_ids(session, _sample_ids(stored))
    return IdentityPage(
        kind=identity.kind.value, value=identity.value, state=report["state"], action=report["action"],
        decision=_decision(decision, messages) if decision is not None else None,
        windows=tuple(report["counters"].values()),
        history=tuple(_history(entry, evidence.get(entry["id"], {}), messages)
                      for entry in report["history"]),
        overrides=tuple(_override(o) for o in report["overrides"]),
        timeline=timeline(session, identity, now, span))


def _history_evidence(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The stored evidence of history entries ``ids`` (identity_report leaves it out, to stay short)."""
    if not ids:
        return {}
    rows = session.execute(select(DecisionHistory.id, DecisionHistory.evidence)
                           .where(DecisionHistory.id.in_(ids)))
    return {row_id: dict(stored or {}) for row_id, stored in rows}


def _sample_ids(evidences: Iterable[Mapping[str, Any]]) -> set[int]:
    """The events sampled in ``evidences`` (complaints and bounces)."""
    ids: set[int] = set()
    for evidence in evidences:
        samples = evidence.get("samples") or {}
        for kind in ("complaints", "bounces"):
            ids.update(int(s["event_id"]) for s in samples.get(kind) or ()
                       if isinstance(s, dict) and "event_id" in s)
    return ids


def _message_ids(session: Session, event_ids: set[int]) -> dict[int, int]:
    """event id -> the raw message that reported it (the link to the message's page)."""
    if not event_ids:
        return {}
    rows = session.execute(select(Event.id, Event.message_id).where(Event.id.in_(sorted(event_ids))))
    return {event_id: message_id for event_id, message_id in rows}


def _counted(pairs: Any) -> Counted:
    """[["gmail.com", 12], ...] as pairs; anything malformed is left out rather than shown wrong."""
    return tuple((str(p[0]), int(p[1])) for p in pairs or () if isinstance(p, list | tuple) and len(p) == 2)


def _samples(found: Any, messages: Mapping[int, int]) -> tuple[Sample, ...]:
    return tuple(Sample(event_id=int(s["event_id"]), message_id=messages.get(int(s["event_id"])),
                        reason=str(s.get("reason") or ""),
                        recipient_domain=str(s.get("recipient_domain") or ""),
                        status=str(s.get("status") or ""), diagnostic=str(s.get("diagnostic") or ""),
                        occurred_at=shown(s.get("occurred_at")) or "")
                 for s in found or () if isinstance(s, dict) and "event_id" in s)


def _formatted(metric: str | None, value: Any) -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if metric is None:
        return f"{value:g}"
    try:
        return format_value(Metric(metric), float(value))
    except ValueError:
        return f"{value:g}"


_NUMBERS = ("sends", "recipients", "complaints", "bounces")


def evidence_of(stored: Mapping[str, Any], messages: Mapping[int, int]) -> Evidence:
    """A decision's stored evidence (see reputation.ladder and jobs.evaluate) as an Evidence."""
    samples = stored.get("samples") or {}
    totals = stored.get("totals") or {}
    numbers = tuple((name, int(totals[name])) for name in _NUMBERS if isinstance(totals.get(name), int))
    hard = totals.get("hard_bounces")
    if isinstance(hard, dict):
        numbers += (("hard bounces", sum(int(v) for v in hard.values())),)
    metric = stored.get("metric") if isinstance(stored.get("metric"), str) else None
    override = stored.get("override")
    return Evidence(
        rule=stored.get("rule"), metric=metric, window=stored.get("window"),
        value=_formatted(metric, stored.get("value")), threshold=_formatted(metric, stored.get("threshold")),
        volume=stored.get("volume"), min_volume=stored.get("min_volume"),
        detail=str(stored.get("detail") or ""),
        tier=stored.get("tier"), fired=tuple(str(f.get("rule")) for f in stored.get("fired") or ()
                                             if isinstance(f, dict)),
        numbers=numbers, top_recipient_domains=_counted(stored.get("top_recipient_domains")),
        recipient_domains=_counted(samples.get("recipient_domains")),
        scripts=_counted(samples.get("scripts")),
        subjects=_counted(samples.get("subjects")), complaints=_samples(samples.get("complaints"), messages),
        bounces=_samples(samples.get("bounces"), messages),
        override=override if isinstance(override, dict) else None)


def _decision(decision: Mapping[str, Any], messages: Mapping[int, int]) -> DecisionView:
    return DecisionView(state=decision["state"], action=decision["action"], rule=decision["rule"],
                        explanation=decision["explanation"], limit_per_hour=decision["limit_per_hour"],
                        until=shown(decision["until"]), decided_at=shown(decision["decided_at"]) or "",
                        evidence=evidence_of(decision["evidence"], messages))


def _history(entry: Mapping[str, Any], stored: Mapping[str, Any], messages: Mapping[int, int]) -> HistoryView:
    return HistoryView(
        id=entry["id"], state=entry["state"], rule=entry["rule"], explanation=entry["explanation"],
        limit_per_hour=entry["limit_per_hour"], decided_at=shown(entry["decided_at"]) or "",
        until=shown(entry["until"]), ended_at=shown(entry["ended_at"]), outcome=entry["outcome"],
        verdict=entry["verdict"], evidence=evidence_of(stored, messages),
        verdicts=tuple(VerdictView(kind=v["kind"], author=v["author"], note=v["note"] or "",
                                   at=shown(v["at"]) or "") for v in entry["verdicts"]))


def _override(found: Mapping[str, Any]) -> OverrideView:
    return OverrideView(id=found["id"], kind=found["kind"], limit_per_hour=found["limit_per_hour"],
                        author=found["author"], reason=found["reason"] or "",
                        created_at=shown(found["created_at"]) or "", expires_at=shown(found["expires_at"]),
                        revoked_at=shown(found["revoked_at"]), active=bool(found["active"]))


# -- the timeline ---------------------------------------------------------------------------------

def _first_bar(now: datetime, span: Span) -> datetime:
    now = now.astimezone(UTC)
    current = now.replace(minute=0, second=0, microsecond=0)
    if span is Span.DAYS:
        current = current.replace(hour=0)
    return current - span.step * (span.bars - 1)


def _label(at: datetime, span: Span) -> str:
    """An hour as "11-30 18h" (short enough for 8 labels under a chart), a day as "2026-11-30"."""
    return at.strftime("%m-%d %Hh") if span is Span.HOURS else at.strftime("%Y-%m-%d")


def _group(reason: str) -> str | None:
    """The signal group a bounce of ``reason`` counts in (None: not a failure, or a reason unknown)."""
    try:
        group = Reason(reason).group
    except ValueError:
        return None
    return None if group in (ReasonGroup.COMPLAINT, ReasonGroup.NONE) else group.value


def timeline(session: Session, identity: Identity, now: datetime, span: Span = Span.HOURS) -> Timeline:
    """Sends, bounces per signal group and complaints of ``identity`` per bar of ``span`` up to ``now``."""
    start = _first_bar(now, span)
    end = start + span.step * span.bars

    def bar(at: datetime) -> int | None:
        return int((at - start) / span.step) if start <= at < end else None

    sends = [0] * span.bars
    rows = session.execute(select(CounterBucket.start, CounterBucket.sends).where(
        CounterBucket.identity_kind == identity.kind.value, CounterBucket.identity_value == identity.value,
        CounterBucket.start >= start, CounterBucket.start < end))
    for at, count in rows:
        index = bar(at)
        if index is not None:
            sends[index] += count
    complaints = [0] * span.bars
    bounces: dict[str, list[int]] = {}
    for event in identity_events(session, identity, since=start):
        index = bar(event.occurred_at)
        if index is None:
            continue
        if event.kind == "complaint":
            complaints[index] += 1
        elif (group := _group(event.reason)) is not None:
            bounces.setdefault(group, [0] * span.bars)[index] += 1
    ordered = tuple((g.value, tuple(bounces[g.value])) for g in SignalGroup if g.value in bounces)
    return Timeline(span=span, labels=tuple(_label(start + span.step * i, span) for i in range(span.bars)),
                    sends=tuple(sends), bounces=ordered, complaints=tuple(complaints))
