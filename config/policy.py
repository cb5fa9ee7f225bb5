"""The [policy] section: the policy service (``python app.py policyd`` and ``/v1/policy``).

Where the socket server listens and its bounds (policy.server.ServerOptions), what the MTA is told
(policy.texts.PolicyConfig: the texts per action and identity kind, the support contact, the
fail-open action) and how often a policy node refreshes its decisions from the database and
flushes its counted sends to it (policy/node.py). The texts are checked here, once, at start-up:
a text naming a field that does not exist stops the program with the sentence PolicyConfig gives.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from config.checks import between
from policy.server import ServerOptions, parse_listen
from policy.texts import DEFAULT_TEXTS, PolicyConfig
from reputation.model import Action

__all__ = ["POLICY_INTEGER_KEYS", "POLICY_SCHEMA", "PolicySettings", "policy_settings"]


@dataclass(frozen=True)
class PolicySettings:
    """[policy], as written, and the PolicyConfig and ServerOptions built from it."""

    listen: list[str]
    idle_timeout: int
    max_connections: int
    fail_open: str
    fail_open_text: str
    support: str
    texts: dict[str, str]
    refresh_seconds: float
    reload_seconds: int
    flush_seconds: float
    max_unflushed: int
    config: PolicyConfig = field(default_factory=PolicyConfig, repr=False, compare=False)
    options: ServerOptions = field(default_factory=ServerOptions, repr=False, compare=False)


def _listen(value: object) -> list[str]:
    if isinstance(value, str):  # from the environment: comma-separated, or a TOML array
        text = value.strip()
        value = _toml(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError('must be a list of addresses such as '
                         '["127.0.0.1:10040", "unix:/run/ricochet/policy.sock"]')
    for spec in value:
        try:
            parse_listen(spec)
        except ValueError as error:
            raise ValueError(f"has a bad address: {str(error).removeprefix('--listen ')}") from None
    return list(value)


def _toml(text: str) -> object:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"is not a valid TOML value ({exc})") from None


def _seconds(low: float, high: float) -> Callable[[object], float]:
    def validate(value: object) -> float:
        if isinstance(value, str):  # from the environment
            with contextlib.suppress(ValueError):
                value = float(value.strip())
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ValueError(f"must be a number of seconds between {low:g} and {high:g}")
        return float(value)
    return validate


def _fail_open(value: object) -> str:
    if not isinstance(value, str) or value.strip().lower() not in (Action.ALLOW.value, Action.DEFER.value):
        raise ValueError('must be "allow" (let mail through when the lookup fails) or "defer"')
    return value.strip().lower()


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise ValueError("must be one line of text in quotes")
    return value


def _texts(value: object) -> dict[str, str]:
    if isinstance(value, str):  # from the environment: a TOML inline table
        value = _toml(value.strip() or "{}")
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError('must be a table of name = "text", such as { paused = "Paused because {reason}" }')
    try:
        PolicyConfig(texts={**DEFAULT_TEXTS, **value})
    except ValueError as error:
        raise ValueError(f"is not accepted: {error}") from None
    return dict(value)


# Validators of each key; they raise ValueError with the end of the sentence after '[policy].key'.
POLICY_SCHEMA: dict[str, Callable[[object], object]] = {
    "listen": _listen,
    "idle_timeout": between(1, 86400, "seconds"),
    "max_connections": between(1, 100_000, "connections"),
    "fail_open": _fail_open,
    "fail_open_text": _text,
    "support": _text,
    "texts": _texts,
    "refresh_seconds": _seconds(0.1, 60),
    "reload_seconds": between(1, 86400, "seconds"),
    "flush_seconds": _seconds(0.1, 60),
    "max_unflushed": between(1000, 10_000_000, "counter buckets"),
}
POLICY_INTEGER_KEYS = frozenset({"idle_timeout", "max_connections", "reload_seconds", "max_unflushed"})


def policy_settings(values: Mapping[str, object]) -> PolicySettings:
    """The validated [policy] section, with its PolicyConfig and ServerOptions built."""
    texts = dict(values["texts"])  # type: ignore[call-overload]
    fail_open, support = str(values["fail_open"]), str(values["support"])
    fail_open_text = str(values["fail_open_text"])
    config = PolicyConfig(texts={**DEFAULT_TEXTS, **texts}, support=support, fail_open=Action(fail_open),
                          fail_open_text=fail_open_text)
    idle_timeout, max_connections = int(str(values["idle_timeout"])), int(str(values["max_connections"]))
    options = ServerOptions(idle_timeout=float(idle_timeout), max_connections=max_connections)
    return PolicySettings(
        listen=list(values["listen"]),  # type: ignore[call-overload]
        idle_timeout=idle_timeout, max_connections=max_connections, fail_open=fail_open,
        fail_open_text=fail_open_text, support=support, texts=texts,
        refresh_seconds=float(str(values["refresh_seconds"])),
        reload_seconds=int(str(values["reload_seconds"])),
        flush_seconds=float(str(values["flush_seconds"])), max_unflushed=int(str(values["max_unflushed"])),
        config=config, options=options)
