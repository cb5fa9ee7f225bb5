"""config/rules.toml: the shipped defaults load, and every mistake is refused with a sentence."""

from __future__ import annotations

import copy
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reputation import IdentityKind, Metric, RuleError, State, load_rules
from reputation.rules import parse_duration

RULES_FILE = Path(__file__).resolve().parent.parent / "config" / "rules.toml"
SHIPPED: dict[str, Any] = tomllib.loads(RULES_FILE.read_text(encoding="utf-8"))
RATE_RULE = {"name": "complaint-rate", "metric": "complaint_rate", "window": "24h", "threshold": 0.003,
             "min_volume": 500, "state": "paused"}


def test_shipped_rules_load() -> None:
    rules = load_rules(SHIPPED)
    assert {"gmail.com", "outlook.com", "yahoo.com", "icloud.com", "gmx.de", "web.de", "mail.ru",
            "yandex.ru"} <= rules.freemail_domains
    assert rules.ladder.cooldowns == (timedelta(hours=1), timedelta(hours=4), timedelta(hours=24))
    assert "trusted" in rules.tiers
    # Every rate rule carries a minimum-volume guard.
    assert all(r.min_volume >= 1 for r in rules.rules if r.metric.value.endswith(("_rate", "_share")))
    pause = rules.rule("complaint-rate-pause")
    assert pause is not None and (pause.threshold, pause.state) == (0.005, State.PAUSED)  # Amazon SES
    assert IdentityKind.IP not in pause.kinds  # the shared outbound IP is never paused by a rule


def test_tier_overrides_apply_per_rule() -> None:
    rules = load_rules(SHIPPED)
    burst = rules.rule("distinct-recipients-burst")
    assert burst is not None
    trusted = burst.for_tier("trusted")
    assert trusted is not None and trusted.threshold == 5000 and burst.for_tier(None) is burst
    flood = rules.rule("freemail-flood")
    assert flood is not None and flood.for_tier("trusted") is None and flood.for_tier("other") is flood


def test_empty_document_gives_defaults() -> None:
    rules = load_rules({})
    assert rules.rules == () and rules.ladder.release_fraction == 0.5
    assert rules.verdicts.false_positive_factor == 2


def with_rule(**changes: object) -> dict[str, object]:
    rule = {**RATE_RULE, **changes}
    return {"rule": [{k: v for k, v in rule.items() if v is not None}]}


