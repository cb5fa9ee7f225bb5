"""The data of the /rules page: the rules in force, how often each fired lately, how often admins agreed.

What it reads:

- the rules, tiers, ladder and verdict settings as the processes loaded them at start
  (``settings.reputation``: config/reputation.py reads config/rules.toml through
  ``reputation.load_rules``, and the customer -> tier CSV), not the file as it is now: an edit to
  the file takes effect at the next start, and the page shows what is being applied;
- ``decision_history``: every time a rule put an identity in the rule's state, counted per rule
  over the last four weeks, and ``reputation_decisions`` for the states in force now. The
  ``watch`` of probation after a cool-down keeps the pause's rule name but is not a firing
  (see ``firings``);
- ``reputation_verdicts``: precision = confirmed / (confirmed + false positives) over every
  verdict given, with ``reports.build.verdict_precision`` so the page and the report agree.

A rule that is in the history or the verdicts but no longer in the file (renamed, removed) is
listed apart, so its past firings and verdicts stay visible.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from config import ReputationSettings
from reports.build import verdict_precision
from reputation import Metric, Rule, RulePrecision, RuleSet, State
from reputation.ruleset import FRACTION_METRICS, format_duration
from storage.reputation_models import DecisionHistory, DecisionRow, StoredState

__all__ = ["FIRE_WEEKS", "Firing", "RuleLine", "RuleTerms", "RulesPage", "TierLine", "firings", "rule_terms",
           "rules_page", "threshold_text"]

# "How often it fired in the last 4 weeks" (issue 5): four 7-day slices ending now.
FIRE_WEEKS = 4
_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Firing:
    """How often one rule put an identity in a state lately, and how many identities it holds now."""

    total: int = 0
    identities: int = 0
    per_week: tuple[int, ...] = (0,) * FIRE_WEEKS  # oldest slice first
    last: datetime | None = None
    in_force: int = 0  # identities held now in this rule's state by this rule


@dataclass(frozen=True)
class RuleTerms:
    """A rule's parameters as people read them."""

    condition: str  # "complaint_rate >= 0.3 % over 24h"
    volume: str  # "at least 500 recipients", "" for a rule without a minimum
    kinds: str  # "account, customer"
    state: str
    limit: str  # "100/h" for a throttle, else ""


@dataclass(frozen=True)
class RuleLine:
    """One rule as the page shows it: its parameters as text, its firings and its verdicts."""

    name: str
    description: str
    terms: RuleTerms | None  # None: the rule is no longer in the rules file
    tiers: tuple[tuple[str, str], ...]  # (tier, how the rule differs there)
    fired: Firing
    verdicts: RulePrecision

    @property
    def precision_text(self) -> str:
        """The precision as a percentage, "n/a" before any verdict."""
        precision = self.verdicts.precision
        return "n/a" if precision is None else f"{precision * 100:.0f} %"


@dataclass(frozen=True)
class TierLine:
    """A tier of the rules file and how many customers the tiers CSV puts in it."""

    name: str
    description: str
    customers: int
    default: bool


@dataclass(frozen=True)
class RulesPage:
    """Everything /rules shows."""

    rules_file: str
    since: datetime
    week_starts: tuple[datetime, ...]
    rules: list[RuleLine]
    retired: list[RuleLine]
    tiers: list[TierLine]
    settings: tuple[tuple[str, str], ...]  # the ladder's and the verdicts' settings, as text


def threshold_text(metric: Metric, value: float) -> str:
    """A threshold as people read it: fractions as percentages, volume_vs_baseline as a multiple."""
    if metric in FRACTION_METRICS:
        return f"{value * 100:g} %"
    if metric is Metric.VOLUME_VS_BASELINE:
        return f"{value:g} x the busiest hour of the past week"
    return f"{value:g}"


def _volume_text(metric: Metric, volume: int) -> str:
    # The volume a rate's min_volume is checked against (reputation.ruleset.measure).
    if not volume:
        return ""
    return f"at least {volume} {'sends' if metric is Metric.VOLUME_VS_BASELINE else 'recipients'}"


def rule_terms(rule: Rule) -> RuleTerms:
    """``rule``'s parameters as text."""
    return RuleTerms(condition=f"{rule.metric.value} >= {threshold_text(rule.metric, rule.threshold)} "
                               f"over {rule.window.value}",
                     volume=_volume_text(rule.metric, rule.min_volume),
                     kinds=", ".join(sorted(kind.value for kind in rule.kinds)), state=rule.state.value,
                     limit=f"{rule.limit_per_hour}/h" if rule.limit_per_hour is not None else "")


def _tier_text(rule: Rule, tier: str) -> str:
    tiered = rule.for_tier(tier)
    if tiered is None:
        return "disabled"
    changed = [f"threshold {threshold_text(rule.metric, tiered.threshold)}"
               if tiered.threshold != rule.threshold else "",
               _volume_text(rule.metric, tiered.min_volume) if tiered.min_volume != rule.min_volume else "",
               f"limit {tiered.limit_per_hour}/h" if tiered.limit_per_hour != rule.limit_per_hour else ""]
    return ", ".join(text for text in changed if text) or "as above"


def _in_slice(start: datetime, end: datetime | None) -> ColumnElement[bool]:
    after = DecisionHistory.decided_at >= start
    return after if end is None else after & (DecisionHistory.decided_at < end)


