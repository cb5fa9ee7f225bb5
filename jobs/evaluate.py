"""The evaluation job: keep reputation's counters from the stored facts and write the decisions.

Runs in the scheduler process (one per database: jobs/lock.py), every [reputation].evaluate_seconds.
It keeps a ``reputation.CounterStore`` in memory and, at each run:

1. reads the bounces and complaints recorded since its cursor (``events`` by id, with a slack
   period re-read for rows committed late) and counts each against every identity it is
   attributed to: bounces by the signal group of their reason (shared/reasons.md, via
   ``bounces.model.Reason(reason).group``), complaints as complaints;
2. merges what the policy nodes counted (``counter_buckets`` rows updated since its last run:
   a row holds the running sum of every node's deltas, so the job merges the difference to what
   it saw of that row before);
3. evaluates ``reputation.evaluate`` for every identity touched by 1 or 2, every identity not ok
   (windows slide: a cool-down ends, a rate falls), and every identity whose override was created,
   revoked or expired since the last run;
4. writes the decisions that changed (storage.reputation.record_decision: the decision in force
   plus a history entry), with samples from the database in the evidence of a new state.

Each identity is evaluated in its customer's tier (``Tiers``; docs/rules.md, "Assigning customers
to tiers"): a customer identity in its own, an account in that of its customer in the [attribution]
directory, an account, script or domain otherwise in that of the customer identity attributed to
its latest bounce or complaint; an ip or client never (they are shared by many customers).

The first run (after a start) loads 169 hours of counters and events. The API and the CLI
re-evaluate one identity at once with ``evaluate_now`` (a store rebuilt for that identity).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bounces.model import Reason
from config import ReputationSettings
from reputation import BucketDelta, CounterStore, Decision, History, Identity, IdentityKind, RuleSet, evaluate
from storage.counters import (
    MINUTE_ROWS_KEPT,
    StoredBucket,
    changed_buckets,
    load_counters,
    prune_buckets,
    roll_up_minutes,
)
from storage.reputation import (
    current_decision,
    decision_of,
    decisions_of,
    nonok_identities,
    override_of,
    overrides_changed,
    overrides_of,
    record_decision,
    verdicts_of,
)
from storage.signals import SignalEvent, evidence_samples, identity_events, signal_events
from storage.types import utcnow

__all__ = [
    "HISTORY",
    "EvaluationReport",
    "Evaluator",
    "ReputationJobs",
    "Tiers",
    "count_event",
    "evaluate_identities",
    "evaluate_now",
    "identity_store",
    "link_customers",
]

log = logging.getLogger(__name__)

# What the 7-day window and the baseline read: 168 hours before the current one, and that one.
HISTORY = timedelta(hours=169)
# Rows committed after a later id (PostgreSQL) or flushed with a slow clock are re-read this long.
SLACK = timedelta(minutes=5)
# Counter rows not written for this long are forgotten between runs: policy nodes write the current
# minute's bucket only, so a row is not written again hours later (if it were, it would be merged
# whole again, counting its earlier sums twice).
_REMEMBER = timedelta(hours=2)
# Samples for a new state's evidence are taken from the events of this period.
_SAMPLES = timedelta(hours=24)


# Kinds that take the tier of the customer linked to their events; an ip or client serves many customers.
_LINKED_KINDS = frozenset({IdentityKind.ACCOUNT, IdentityKind.SCRIPT, IdentityKind.DOMAIN})


@dataclass(frozen=True)
class Tiers:
    """Which tier of the rules each identity is evaluated in (docs/rules.md, "Assigning customers...")."""

    customers: Mapping[str, str] = field(default_factory=dict)  # customer -> tier ([reputation].tiers_csv)
    directory: Mapping[str, str] = field(default_factory=dict)  # account (lower case) -> customer
    default: str = ""  # [reputation].default_tier

    @classmethod
    def from_settings(cls, settings: ReputationSettings, directory: Mapping[str, str] | None = None) -> Tiers:
        """The tiers of [reputation] with ``directory``, [attribution]'s account -> customer one."""
        return cls(settings.customer_tiers, directory or {}, settings.default_tier)

    def customer_of(self, identity: Identity, linked: Mapping[Identity, str]) -> str | None:
        """The customer behind ``identity``: itself, the directory's (accounts), else the linked one."""
        if identity.kind is IdentityKind.CUSTOMER:
            return identity.value
        if identity.kind is IdentityKind.ACCOUNT:
            known = self.directory.get(identity.value.lower())
            if known:
                return known
        return linked.get(identity) if identity.kind in _LINKED_KINDS else None

    def tier_of(self, identity: Identity, linked: Mapping[Identity, str] | None = None) -> str | None:
        """``identity``'s tier: its customer's in the CSV, else the default tier (None: the plain rules)."""
        customer = self.customer_of(identity, linked or {})
        return (self.customers.get(customer) if customer else None) or self.default or None


