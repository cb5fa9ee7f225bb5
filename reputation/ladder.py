"""The state ladder: rules, hysteresis, cool-downs, probation, verdicts and overrides -> a Decision.

ok -> watch -> throttled -> paused (or held) -> blocked. An identity climbs to the most severe state
whose rule fires (metric at or above threshold, volume at or above min_volume). It leaves a state
only when no rule of that state or above is still at or above threshold x ``release_fraction``
(hysteresis). Paused and held last a cool-down (1 h, 4 h, 24 h on repeat within ``strike_memory``),
then the identity resumes on probation: ``watch``, judged only on what it did since, against
thresholds x ``probation_factor``. Blocked lasts until an admin acts.

Admins: ``allow`` and ``block`` overrides beat the rules (the ladder is frozen meanwhile, and rules
are still reported in the evidence); ``limit`` throttles to N an hour but does not lift a pause;
``resume`` ends a pause, hold or block at once and starts probation. A ``false_positive`` verdict
multiplies that rule's threshold for that identity by ``false_positive_factor`` for a while and
lifts the state the rule caused; a ``confirmed`` verdict counts as one more strike, so the next
cool-down is longer.

``evaluate`` is a pure function: the caller keeps the last Decision (``History.from_decision``
reads back what the ladder needs from ``Decision.evidence["ladder"]``), the overrides and verdicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from reputation.corrections import Override, OverrideKind, Verdict, VerdictKind
from reputation.counters import Baseline, Totals, Window
from reputation.explain import Firing, decision_reason, firing_dict, override_reason
from reputation.model import Decision, Identity, State, action_for
from reputation.ruleset import Metric, Rule, RuleSet, measure

__all__ = ["CounterView", "Firing", "History", "evaluate", "measure_rules"]

_COOLING = (State.PAUSED, State.HELD)


class CounterView(Protocol):
    """What evaluate reads: ``reputation.store.CounterStore`` is one; a database-backed view can be."""

    def window_totals(self, identity: Identity, window: Window | str, now: datetime,
                      since: datetime | None = None) -> Totals: ...

    def baseline(self, identity: Identity, now: datetime) -> Baseline: ...

    def top_domains(self, identity: Identity, now: datetime, n: int = 5) -> list[tuple[str, int]]: ...


@dataclass(frozen=True)
class History:
    """What the ladder remembers of an identity between evaluations (overrides aside).

    ``state``/``rule``/``since``: the ladder state, the rule behind it and when it began;
    ``until``: the cool-down end; ``strikes``/``last_strike``: pauses so far, for escalation;
    ``judged_since``: rules see only events from then (set on resume); ``probation_until``.
    """

    state: State = State.OK
    rule: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit_per_hour: int | None = None
    strikes: int = 0
    last_strike: datetime | None = None
    judged_since: datetime | None = None
    probation_until: datetime | None = None

    @classmethod
    def from_decision(cls, decision: Decision | None) -> History:
        """The history a stored Decision carries in ``evidence["ladder"]`` (fresh when None)."""
        raw = decision.evidence.get("ladder") if decision is not None else None
        if not isinstance(raw, Mapping):
            return cls()

        def when(key: str) -> datetime | None:
            value = raw.get(key)
            return datetime.fromisoformat(value) if isinstance(value, str) else None

        limit, strikes = raw.get("limit_per_hour"), raw.get("strikes", 0)
        return cls(state=State(str(raw.get("state", "ok"))),
                   rule=raw.get("rule") if isinstance(raw.get("rule"), str) else None,
                   since=when("since"), until=when("until"),
                   limit_per_hour=limit if isinstance(limit, int) else None,
                   strikes=strikes if isinstance(strikes, int) else 0, last_strike=when("last_strike"),
                   judged_since=when("judged_since"), probation_until=when("probation_until"))

    def as_evidence(self) -> dict[str, object]:
        """JSON-friendly form, stored in ``Decision.evidence["ladder"]``."""
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {"state": self.state.value, "rule": self.rule, "since": iso(self.since),
                "until": iso(self.until),
                "limit_per_hour": self.limit_per_hour, "strikes": self.strikes,
                "last_strike": iso(self.last_strike), "judged_since": iso(self.judged_since),
                "probation_until": iso(self.probation_until)}


def measure_rules(identity: Identity, counters: CounterView, now: datetime, rules: RuleSet, *,
                  tier: str | None = None, relaxed: Mapping[str, float] | None = None, factor: float = 1.0,
                  since: datetime | None = None) -> list[Firing]:
    """Every rule that applies to ``identity`` (kind, tier), measured: thresholds x ``relaxed[rule]``
    (false-positive verdicts) x ``factor`` (probation); windows cut at ``since``."""
    totals: dict[Window, Totals] = {}
    baseline: Baseline | None = None
    release = rules.ladder.release_fraction
    firings: list[Firing] = []
    for base in rules.rules:
        rule = base.for_tier(tier) if identity.kind in base.kinds else None
        if rule is None:
            continue
        if rule.window not in totals:
            totals[rule.window] = counters.window_totals(identity, rule.window, now, since)
        if rule.metric is Metric.VOLUME_VS_BASELINE and baseline is None:
            baseline = counters.baseline(identity, now)
        measured = measure(rule.metric, totals[rule.window], baseline)
        threshold = rule.threshold * (relaxed or {}).get(rule.name, 1.0) * factor
        guarded = measured.volume >= rule.min_volume
        firings.append(Firing(rule=rule, measurement=measured, threshold=threshold,
                              fired=guarded and measured.value >= threshold,
                              sustained=guarded and measured.value >= threshold * release))
    return firings


def evaluate(identity: Identity, counters: CounterView, now: datetime, history: History | None = None,
             overrides: Iterable[Override] = (), verdicts: Iterable[Verdict] = (), *, rules: RuleSet,
             tier: str | None = None) -> Decision:
    """Decide ``identity``'s state at ``now`` from its counters, its history and the admins' word."""
    hist = history or History()
    mine = [o for o in overrides if o.identity == identity]
    standing = max((o for o in mine if o.kind is not OverrideKind.RESUME and o.active(now)),
                   key=lambda o: o.created_at, default=None)
    if standing is not None and standing.kind in (OverrideKind.ALLOW, OverrideKind.BLOCK):
        firings = measure_rules(identity, counters, now, rules, tier=tier)
        state = State.OK if standing.kind is OverrideKind.ALLOW else State.BLOCKED
        return _decision(identity, state, None, override_reason(standing), None, standing.expires_at,
                         now, hist, firings, counters, tier, override=standing)
    if hist.probation_until is not None and now >= hist.probation_until:
        hist = replace(hist, judged_since=None, probation_until=None)  # probation served
    hist = _apply_resume(hist, mine, now, rules)
    judged = [v for v in verdicts if v.identity == identity and v.at <= now]
    hist, relaxed = _apply_false_positives(hist, judged, now, rules)
    confirmed = sum(1 for v in judged if v.kind is VerdictKind.CONFIRMED
                    and now < v.at + rules.verdicts.confirmed_duration)
    if hist.state in _COOLING and hist.until is not None and now >= hist.until:
        hist = _resumed(hist, hist.until, rules)
    on_probation = hist.probation_until is not None and now < hist.probation_until
    firings = measure_rules(identity, counters, now, rules, tier=tier, relaxed=relaxed,
                            factor=rules.ladder.probation_factor if on_probation else 1.0,
                            since=hist.judged_since)
    new = _climb(hist, firings, on_probation, now, rules, confirmed)
    state, limit, until = new.state, new.limit_per_hour, new.until
    if standing is not None and standing.kind is OverrideKind.LIMIT and state.rank <= State.THROTTLED.rank:
        return _decision(identity, State.THROTTLED, None, override_reason(standing), standing.limit_per_hour,
                         standing.expires_at, now, new, firings, counters, tier, override=standing)
    reason = decision_reason(new, hist, firings, now, on_probation, rules.ladder.release_fraction)
    return _decision(identity, state, new.rule if state is not State.OK else None, reason, limit, until, now,
                     new, firings, counters, tier)


def _apply_resume(hist: History, overrides: list[Override], now: datetime, rules: RuleSet) -> History:
    """A resume override given since the state in force began ends it and starts probation."""
    if hist.state.rank < State.THROTTLED.rank:
        return hist
    resumes = [o for o in overrides if o.kind is OverrideKind.RESUME and o.created_at <= now
               and (hist.since is None or o.created_at > hist.since)]
    if not resumes:
        return hist
    return _resumed(hist, max(o.created_at for o in resumes), rules)


def _resumed(hist: History, at: datetime, rules: RuleSet) -> History:
    return replace(hist, state=State.WATCH, since=at, until=None, limit_per_hour=None, judged_since=at,
                   probation_until=at + rules.ladder.probation)


def _apply_false_positives(hist: History, verdicts: list[Verdict], now: datetime,
                           rules: RuleSet) -> tuple[History, dict[str, float]]:
    """Relax the rules judged false positives; lift the state such a rule put the identity in."""
    settings = rules.verdicts
    wrong = [v for v in verdicts if v.kind is VerdictKind.FALSE_POSITIVE
             and now < v.at + settings.false_positive_duration]
    relaxed = {v.rule: settings.false_positive_factor for v in wrong}
    lifted = [v for v in wrong if v.rule == hist.rule and (hist.since is None or v.at > hist.since)]
    if lifted and hist.state is not State.OK:
        strikes = hist.strikes - 1 if hist.state in _COOLING else hist.strikes
        # The evidence the admin judged wrong is not counted again: rules see only what happens after
        # the verdict (as after a resume), so another rule cannot stop the sender on the same bounces.
        at = max(v.at for v in lifted)
        hist = History(strikes=max(strikes, 0), last_strike=hist.last_strike, since=at, judged_since=at)
    return hist, relaxed


def _climb(hist: History, firings: list[Firing], on_probation: bool, now: datetime, rules: RuleSet,
           confirmed: int) -> History:
    """The next ladder state from the history and the measured rules."""
    top = _most_severe([f for f in firings if f.fired])
    if hist.state in _COOLING or hist.state is State.BLOCKED:
        if top is None or top.rule.state.rank <= hist.state.rank:
            return hist  # cooling down (or blocked until an admin acts)
        target: Firing | None = top
    else:
        held = _most_severe([f for f in firings if f.sustained and f.rule.state.rank <= hist.state.rank])
        target = top if top is not None and (held is None or top.rule.state.rank >= held.rule.state.rank) \
            else held
    if target is None:
        state = State.WATCH if on_probation else State.OK
        if state is hist.state:
            return hist
        return replace(hist, state=state, rule=hist.rule if on_probation else None, since=now, until=None,
                       limit_per_hour=None, judged_since=hist.judged_since if on_probation else None,
                       probation_until=hist.probation_until if on_probation else None)
    state, rule = target.rule.state, target.rule
    if state is State.WATCH and hist.state is State.WATCH and on_probation:
        return replace(hist, rule=rule.name)
    if state is hist.state and rule.name == hist.rule:
        return replace(hist, limit_per_hour=rule.limit_per_hour)
    new = replace(hist, state=state, rule=rule.name, since=now if state is not hist.state else hist.since,
                  limit_per_hour=rule.limit_per_hour, until=None)
    if state in _COOLING:
        if hist.state in _COOLING:
            return replace(new, until=hist.until)  # paused -> held keeps the cool-down running
        remembered = hist.last_strike is not None and now - hist.last_strike < rules.ladder.strike_memory
        recent = hist.strikes if remembered else 0
        cooldown: timedelta = rules.ladder.cooldown(recent + confirmed)
        return replace(new, until=now + cooldown, strikes=recent + 1, last_strike=now,
                       judged_since=None, probation_until=None)
    return new


def _most_severe(firings: list[Firing]) -> Firing | None:
    """The firing with the most severe state; among throttles, the lowest limit; else the first."""
    best: Firing | None = None
    for firing in firings:
        if best is None or _severity(firing.rule) > _severity(best.rule):
            best = firing
    return best


def _severity(rule: Rule) -> tuple[int, int]:
    return rule.state.rank, -(rule.limit_per_hour or 0)


def _decision(identity: Identity, state: State, rule: str | None, reason: str, limit: int | None,
              until: datetime | None, now: datetime, hist: History, firings: list[Firing],
              counters: CounterView, tier: str | None, override: Override | None = None) -> Decision:
    evidence: dict[str, object] = {
        "tier": tier, "fired": [firing_dict(f) for f in firings if f.fired],
        "ladder": hist.as_evidence(),
        "top_recipient_domains": [[d, n] for d, n in counters.top_domains(identity, now)],
    }
    source = next((f for f in firings if f.rule.name == rule), None)
    if source is not None:
        evidence.update(firing_dict(source))
        totals = counters.window_totals(identity, source.rule.window, now, hist.judged_since)
        evidence["totals"] = totals.as_dict()
    if override is not None:
        expires = override.expires_at.isoformat() if override.expires_at is not None else None
        evidence["override"] = {"kind": override.kind.value, "author": override.author,
                                "reason": override.reason, "created_at": override.created_at.isoformat(),
                                "expires_at": expires}
    return Decision(identity=identity, state=state, action=action_for(state), rule=rule, reason=reason,
                    limit_per_hour=limit if state is State.THROTTLED else None, until=until,
                    evidence=evidence, decided_at=now)