def _stop_state(rule: str, rule_states: Mapping[str, State], seen: Iterable[str]) -> str:
    """The state ``rule`` puts a sender in: from the rules file, else the most severe one it was seen in.

    A rule fires into its own state (reputation.ladder._climb); the ``watch`` of probation that
    follows a cool-down keeps the pause's rule name (storage.reputation.record_decision opens an
    entry for it), so only entries in the rule's state are its firings. A rule no longer in the
    file is known only from the entries: its probation ones are always less severe than its own.
    """
    if rule in rule_states:
        return rule_states[rule].value
    return max(seen, key=lambda state: State(state).rank)


def firings(session: Session, now: datetime, rule_states: Mapping[str, State] | None = None,
            weeks: int = FIRE_WEEKS) -> dict[str, Firing]:
    """Per rule name, the times it put an identity in its state in the ``weeks`` 7-day slices up to ``now``.

    ``rule_states``: each rule's state, as the rules file says (see _stop_state for the others).
    """
    rule_states = rule_states or {}
    since = now - weeks * _WEEK
    starts = [since + number * _WEEK for number in range(weeks)]
    ends: list[datetime | None] = [*starts[1:], None]  # the last slice runs up to now, included
    identity = DecisionHistory.identity_kind + ":" + DecisionHistory.identity_value
    per_week = [func.count(case((_in_slice(start, end), 1))) for start, end in zip(starts, ends, strict=True)]
    query = (select(DecisionHistory.rule, DecisionHistory.state, func.count(),
                    func.count(identity.distinct()), func.max(DecisionHistory.decided_at), *per_week)
             .where(DecisionHistory.rule.is_not(None), DecisionHistory.decided_at >= since,
                    DecisionHistory.decided_at <= now)
             .group_by(DecisionHistory.rule, DecisionHistory.state))
    held = (select(DecisionRow.rule, DecisionRow.state, func.count())
            .where(DecisionRow.rule.is_not(None), DecisionRow.state != StoredState.OK.value)
            .group_by(DecisionRow.rule, DecisionRow.state))
    by_state: dict[str, dict[str, Firing]] = defaultdict(dict)
    for rule, state, total, identities, last, *weekly in session.execute(query):
        by_state[str(rule)][str(state)] = Firing(total=int(total), identities=int(identities),
                                                 per_week=tuple(int(n) for n in weekly), last=last)
    in_force: dict[str, Counter[str]] = defaultdict(Counter)
    for rule, state, count in session.execute(held):
        in_force[str(rule)][str(state)] = int(count)
    found: dict[str, Firing] = {}
    for name in by_state.keys() | in_force.keys():
        state = _stop_state(name, rule_states, [*by_state[name], *in_force[name]])
        fired = by_state[name].get(state, Firing(per_week=(0,) * weeks))
        found[name] = replace(fired, in_force=in_force[name][state])
    return found


def _line(name: str, rule: Rule | None, tier_names: list[str], fired: Mapping[str, Firing],
          verdicts: Mapping[str, RulePrecision]) -> RuleLine:
    tiers = tuple((tier, _tier_text(rule, tier)) for tier in tier_names if rule and tier in rule.tiers)
    return RuleLine(name=name, description=rule.description if rule else "",
                    terms=rule_terms(rule) if rule else None, tiers=tiers,
                    fired=fired.get(name, Firing()), verdicts=verdicts.get(name, RulePrecision(name, 0, 0)))


def _settings_text(rules: RuleSet) -> tuple[tuple[str, str], ...]:
    ladder, verdicts = rules.ladder, rules.verdicts
    return (
        ("release below", f"{ladder.release_fraction:g} x the threshold"),
        ("cool-downs", ", ".join(format_duration(span) for span in ladder.cooldowns)),
        ("probation", f"{format_duration(ladder.probation)}, thresholds x {ladder.probation_factor:g}"),
        ("strike memory", format_duration(ladder.strike_memory)),
        ("false positive", f"threshold x {verdicts.false_positive_factor:g} for "
                           f"{format_duration(verdicts.false_positive_duration)}"),
        ("confirmed", f"one more strike for {format_duration(verdicts.confirmed_duration)}"),
    )


def rules_page(session: Session, settings: ReputationSettings, now: datetime) -> RulesPage:
    """The rules of ``settings`` with their firings up to ``now`` and every verdict given before it."""
    rules = settings.rules
    fired = firings(session, now, {rule.name: rule.state for rule in rules.rules})
    verdicts = verdict_precision(session, now)
    tier_names = sorted(rules.tiers)
    in_file = {rule.name for rule in rules.rules}
    lines = [_line(rule.name, rule, tier_names, fired, verdicts) for rule in rules.rules]
    retired = [_line(name, None, tier_names, fired, verdicts)
               for name in sorted((set(fired) | set(verdicts)) - in_file)]
    customers = Counter(settings.customer_tiers.values())
    tiers = [TierLine(name, rules.tiers[name], customers[name], name == settings.default_tier)
             for name in tier_names]
    since = now - FIRE_WEEKS * _WEEK
    return RulesPage(rules_file=settings.rules_file, since=since,
                     week_starts=tuple(since + number * _WEEK for number in range(FIRE_WEEKS)),
                     rules=lines, retired=retired, tiers=tiers, settings=_settings_text(rules))

