"""Reputation (pure): counters in time buckets, declarative rules, the state ladder, admin corrections.

Time always comes in as an argument (``now``, ``at``: timezone-aware UTC datetimes); nothing here
reads a clock, the database, the config file or the network. docs/rules.md explains the rules and
the ladder; the modules:

- ``model``: Identity, IdentityKind, State, Action, Decision, SignalGroup (the seam with policy/);
- ``counters`` / ``store`` / ``sketch``: Window, Totals, Baseline, BucketDelta, CounterStore;
- ``rules`` / ``ruleset``: load_rules(mapping) -> RuleSet, RuleError, Rule, Metric, measure;
- ``corrections``: Override, Verdict, rule_precision;
- ``ladder``: evaluate(...) -> Decision, History.
"""

from reputation.corrections import (
    Override,
    OverrideKind,
    RulePrecision,
    Verdict,
    VerdictKind,
    rule_precision,
)
from reputation.counters import FIELDS, Baseline, BucketDelta, Totals, Window
from reputation.ladder import CounterView, History, evaluate
from reputation.model import (
    ACTION_OF_STATE,
    SIGNAL_GROUPS,
    Action,
    Decision,
    Identity,
    IdentityKind,
    SignalGroup,
    State,
    action_for,
)
from reputation.rules import RuleError, load_rules
from reputation.ruleset import LadderSettings, Metric, Rule, RuleSet, TierOverride, VerdictSettings
from reputation.sketch import DistinctSketch
from reputation.store import CounterStore

__all__ = [
    "ACTION_OF_STATE",
    "FIELDS",
    "SIGNAL_GROUPS",
    "Action",
    "Baseline",
    "BucketDelta",
    "CounterStore",
    "CounterView",
    "Decision",
    "DistinctSketch",
    "History",
    "Identity",
    "IdentityKind",
    "LadderSettings",
    "Metric",
    "Override",
    "OverrideKind",
    "Rule",
    "RuleError",
    "RulePrecision",
    "RuleSet",
    "SignalGroup",
    "State",
    "TierOverride",
    "Totals",
    "Verdict",
    "VerdictKind",
    "VerdictSettings",
    "Window",
    "action_for",
    "evaluate",
    "load_rules",
    "rule_precision",
]
