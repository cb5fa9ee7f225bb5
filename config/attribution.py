"""The [attribution] section: which hosts are ours, which headers and return paths name whom.

``attribution.rules_from_mapping`` (the pure package) knows what each key means and checks it; this
module checks each key as it is set (so a bad value names the file or variable it came from),
reads the account -> customer CSV that ``directory_csv`` names, and builds the rules once.

Lists can be overridden from the environment as a TOML array (``RICOCHET_ATTRIBUTION_TRUSTED_HOSTS=
'["mx*.provider.example"]'``) or, for simple values, comma-separated (``mx1.example,mx2.example``);
``RICOCHET_ATTRIBUTION_ORDER`` takes a TOML inline table.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution import AttributionRules, DirectoryError, load_directory_csv, rules_from_mapping

__all__ = ["ATTRIBUTION_SCHEMA", "AttributionSettings", "attribution_settings"]

_LIST_KEYS = ("trusted_hosts", "trusted_networks", "appended_headers", "local_headers", "local_submission",
              "verp")


@dataclass(frozen=True)
class AttributionSettings:
    """[attribution], as written (lists and tables), and the rules built from it."""

    trusted_hosts: list[str]
    trusted_networks: list[str]
    appended_headers: list[str]
    local_headers: list[str]
    local_submission: list[str]
    verp: list[str]
    headers: list[dict[str, Any]]
    directory_csv: str
    order: dict[str, list[str]]
    rules: AttributionRules = field(default_factory=AttributionRules, repr=False, compare=False)


def _toml_value(text: str) -> object:
    """An environment variable's text as a TOML value, when it is written as one."""
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            return tomllib.loads(f"value = {stripped}")["value"]
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"is not a valid TOML array or inline table ({exc})") from None
    return stripped


def _checked(key: str) -> Callable[[object], object]:
    """A validator for ``key``: the value must be accepted by ``rules_from_mapping`` on its own."""

    def validate(value: object) -> object:
        if isinstance(value, str):
            value = _toml_value(value)
            if isinstance(value, str) and key in _LIST_KEYS:
                value = [item.strip() for item in value.split(",") if item.strip()]
        if key in _LIST_KEYS or key == "headers":
            if not isinstance(value, list):
                raise ValueError("must be a list, such as [] or [\"...\"]")
        elif key == "order" and not isinstance(value, dict):
            raise ValueError('must be a table of kind = [sources], such as '
                             '{ account = ["header", "ledger"] }')
        try:
            rules_from_mapping({key: value})
        except ValueError as error:
            raise ValueError(f"is not accepted: {error}") from None
        return value

    return validate


def _csv_path(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError('must be the path of a CSV file in quotes, or "" for none')
    return value.strip()


# Validators of each key; they raise ValueError with the end of the sentence after '[attribution].key'.
ATTRIBUTION_SCHEMA: dict[str, Callable[[object], object]] = {
    **{key: _checked(key) for key in (*_LIST_KEYS, "headers", "order")},
    "directory_csv": _csv_path,
}


def attribution_settings(values: Mapping[str, object]) -> AttributionSettings:
    """The validated [attribution] section, with its rules (and the CSV directory) built.

    Raises ValueError with a whole sentence when the directory CSV cannot be read or has bad rows.
    """
    table: dict[str, Any] = {key: values[key] for key in ATTRIBUTION_SCHEMA}
    mapping = {key: value for key, value in table.items() if key != "directory_csv"}
    if not table["headers"]:
        # An empty list keeps the built-in header rules (attribution.DEFAULT_HEADER_RULES).
        del mapping["headers"]
    directory = _directory(table["directory_csv"]) if table["directory_csv"] else {}
    try:
        rules = rules_from_mapping(mapping, directory=directory)
    except ValueError as error:  # each key was checked alone; kept for safety
        raise ValueError(str(error)) from None
    return AttributionSettings(**table, rules=rules)


def _directory(path: str) -> dict[str, str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"[attribution].directory_csv {path}: cannot be read ({exc.strerror}); "
                         "give the path of an account,customer CSV file, or \"\" for none") from None
    except UnicodeDecodeError:
        raise ValueError(f"[attribution].directory_csv {path}: is not UTF-8 text; save it as UTF-8") from None
    try:
        return load_directory_csv(text)
    except DirectoryError as error:
        raise ValueError(f"[attribution].directory_csv {path}: {error}") from None
