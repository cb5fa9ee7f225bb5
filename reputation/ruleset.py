"""The validated rules (``RuleSet``) and what each metric measures; reputation.rules builds them.

No code is evaluated: a rule names a metric from a closed vocabulary, a window, a threshold (the
rule fires when the metric is at or above it), a minimum volume, the identity kinds it applies to
and the state it moves an identity to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum

from reputation.counters import Baseline, Totals, Window
from reputation.model import IdentityKind, State

__all__ = [
    "FRACTION_METRICS",
    "RATE_METRICS",
    "LadderSettings",
    "Measurement",
    "Metric",
    "Rule",
    "RuleSet",
    "TierOverride",
    "VerdictSettings",
    "format_duration",
    "measure",
    "parse_duration",
]


class Metric(StrEnum):
    """What a rule can measure over a window of an identity's counters."""

    SENDS = "sends"
    RECIPIENTS = "recipients"
    DISTINCT_RECIPIENTS = "distinct_recipients"
    FREEMAIL_RECIPIENTS = "freemail_recipients"
    COMPLAINTS = "complaints"
    BOUNCES = "bounces"
    HARD_BOUNCES = "hard_bounces"
    BLOCK_BOUNCES = "block_bounces"
    LIST_QUALITY_BOUNCES = "list_quality_bounces"
    RATE_BOUNCES = "rate_bounces"
    COMPLAINT_RATE = "complaint_rate"
    BOUNCE_RATE = "bounce_rate"
    HARD_BOUNCE_RATE = "hard_bounce_rate"
    BLOCK_BOUNCE_RATE = "block_bounce_rate"
    LIST_QUALITY_RATE = "list_quality_rate"
    FREEMAIL_SHARE = "freemail_share"
    VOLUME_VS_BASELINE = "volume_vs_baseline"


M = Metric
# Shares of recipients: thresholds are fractions between 0 and 1.
FRACTION_METRICS = frozenset({M.COMPLAINT_RATE, M.BOUNCE_RATE, M.HARD_BOUNCE_RATE, M.BLOCK_BOUNCE_RATE,
                              M.LIST_QUALITY_RATE, M.FREEMAIL_SHARE})
# Ratios mean nothing on a tiny volume: these need a min_volume guard.
RATE_METRICS = FRACTION_METRICS | {M.VOLUME_VS_BASELINE}
_MINUTE_WINDOWS = frozenset({Window.TEN_MINUTES, Window.HOUR})


@dataclass(frozen=True)
class Measurement:
    """A metric's value over a window, and the volume its min_volume guard is checked against.

    ``detail`` says where the value comes from, e.g. "31 complaints / 5000 recipients".
    """

    value: float
    volume: int
    detail: str


def measure(metric: Metric, totals: Totals, baseline: Baseline | None = None) -> Measurement:
    """The value of ``metric`` over ``totals`` (``baseline`` is needed for volume_vs_baseline)."""
    t = totals
    counts: dict[Metric, tuple[int, str]] = {
        M.SENDS: (t.sends, "messages"), M.RECIPIENTS: (t.recipients, "recipients"),
        M.DISTINCT_RECIPIENTS: (t.distinct_recipients or 0, "distinct recipients"),
        M.FREEMAIL_RECIPIENTS: (t.freemail_recipients, "freemail recipients"),
        M.COMPLAINTS: (t.complaints, "complaints"), M.BOUNCES: (t.bounces(), "bounces"),
        M.HARD_BOUNCES: (t.hard_bounces, "hard bounces"),
        M.BLOCK_BOUNCES: (t.bounces("block"), "block bounces"),
        M.LIST_QUALITY_BOUNCES: (t.bounces("list_quality"), "list-quality bounces"),
        M.RATE_BOUNCES: (t.bounces("rate"), "rate bounces"),
    }
    if metric in counts:
        count, noun = counts[metric]
        return Measurement(float(count), count, f"{count} {noun}")
    if metric is M.VOLUME_VS_BASELINE:
        peak = baseline.peak if baseline is not None else 0
        return Measurement(t.sends / max(peak, 1), t.sends,
                           f"{t.sends} messages against a busiest hour of {peak} in the past week")
    numerator = {M.COMPLAINT_RATE: M.COMPLAINTS, M.BOUNCE_RATE: M.BOUNCES, M.HARD_BOUNCE_RATE: M.HARD_BOUNCES,
                 M.BLOCK_BOUNCE_RATE: M.BLOCK_BOUNCES, M.LIST_QUALITY_RATE: M.LIST_QUALITY_BOUNCES,
                 M.FREEMAIL_SHARE: M.FREEMAIL_RECIPIENTS}[metric]
    count, noun = counts[numerator]
    return Measurement(count / t.recipients if t.recipients else 0.0, t.recipients,
                       f"{count} {noun} / {t.recipients} recipients")


