"""The [reputation] section: where the rules are, how often the scheduler evaluates them.

The rules file (config/rules.toml by default) is read and validated here, once, at start-up, by
the pure ``reputation.load_rules``: a mistake in it stops the program with the sentence it gives,
the same way a bad setting does (docs/rules.md explains the file).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reputation import RuleError, RuleSet, load_rules

__all__ = ["REPUTATION_INTEGER_KEYS", "REPUTATION_SCHEMA", "ReputationSettings", "reputation_settings"]

# Where the shipped files live: a relative rules_file not found from the working directory is
# looked up from the project directory (so "config/rules.toml" works wherever the program starts).
_PROJECT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ReputationSettings:
    """[reputation], and the rules read from ``rules_file``."""

    rules_file: str
    evaluate_seconds: int
    upkeep_seconds: int
    counter_days: int
    rules: RuleSet = field(default_factory=lambda: RuleSet(rules=()), repr=False, compare=False)


def _path(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError('must be the path of the rules file in quotes, such as "config/rules.toml"')
    return value


def _between(low: int, high: int, unit: str) -> Callable[[object], int]:
    def validate(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be an integer between {low} and {high} ({unit})")
        return value
    return validate


# Validators of each key; they raise ValueError with the end of the sentence after '[reputation].key'.
REPUTATION_SCHEMA: dict[str, Callable[[object], object]] = {
    "rules_file": _path,
    "evaluate_seconds": _between(1, 3600, "seconds"),
    "upkeep_seconds": _between(10, 86400, "seconds"),
    # The 7-day window and the baseline need 169 hours of buckets: at least 8 days.
    "counter_days": _between(8, 3650, "days"),
}
REPUTATION_INTEGER_KEYS = frozenset({"evaluate_seconds", "upkeep_seconds", "counter_days"})


def rules_path(rules_file: str) -> Path:
    """The rules file: as given, or, when relative and absent there, under the project directory."""
    path = Path(rules_file).expanduser()
    if not path.is_absolute() and not path.exists() and (_PROJECT / path).exists():
        return _PROJECT / path
    return path


def reputation_settings(values: Mapping[str, object]) -> ReputationSettings:
    """The validated [reputation] section with its rules loaded.

    Raises ValueError with a whole sentence (the caller makes it a ConfigError) when the rules file
    cannot be read or is not valid.
    """
    rules_file = str(values["rules_file"])
    path = rules_path(rules_file)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ValueError(f"[reputation].rules_file {rules_file}: cannot be read ({exc.strerror}); give the "
                         f"path of a rules file (the shipped one is config/rules.toml)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{rules_file}: is not valid TOML ({exc}); fix the syntax") from None
    try:
        rules = load_rules(data, rules_file)
    except RuleError as error:
        raise ValueError(str(error)) from None
    return ReputationSettings(rules_file=rules_file, evaluate_seconds=int(str(values["evaluate_seconds"])),
                              upkeep_seconds=int(str(values["upkeep_seconds"])),
                              counter_days=int(str(values["counter_days"])), rules=rules)
