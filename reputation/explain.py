"""Sentences and evidence for decisions: the rule, the window, the numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from reputation.corrections import Override, OverrideKind
from reputation.model import State
from reputation.ruleset import FRACTION_METRICS, Measurement, Metric, Rule, format_duration

if TYPE_CHECKING:
    from reputation.ladder import History

__all__ = ["Firing", "decision_reason", "firing_dict", "format_value", "override_reason"]


@dataclass(frozen=True)
class Firing:
    """One rule measured for one identity: ``threshold`` is the effective one (tier, verdicts,
    probation applied); ``fired``: at or above it with enough volume; ``sustained``: at or above
    the release level (threshold x release_fraction)."""

    rule: Rule
    measurement: Measurement
    threshold: float
    fired: bool
    sustained: bool


def format_value(metric: Metric, value: float) -> str:
    """0.0062 -> '0.62 %' for rates, '12.5x' for volume_vs_baseline, '300' for counts."""
    if metric in FRACTION_METRICS:
        return f"{value * 100:.2f} %"
    if metric is Metric.VOLUME_VS_BASELINE:
        return f"{value:.1f}x"
    return f"{value:g}"


def firing_dict(firing: Firing) -> dict[str, object]:
    """JSON-friendly numbers of one measured rule."""
    rule = firing.rule
    return {"rule": rule.name, "metric": rule.metric.value, "window": rule.window.value,
            "value": firing.measurement.value, "threshold": firing.threshold,
            "min_volume": rule.min_volume, "volume": firing.measurement.volume,
            "detail": firing.measurement.detail, "state": rule.state.value}


def _clock(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _measured(firing: Firing, release: float) -> str:
    rule, m = firing.rule, firing.measurement
    value = format_value(rule.metric, m.value)
    if firing.fired:
        return (f"rule '{rule.name}': {rule.metric.value} over {rule.window.value} is {value} ({m.detail}), "
                f"at or above {format_value(rule.metric, firing.threshold)}")
    return (f"rule '{rule.name}': {rule.metric.value} over {rule.window.value} is still {value} "
            f"({m.detail}), not yet below {format_value(rule.metric, firing.threshold * release)}")


def decision_reason(new: History, old: History, firings: list[Firing], now: datetime, on_probation: bool,
                    release: float = 0.5) -> str:
    """One sentence: the state, the rule, the window and the numbers."""
    firing = next((f for f in firings if f.rule.name == new.rule and (f.fired or f.sustained)), None)
    if new.state is State.OK:
        if old.state is not State.OK and old.rule:
            return f"ok: rule '{old.rule}' no longer applies (the state was {old.state.value})"
        return "ok: no rule fired"
    parts = [new.state.value + ":"]
    if firing is not None:
        parts.append(_measured(firing, release))
    elif on_probation and new.state is State.WATCH and new.judged_since is not None:
        before = f" (stopped by rule '{new.rule}' before)" if new.rule else ""
        parts.append(f"resumed at {_clock(new.judged_since)}{before}; judged only on what it sends from "
                     f"then, against stricter thresholds")
    elif new.rule:
        parts.append(f"rule '{new.rule}'")
    if new.state in (State.PAUSED, State.HELD) and new.until is not None and new.since is not None:
        cooldown = format_duration(new.until - new.last_strike) if new.last_strike else "a"
        parts.append(f"- {new.state.value} until {_clock(new.until)}, pause number {new.strikes}"
                     f" ({cooldown} cool-down)")
    elif new.state is State.THROTTLED:
        parts.append(f"- at most {new.limit_per_hour} messages an hour")
    elif new.state is State.BLOCKED:
        parts.append("- blocked until an admin resumes or allows it")
    if on_probation and new.probation_until is not None:
        parts.append(f"- probation ends {_clock(new.probation_until)}")
    return " ".join(parts)


def override_reason(override: Override) -> str:
    """'allowed by admin alice until ...: password reset' and the like."""
    verb = {OverrideKind.ALLOW: "allowed", OverrideKind.BLOCK: "blocked", OverrideKind.RESUME: "resumed",
            OverrideKind.LIMIT: f"limited to {override.limit_per_hour} messages an hour"}[override.kind]
    until = f" until {_clock(override.expires_at)}" if override.expires_at is not None else ""
    return f"{verb} by {override.author}{until}: {override.reason}"