@dataclass(frozen=True)
class TierOverride:
    """A rule's settings for one customer tier (None keeps the rule's own)."""

    threshold: float | None = None
    min_volume: int | None = None
    limit_per_hour: int | None = None
    enabled: bool = True


@dataclass(frozen=True)
class Rule:
    """One declarative rule: fires when ``metric`` over ``window`` is at or above ``threshold``.

    Rate metrics fire only when the volume (recipients, or sends for volume_vs_baseline) is at
    least ``min_volume``. ``state`` is where it moves the identity; ``limit_per_hour`` is set for
    ``throttled``.
    """

    name: str
    metric: Metric
    window: Window
    threshold: float
    state: State
    kinds: frozenset[IdentityKind]
    min_volume: int = 0
    limit_per_hour: int | None = None
    description: str = ""
    tiers: Mapping[str, TierOverride] = field(default_factory=dict)

    def for_tier(self, tier: str | None) -> Rule | None:
        """This rule as it applies to ``tier`` (None when the tier disables it)."""
        override = self.tiers.get(tier or "")
        if override is None:
            return self
        if not override.enabled:
            return None
        o = override
        return replace(self, threshold=self.threshold if o.threshold is None else o.threshold,
                       min_volume=self.min_volume if o.min_volume is None else o.min_volume,
                       limit_per_hour=self.limit_per_hour if o.limit_per_hour is None else o.limit_per_hour,
                       tiers={})


@dataclass(frozen=True)
class LadderSettings:
    """How identities move on the ladder ([ladder] in config/rules.toml)."""

    release_fraction: float = 0.5  # leave a state only when the metric is below threshold x this
    cooldowns: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(hours=4), timedelta(hours=24))
    probation: timedelta = timedelta(hours=24)
    probation_factor: float = 0.5  # thresholds x this while on probation
    strike_memory: timedelta = timedelta(days=30)  # pauses older than this no longer escalate

    def cooldown(self, strikes: int) -> timedelta:
        """The cool-down of a pause after ``strikes`` earlier ones (the last one repeats)."""
        return self.cooldowns[min(strikes, len(self.cooldowns) - 1)]


@dataclass(frozen=True)
class VerdictSettings:
    """What admin verdicts do ([verdicts] in config/rules.toml)."""

    false_positive_factor: float = 2.0  # the rule's threshold x this for that identity...
    false_positive_duration: timedelta = timedelta(days=30)  # ...for this long
    confirmed_duration: timedelta = timedelta(days=30)  # a confirmed verdict adds a strike this long


@dataclass(frozen=True)
class RuleSet:
    """Everything config/rules.toml says, validated."""

    rules: tuple[Rule, ...]
    tiers: Mapping[str, str] = field(default_factory=dict)  # tier name -> description
    freemail_domains: frozenset[str] = frozenset()
    ladder: LadderSettings = LadderSettings()
    verdicts: VerdictSettings = VerdictSettings()

    def rule(self, name: str) -> Rule | None:
        """The rule called ``name``, if any."""
        return next((r for r in self.rules if r.name == name), None)


_DURATION = re.compile(r"\s*(\d+)\s*([smhd])\s*")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """'90s', '10m', '4h', '30d' -> timedelta; raises ValueError on anything else or zero."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"not a duration: {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def format_duration(span: timedelta) -> str:
    """The shortest exact '30d' / '4h' / '10m' / '90s' spelling of ``span``."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