@pytest.mark.parametrize(("document", "sentence"), [
    (with_rule(threshold="x"),
     "config/rules.toml: [[rule]] 'complaint-rate' .threshold must be a number between 0 and 1, got 'x'"),
    (with_rule(threshold=3),
     "config/rules.toml: [[rule]] 'complaint-rate' .threshold must be a number between 0 and 1, got 3"),
    (with_rule(metric="sends", threshold=-1, min_volume=None),
     "config/rules.toml: [[rule]] 'complaint-rate' .threshold must be a number above 0, got -1"),
    (with_rule(min_volume=None),
     "config/rules.toml: [[rule]] 'complaint-rate' .min_volume is missing; complaint_rate is a rate, and a "
     "rate rule needs a minimum volume so that one complaint on three messages does not fire it"),
    (with_rule(min_volume=0),
     "config/rules.toml: [[rule]] 'complaint-rate' .min_volume must be a whole number of at least 1, got 0"),
    (with_rule(metric="spamminess"),
     "config/rules.toml: [[rule]] 'complaint-rate' .metric must be one of 'sends', "),
    (with_rule(window="2h"),
     "config/rules.toml: [[rule]] 'complaint-rate' .window must be one of '10m', '1h', '24h', '7d', "
     "got '2h'"),
    (with_rule(metric="distinct_recipients", threshold=500, window="24h"),
     "config/rules.toml: [[rule]] 'complaint-rate' .window must be '10m' or '1h' for distinct_recipients"),
    (with_rule(state="ok"),
     "config/rules.toml: [[rule]] 'complaint-rate' .state must be one of 'watch', 'throttled', 'paused', "
     "'held', 'blocked', got 'ok'"),
    (with_rule(state="throttled"),
     "config/rules.toml: [[rule]] 'complaint-rate' .limit_per_hour is missing; a rule whose state is "
     "'throttled' says how many messages an hour it still allows"),
    (with_rule(limit_per_hour=10),
     "config/rules.toml: [[rule]] 'complaint-rate' .limit_per_hour only applies to state 'throttled'"),
    (with_rule(kinds=["account", "mailbox"]),
     "config/rules.toml: [[rule]] 'complaint-rate' .kinds must be one of 'account', "),
    (with_rule(kinds=[]),
     "config/rules.toml: [[rule]] 'complaint-rate' .kinds must be a non-empty list of identity kinds"),
    (with_rule(treshold=0.1),
     "config/rules.toml: [[rule]] 'complaint-rate' has an unknown key 'treshold'; the keys are name, "),
    (with_rule(name="Complaint Rate"),
     "config/rules.toml: [[rule]] number 1 .name must be lower-case letters, digits, '-' or '_'"),
    (with_rule(tiers={"gold": {"threshold": 0.01}}),
     "config/rules.toml: [[rule]] 'complaint-rate' .tiers has an unknown key 'gold'; the keys are "),
    ({"tiers": {"trusted": {}}, **with_rule(tiers={"trusted": {"threshold": 2}})},
     "config/rules.toml: [[rule]] 'complaint-rate' .tiers.trusted.threshold must be a number between "
     "0 and 1"),
    ({"rule": [RATE_RULE, RATE_RULE]},
     "config/rules.toml: [[rule]] 'complaint-rate' is defined twice; give each rule its own name"),
    ({"ladder": {"release_fraction": 1.5}},
     "config/rules.toml: [ladder].release_fraction must be a number between 0 and 1, got 1.5"),
    ({"ladder": {"cooldowns": ["4h", "1h"]}},
     "config/rules.toml: [ladder].cooldowns must not get shorter on repeat, got ['4h', '1h']"),
    ({"ladder": {"probation": "a day"}},
     "config/rules.toml: [ladder].probation must be a duration such as '90s', '10m', '4h' or '30d', "
     "got 'a day'"),
    ({"verdicts": {"false_positive_factor": 0.5}},
     "config/rules.toml: [verdicts].false_positive_factor must be a number of at least 1, got 0.5"),
    ({"freemail": {"domains": "gmail.com"}},
     "config/rules.toml: [freemail].domains must be a list of domain names such as 'gmail.com'"),
    ({"rules": []},
     "config/rules.toml: unknown section [rules]; the sections are [freemail], [ladder], [verdicts], "),
])
def test_mistakes_are_refused_with_a_sentence(document: dict[str, object], sentence: str) -> None:
    with pytest.raises(RuleError) as caught:
        load_rules(copy.deepcopy(document))
    assert str(caught.value).startswith(sentence)


def test_booleans_are_not_numbers() -> None:
    with pytest.raises(RuleError, match="threshold must be a number between 0 and 1, got True"):
        load_rules(with_rule(threshold=True))


def test_the_source_name_is_the_callers() -> None:
    with pytest.raises(RuleError, match=r"^/etc/ricochet/rules.toml: \[\[rule\]\] 'complaint-rate'"):
        load_rules(with_rule(threshold="x"), source="/etc/ricochet/rules.toml")


@pytest.mark.parametrize(("text", "span"), [("90s", timedelta(seconds=90)), ("10m", timedelta(minutes=10)),
                                            ("4h", timedelta(hours=4)), ("30d", timedelta(days=30))])
def test_durations(text: str, span: timedelta) -> None:
    assert parse_duration(text) == span


def test_metric_vocabulary_is_closed() -> None:
    assert Metric("complaint_rate") is Metric.COMPLAINT_RATE
    with pytest.raises(ValueError):
        Metric("__import__('os')")
