"""Validators shared by the section parsers of config/: each returns the value or raises ValueError
with the end of the sentence that follows ``[section].key`` (config/settings.py says the rest)."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["addresses", "between", "boolean"]

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def boolean(value: object) -> bool:
    """A TOML boolean, or its spelling in an environment variable (true/false, 1/0, yes/no, on/off)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("must be true or false")


def between(low: int, high: int, unit: str) -> Callable[[object], int]:
    """A validator of whole numbers from ``low`` to ``high`` (``unit`` names what they count)."""

    def validate(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be an integer between {low} and {high} ({unit})")
        return value

    return validate


_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")


def addresses(example: str) -> Callable[[object], list[str]]:
    """A validator of lists of e-mail addresses; ``example`` ends the sentence, e.g.
    '["postmaster@example.net"]'."""

    def validate(value: object) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) and _ADDRESS.match(v) for v in value):
            raise ValueError(f"must be a list of e-mail addresses, such as {example}")
        return value

    return validate
