"""Load config/rules.toml: the parsed TOML mapping in, a validated ``RuleSet`` out.

The caller reads and parses the file (``tomllib``); ``load_rules`` checks every key and raises
``RuleError`` with a sentence naming the file, the rule, the key and what it must be, in the style
of config/settings.py: "config/rules.toml: [[rule]] 'complaint-rate' .threshold must be a number
between 0 and 1, got 'x'". Unknown keys are refused too: a typo must not silently disable a rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta

from reputation.counters import Window
from reputation.model import IdentityKind, State
from reputation.ruleset import (
    FRACTION_METRICS,
    RATE_METRICS,
    LadderSettings,
    Measurement,
    Metric,
    Rule,
    RuleSet,
    TierOverride,
    VerdictSettings,
    format_duration,
    measure,
    parse_duration,
)

__all__ = [
    "LadderSettings",
    "Measurement",
    "Metric",
    "Rule",
    "RuleError",
    "RuleSet",
    "TierOverride",
    "VerdictSettings",
    "format_duration",
    "load_rules",
    "measure",
    "parse_duration",
]

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SECTIONS = ("freemail", "ladder", "verdicts", "tiers", "rule")
_RULE_KEYS = ("name", "description", "metric", "window", "threshold", "min_volume", "kinds", "state",
              "limit_per_hour", "tiers")
_TIER_KEYS = ("threshold", "min_volume", "limit_per_hour", "enabled")
_RULE_STATES = (State.WATCH, State.THROTTLED, State.PAUSED, State.HELD, State.BLOCKED)


class RuleError(ValueError):
    """config/rules.toml is wrong; ``str(error)`` is the sentence to show the operator."""


def load_rules(mapping: Mapping[str, object], source: str = "config/rules.toml") -> RuleSet:
    """Validate the parsed TOML of config/rules.toml into a RuleSet; raises RuleError with a sentence."""
    if not isinstance(mapping, Mapping):
        raise RuleError(f"{source}: must be a TOML document of tables, got {mapping!r}")
    for key in mapping:
        if key not in _SECTIONS:
            raise RuleError(f"{source}: unknown section [{key}]; the sections are [freemail], [ladder], "
                            f"[verdicts], [tiers.<name>] and [[rule]]")
    tiers = _tiers(mapping.get("tiers", {}), source)
    raw_rules = mapping.get("rule", [])
    if not isinstance(raw_rules, list) or not all(isinstance(r, Mapping) for r in raw_rules):
        raise RuleError(f"{source}: rule must be an array of [[rule]] tables, got {raw_rules!r}")
    rules: list[Rule] = []
    for number, raw in enumerate(raw_rules, start=1):
        rule = _rule(raw, number, tiers, source)
        if any(r.name == rule.name for r in rules):
            raise RuleError(f"{source}: [[rule]] '{rule.name}' is defined twice; give each rule its own name")
        rules.append(rule)
    return RuleSet(rules=tuple(rules), tiers=tiers,
                   freemail_domains=_freemail(mapping.get("freemail", {}), source),
                   ladder=_ladder(mapping.get("ladder", {}), source),
                   verdicts=_verdicts(mapping.get("verdicts", {}), source))


def _table(value: object, where: str, keys: tuple[str, ...]) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise RuleError(f"{where} must be a table, got {value!r}")
    for key in value:
        if key not in keys:
            raise RuleError(f"{where} has an unknown key {key!r}; the keys are {', '.join(keys)}")
    return value


def _number(value: object, where: str, low: float, high: float | None, what: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and low < float(value) and (high is None or float(value) <= high):  # type: ignore[arg-type]
        return float(value)  # type: ignore[arg-type]
    raise RuleError(f"{where} must be {what}, got {value!r}")


def _integer(value: object, where: str, low: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= low:
        return value
    raise RuleError(f"{where} must be a whole number of at least {low}, got {value!r}")


def _duration(value: object, where: str) -> timedelta:
    try:
        return parse_duration(value)  # type: ignore[arg-type]
    except ValueError:
        raise RuleError(f"{where} must be a duration such as '90s', '10m', '4h' or '30d', "
                        f"got {value!r}") from None


def _choice(value: object, where: str, choices: tuple[str, ...]) -> str:
    if isinstance(value, str) and value in choices:
        return value
    raise RuleError(f"{where} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")


def _tiers(value: object, source: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise RuleError(f"{source}: tiers must be [tiers.<name>] tables, got {value!r}")
    tiers: dict[str, str] = {}
    for name, table in value.items():
        where = f"{source}: [tiers.{name}]"
        if not _NAME.fullmatch(name):
            raise RuleError(f"{where}: a tier name is lower-case letters, digits, '-' or '_'")
        description = _table(table, where, ("description",)).get("description", "")
        if not isinstance(description, str):
            raise RuleError(f"{where}.description must be a string, got {description!r}")
        tiers[name] = description
    return tiers


def _rule(raw: Mapping[str, object], number: int, tiers: Mapping[str, str], source: str) -> Rule:
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RuleError(f"{source}: [[rule]] number {number} .name must be lower-case letters, digits, '-' "
                        f"or '_' (up to 64), got {name!r}")
    where = f"{source}: [[rule]] '{name}' "
    _table(raw, where.rstrip(), _RULE_KEYS)
    for key in ("metric", "window", "threshold", "state"):
        if key not in raw:
            raise RuleError(f"{where}.{key} is missing; every rule names a metric, window, threshold "
                            f"and state")
    metric = Metric(_choice(raw["metric"], f"{where}.metric", tuple(m.value for m in Metric)))
    window = Window(_choice(raw["window"], f"{where}.window", tuple(w.value for w in Window)))
    if metric is Metric.DISTINCT_RECIPIENTS and window not in (Window.TEN_MINUTES, Window.HOUR):
        raise RuleError(f"{where}.window must be '10m' or '1h' for distinct_recipients (distinct recipients "
                        f"are counted per minute for the last hour only), got {window.value!r}")
    threshold = _threshold(raw["threshold"], f"{where}.threshold", metric)
    state = State(_choice(raw["state"], f"{where}.state", tuple(s.value for s in _RULE_STATES)))
    if metric in RATE_METRICS and "min_volume" not in raw:
        raise RuleError(f"{where}.min_volume is missing; {metric.value} is a rate, and a rate rule needs a "
                        f"minimum volume so that one complaint on three messages does not fire it")
    min_volume = _integer(raw.get("min_volume", 0), f"{where}.min_volume", 1 if metric in RATE_METRICS else 0)
    limit = _limit(raw, where, state)
    kinds = _kinds(raw.get("kinds", [k.value for k in IdentityKind]), f"{where}.kinds")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise RuleError(f"{where}.description must be a string, got {description!r}")
    overrides = _table(raw.get("tiers", {}), f"{where}.tiers", tuple(tiers))
    per_tier = {tier: _tier_override(table, f"{where}.tiers.{tier}", metric, state)
                for tier, table in overrides.items()}
    return Rule(name=name, metric=metric, window=window, threshold=threshold, state=state, kinds=kinds,
                min_volume=min_volume, limit_per_hour=limit, description=description, tiers=per_tier)


def _threshold(value: object, where: str, metric: Metric) -> float:
    if metric in FRACTION_METRICS:
        return _number(value, where, 0.0, 1.0, "a number between 0 and 1")
    return _number(value, where, 0.0, None, "a number above 0")


def _limit(raw: Mapping[str, object], where: str, state: State) -> int | None:
    if state is State.THROTTLED:
        if "limit_per_hour" not in raw:
            raise RuleError(f"{where}.limit_per_hour is missing; a rule whose state is 'throttled' says how "
                            f"many messages an hour it still allows")
        return _integer(raw["limit_per_hour"], f"{where}.limit_per_hour", 1)
    if "limit_per_hour" in raw:
        raise RuleError(f"{where}.limit_per_hour only applies to state 'throttled', not {state.value!r}; "
                        f"remove it or change the state")
    return None


def _kinds(value: object, where: str) -> frozenset[IdentityKind]:
    names = tuple(k.value for k in IdentityKind)
    if not isinstance(value, list) or not value:
        raise RuleError(f"{where} must be a non-empty list of identity kinds ({', '.join(names)}), "
                        f"got {value!r}")
    return frozenset(IdentityKind(_choice(v, where, names)) for v in value)


def _tier_override(value: object, where: str, metric: Metric, state: State) -> TierOverride:
    table = _table(value, where, _TIER_KEYS)
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError(f"{where}.enabled must be true or false, got {enabled!r}")
    limit = table.get("limit_per_hour")
    if limit is not None and state is not State.THROTTLED:
        raise RuleError(f"{where}.limit_per_hour only applies to a rule whose state is 'throttled'")
    return TierOverride(
        threshold=(_threshold(table["threshold"], f"{where}.threshold", metric)
                   if "threshold" in table else None),
        min_volume=(_integer(table["min_volume"], f"{where}.min_volume", 1 if metric in RATE_METRICS else 0)
                    if "min_volume" in table else None),
        limit_per_hour=_integer(limit, f"{where}.limit_per_hour", 1) if limit is not None else None,
        enabled=enabled)


def _freemail(value: object, source: str) -> frozenset[str]:
    table = _table(value, f"{source}: [freemail]", ("domains",))
    domains = table.get("domains", [])
    if not isinstance(domains, list) or not all(isinstance(d, str) and "." in d for d in domains):
        raise RuleError(f"{source}: [freemail].domains must be a list of domain names such as 'gmail.com', "
                        f"got {domains!r}")
    return frozenset(d.strip().lower() for d in domains)


def _ladder(value: object, source: str) -> LadderSettings:
    where = f"{source}: [ladder]"
    table = _table(value, where, ("release_fraction", "cooldowns", "probation", "probation_factor",
                                  "strike_memory"))
    default = LadderSettings()
    cooldowns = table.get("cooldowns", [format_duration(c) for c in default.cooldowns])
    if not isinstance(cooldowns, list) or not cooldowns:
        raise RuleError(f"{where}.cooldowns must be a non-empty list of durations such as "
                        f"['1h', '4h', '24h'], got {cooldowns!r}")
    spans = tuple(_duration(c, f"{where}.cooldowns") for c in cooldowns)
    if list(spans) != sorted(spans):
        raise RuleError(f"{where}.cooldowns must not get shorter on repeat, got {cooldowns!r}")
    return LadderSettings(
        release_fraction=_number(table.get("release_fraction", default.release_fraction),
                                 f"{where}.release_fraction", 0.0, 1.0, "a number between 0 and 1"),
        cooldowns=spans,
        probation=_duration(table.get("probation", format_duration(default.probation)), f"{where}.probation"),
        probation_factor=_number(table.get("probation_factor", default.probation_factor),
                                 f"{where}.probation_factor", 0.0, 1.0, "a number between 0 and 1"),
        strike_memory=_duration(table.get("strike_memory", format_duration(default.strike_memory)),
                                f"{where}.strike_memory"))


def _verdicts(value: object, source: str) -> VerdictSettings:
    where = f"{source}: [verdicts]"
    table = _table(value, where, ("false_positive_factor", "false_positive_duration", "confirmed_duration"))
    default = VerdictSettings()
    factor = _number(table.get("false_positive_factor", default.false_positive_factor),
                     f"{where}.false_positive_factor", 0.0, None, "a number of at least 1")
    if factor < 1:
        raise RuleError(f"{where}.false_positive_factor must be a number of at least 1, got {factor!r}")
    return VerdictSettings(
        false_positive_factor=factor,
        false_positive_duration=_duration(table.get("false_positive_duration",
                                                    format_duration(default.false_positive_duration)),
                                          f"{where}.false_positive_duration"),
        confirmed_duration=_duration(table.get("confirmed_duration",
                                               format_duration(default.confirmed_duration)),
                                     f"{where}.confirmed_duration"))
