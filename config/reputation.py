"""The [reputation] section: where the rules are, how often the scheduler evaluates them.

The rules file (config/rules.toml by default) is read and validated here, once, at start-up, by
the pure ``reputation.load_rules``: a mistake in it stops the program with the sentence it gives,
the same way a bad setting does (docs/rules.md explains the file).

The customer -> tier CSV that ``tiers_csv`` names is read here too, and every tier it names must be
one of the rules file's ``[tiers]``: a typo stops the start rather than leave a customer untiered.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from config.checks import between
from reputation import RuleError, RuleSet, load_rules

__all__ = ["REPUTATION_INTEGER_KEYS", "REPUTATION_SCHEMA", "ReputationSettings", "load_tiers_csv",
           "reputation_settings"]

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
    tiers_csv: str = ""
    default_tier: str = ""
    # customer -> tier name, read from ``tiers_csv`` (every name is one of ``rules.tiers``)
    customer_tiers: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)


def _path(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError('must be the path of the rules file in quotes, such as "config/rules.toml"')
    return value


def _csv_path(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError('must be the path of a customer,tier CSV file in quotes, or "" for none')
    return value.strip()


def _tier_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError('must be a tier name of the rules file\'s [tiers] in quotes, or "" for none')
    return value.strip()


# Validators of each key; they raise ValueError with the end of the sentence after '[reputation].key'.
REPUTATION_SCHEMA: dict[str, Callable[[object], object]] = {
    "rules_file": _path,
    "evaluate_seconds": between(1, 3600, "seconds"),
    "upkeep_seconds": between(10, 86400, "seconds"),
    # The 7-day window and the baseline need 169 hours of buckets: at least 8 days.
    "counter_days": between(8, 3650, "days"),
    "tiers_csv": _csv_path,
    "default_tier": _tier_name,
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
    tiers_csv, default_tier = str(values.get("tiers_csv", "")), str(values.get("default_tier", ""))
    if default_tier and default_tier not in rules.tiers:
        raise ValueError(f"[reputation].default_tier {default_tier!r} is not a tier of {rules_file}; "
                         f"use one of its [tiers] ({_names(rules.tiers)}) or \"\" for none")
    customer_tiers = _read_tiers(tiers_csv, rules) if tiers_csv else {}
    return ReputationSettings(rules_file=rules_file, evaluate_seconds=int(str(values["evaluate_seconds"])),
                              upkeep_seconds=int(str(values["upkeep_seconds"])),
                              counter_days=int(str(values["counter_days"])), rules=rules,
                              tiers_csv=tiers_csv, default_tier=default_tier, customer_tiers=customer_tiers)


def _names(tiers: Mapping[str, str]) -> str:
    return ", ".join(sorted(tiers)) or "the file has none"


def _read_tiers(path: str, rules: RuleSet) -> dict[str, str]:
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"[reputation].tiers_csv {path}: cannot be read ({exc.strerror}); give the path "
                         "of a customer,tier CSV file, or \"\" for none") from None
    except UnicodeDecodeError:
        raise ValueError(f"[reputation].tiers_csv {path}: is not UTF-8 text; save it as UTF-8") from None
    return load_tiers_csv(text, path, rules.tiers)


def load_tiers_csv(text: str, source: str, tiers: Mapping[str, str]) -> dict[str, str]:
    """Parse 'customer,tier' CSV with a header row into {customer: tier}.

    The same format as the account directory (attribution/directory.py): the header names the two
    columns in either order, other columns are ignored, blank lines and '#' lines are skipped.
    Raises ValueError naming ``source`` and the line of every bad row: a missing field, a tier not
    in ``tiers`` (the rules file's [tiers]), or a customer listed twice with different tiers.
    """
    rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1)
            if any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")]
    where = f"[reputation].tiers_csv {source}"
    if not rows:
        raise ValueError(f"{where}: the file is empty; write a header row 'customer,tier' and one row "
                         "per customer")
    line, header = rows[0]
    names = [cell.strip().lower() for cell in header]
    if "customer" not in names or "tier" not in names:
        raise ValueError(f"{where}: line {line}: the header row must name the columns 'customer' and "
                         f"'tier', got {','.join(header)!r}")
    customer_at, tier_at = names.index("customer"), names.index("tier")
    assigned: dict[str, tuple[str, int]] = {}
    problems: list[str] = []
    for line, row in rows[1:]:
        if len(row) <= max(customer_at, tier_at):
            problems.append(f"line {line}: expected the fields {','.join(names)}, got {','.join(row)!r}")
            continue
        customer, tier = row[customer_at].strip(), row[tier_at].strip()
        if not customer or not tier:
            problems.append(f"line {line}: the {'customer' if not customer else 'tier'} is empty")
        elif tier not in tiers:
            problems.append(f"line {line}: the tier {tier!r} of customer {customer!r} is not in the rules "
                            f"file's [tiers] ({_names(tiers)})")
        elif customer in assigned and assigned[customer][0] != tier:
            first, at = assigned[customer]
            problems.append(f"line {line}: customer {customer!r} is already in tier {first!r} (line {at}), "
                            f"not {tier!r}")
        else:
            assigned.setdefault(customer, (tier, line))
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems) + "; fix these rows")
    return {customer: tier for customer, (tier, _) in assigned.items()}
