"""Validators shared by the section parsers of config/: each returns the value or raises ValueError
with the end of the sentence that follows ``[section].key`` (config/settings.py says the rest)."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["between", "boolean"]

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