def link_customers(linked: dict[Identity, str], event: SignalEvent) -> None:
    """Remember the customer attributed to ``event`` for its other identities (its last one wins)."""
    customers = [i.value for i in event.identities if i.kind is IdentityKind.CUSTOMER]
    if len(customers) == 1:  # two customers on one event: attribution is unsure, link neither
        for identity in event.identities:
            if identity.kind in _LINKED_KINDS:
                linked[identity] = customers[0]


@dataclass
class EvaluationReport:
    """What one run did."""

    events: int = 0
    buckets: int = 0
    evaluated: int = 0
    changed: list[Decision] = field(default_factory=list)

    def line(self) -> str:
        """One line for the log."""
        moved = ", ".join(f"{d.identity} -> {d.state.value}" for d in self.changed[:10])
        return (f"reputation: {self.events} events, {self.buckets} counter rows, {self.evaluated} evaluated, "
                f"{len(self.changed)} decisions changed" + (f" ({moved})" if moved else ""))


def count_event(store: CounterStore, event: SignalEvent, now: datetime) -> bool:
    """Count ``event`` against its identities in ``store``; False when it is not a signal."""
    at = min(max(event.occurred_at, now - HISTORY), now)  # a report's clock may be wrong
    if event.kind == "complaint":
        for identity in event.identities:
            store.record_complaint(identity, at)
        return True
    try:
        group = Reason(event.reason).group.value
    except ValueError:
        log.warning("event %d has the unknown reason %r; not counted", event.id, event.reason)
        return False
    if group in ("complaint", "none"):
        return False  # a success DSN or an auto-reply stored as a bounce is no failure
    for identity in event.identities:
        store.record_bounce(identity, group, event.hard, at)
    return True


def evaluate_identities(session: Session, identities: Iterable[Identity], store: CounterStore, now: datetime,
                        rules: RuleSet, tiers: Tiers | None = None,
                        linked: Mapping[Identity, str] | None = None) -> list[Decision]:
    """Evaluate ``identities`` against ``store`` and write the decisions that changed; returns those.

    Each is evaluated in its tier (``tiers.tier_of(identity, linked)``; no ``tiers``: the plain rules).
    """
    wanted = sorted(set(identities), key=lambda i: (i.kind.value, i.value))
    if not wanted:
        return []
    rows = decisions_of(session, wanted)
    overrides = overrides_of(session, wanted)
    verdicts = verdicts_of(session, wanted, since=now - max(rules.verdicts.false_positive_duration,
                                                            rules.verdicts.confirmed_duration))
    changed: list[Decision] = []
    for identity in wanted:
        row = rows.get(identity)
        history = History.from_decision(decision_of(row)) if row is not None else None
        standing = [override_of(o) for o in overrides.get(identity, [])]
        tier = tiers.tier_of(identity, linked) if tiers is not None else None
        decision = evaluate(identity, store, now, history, standing, verdicts.get(identity, []), rules=rules,
                            tier=tier)
        if decision.state.rank > 0 and (row is None or row.state != decision.state.value
                                        or row.rule != decision.rule):
            decision = decision.with_evidence(samples=evidence_samples(session, identity, now - _SAMPLES))
        _, moved = record_decision(session, decision, now, row)
        if moved:
            changed.append(decision)
    return changed


def identity_store(session: Session, identity: Identity, rules: RuleSet, now: datetime,
                   linked: dict[Identity, str] | None = None) -> CounterStore:
    """A CounterStore holding the past 169 hours of ``identity`` only, rebuilt from the database.

    ``linked``, when given, learns the customer of ``identity``'s events (``link_customers``).
    """
    store = CounterStore(rules.freemail_domains)
    load_counters(session, store, now - HISTORY, [identity])
    for event in sorted(identity_events(session, identity, since=now - HISTORY), key=lambda e: e.id):
        if linked is not None:
            link_customers(linked, event)
        count_event(store, replace(event, identities=(identity,)), now)  # its other identities aside
    return store


def evaluate_now(session: Session, identity: Identity, rules: RuleSet, now: datetime,
                 tiers: Tiers | None = None) -> Decision | None:
    """Re-evaluate ``identity`` at once from the database (after an admin's action); the caller commits.

    Returns the decision in force afterwards (None: ok, nothing stored).
    """
    linked: dict[Identity, str] = {}
    store = identity_store(session, identity, rules, now, linked)
    evaluate_identities(session, [identity], store, now, rules, tiers, linked)
    row = current_decision(session, identity)
    return decision_of(row) if row is not None else None


class Evaluator:
    """The job's memory between runs: the counters, and how far it read events and counter rows."""

    def __init__(self, rules: RuleSet, tiers: Tiers | None = None) -> None:
        """An evaluator for ``rules`` and ``tiers``; its first ``run`` loads the past 169 hours."""
        self.rules = rules
        self.tiers = tiers
        # identity -> the customer of its latest event (Tiers.customer_of); one entry per sender
        self.linked: dict[Identity, str] = {}
        self.store = CounterStore(rules.freemail_domains)
        self._last_run: datetime | None = None
        self._event_cursor = 0
        self._seen_events: dict[int, datetime] = {}  # id -> recorded_at, within the slack
        # row id -> (its updated_at, the counts merged), for rows written in the last two hours
        self._seen_rows: dict[int, tuple[datetime, dict[str, int]]] = {}
        self._folded: list[StoredBucket] = []  # hour rows of the last upkeep, marked seen once committed

    def run(self, session: Session, now: datetime) -> EvaluationReport:
        """One evaluation at ``now``; the caller commits."""
        first = self._last_run is None
        report = EvaluationReport()
        touched: set[Identity] = set()
        report.buckets = self._merge_buckets(changed_buckets(session, now - HISTORY if first
                                                             else self._since(self._last_run)), now, touched)
        events = (signal_events(session, 0, occurred_since=now - HISTORY) if first
                  else signal_events(session, self._event_cursor, recorded_since=self._since(self._last_run)))
        for event in events:
            if event.id in self._seen_events:
                continue
            self._seen_events[event.id] = event.recorded_at
            self._event_cursor = max(self._event_cursor, event.id)
            link_customers(self.linked, event)
            if count_event(self.store, event, now):
                report.events += 1
                touched.update(event.identities)
        due = set(nonok_identities(session))
        due.update(overrides_changed(session, self._last_run or now - HISTORY, now))
        wanted = touched | due
        report.evaluated = len(wanted)
        report.changed = evaluate_identities(session, wanted, self.store, now, self.rules, self.tiers,
                                             self.linked)
        self._last_run = now
        self._forget(now)
        return report

    def upkeep(self, session: Session, now: datetime, keep: timedelta) -> tuple[int, int]:
        """Forget idle identities in memory, fold minute rows older than a day into hour rows and
        delete counter rows older than ``keep``; the caller commits, then calls ``folded``.

        Returns (identities forgotten, rows deleted).
        """
        self._folded = roll_up_minutes(session, now - MINUTE_ROWS_KEPT, now)
        return self.store.prune(now), prune_buckets(session, now, keep)

    def folded(self) -> None:
        """After upkeep's commit: the hour rows it wrote hold counts this job has merged already (from
        their minute rows), so they are marked as seen. Before the first run nothing was merged: the
        first run reads them like any row."""
        if self._last_run is not None:
            for row in self._folded:
                self._seen_rows[row.id] = (row.updated_at, dict(row.delta.counts))
        self._folded = []

    def _since(self, last: datetime | None) -> datetime:
        assert last is not None
        return last - SLACK

    def _merge_buckets(self, rows: Sequence[StoredBucket], now: datetime, touched: set[Identity]) -> int:
        merged = 0
        for row in rows:
            seen = self._seen_rows.get(row.id)
            before = seen[1] if seen is not None else {}
            diff = {name: value - before.get(name, 0) for name, value in row.delta.counts.items()
                    if value > before.get(name, 0)}
            if diff or row.delta.distinct:
                self.store.merge([BucketDelta(row.delta.identity, row.delta.start, row.delta.seconds, diff,
                                              row.delta.distinct)])  # a sketch merged again changes nothing
            if diff:
                touched.add(row.delta.identity)
                merged += 1
            self._seen_rows[row.id] = (row.updated_at, dict(row.delta.counts))
        return merged

    def _forget(self, now: datetime) -> None:
        self._seen_events = {i: at for i, at in self._seen_events.items() if at >= now - 2 * SLACK}
        self._seen_rows = {i: seen for i, seen in self._seen_rows.items() if seen[0] >= now - _REMEMBER}


class ReputationJobs:
    """The scheduler's two reputation jobs, each in its own session and transaction."""

    def __init__(self, sessions: sessionmaker[Session], settings: ReputationSettings,
                 directory: Mapping[str, str] | None = None) -> None:
        """Jobs on ``sessions``' database with the rules, tiers and intervals of [reputation].

        ``directory`` is [attribution]'s account -> customer one (``settings.attribution.rules.directory``).
        """
        self.sessions = sessions
        self.settings = settings
        self.tiers = Tiers.from_settings(settings, directory)
        self.evaluator = Evaluator(settings.rules, self.tiers)
        self.keep = timedelta(days=settings.counter_days)

    def evaluate(self, now: datetime | None = None) -> EvaluationReport:
        """The evaluation job: one ``Evaluator.run``, committed."""
        try:
            with self.sessions() as session:
                report = self.evaluator.run(session, now or utcnow())
                session.commit()
        except Exception:
            # The run's counts are in memory but its decisions were not written: start afresh (the
            # next run reloads from the database) rather than skip what this run had read.
            self.evaluator = Evaluator(self.settings.rules, self.tiers)
            raise
        if report.changed:
            log.info("%s", report.line())
        return report

    def upkeep(self, now: datetime | None = None) -> tuple[int, int]:
        """The upkeep job: prune memory, fold old minute rows into hours, delete old rows; committed."""
        with self.sessions() as session:
            result = self.evaluator.upkeep(session, now or utcnow(), self.keep)
            session.commit()
        self.evaluator.folded()
        return result
