"""Typed, frozen settings, loaded once at start-up and passed to whoever needs them.

Layers, later ones win: ``config/default.toml`` (every key, with its default), then an optional
file of the operator's that sets only what it changes, then environment variables
``RICOCHET_<SECTION>_<KEY>``. Every value is checked here, so a bad one stops start-up with a
sentence that names the key, where it was set and what to write instead.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from config.attribution import ATTRIBUTION_SCHEMA, AttributionSettings, attribution_settings
from config.checks import between
from config.imap import IMAP_SCHEMA, ImapSettings, imap_settings
from config.ingest import INGEST_INTEGER_KEYS, INGEST_SCHEMA, IngestSettings, ingest_settings
from config.notify import NOTIFY_INTEGER_KEYS, NOTIFY_SCHEMA, NotifySettings, notify_settings
from config.policy import POLICY_INTEGER_KEYS, POLICY_SCHEMA, PolicySettings, policy_settings
from config.reports import REPORTS_INTEGER_KEYS, REPORTS_SCHEMA, ReportsSettings, reports_settings
from config.reputation import (
    REPUTATION_INTEGER_KEYS,
    REPUTATION_SCHEMA,
    ReputationSettings,
    reputation_settings,
)
from config.web import WEB_INTEGER_KEYS, WEB_SCHEMA, WebSettings, web_settings

__all__ = [
    "DEFAULT_FILE",
    "ENV_PREFIX",
    "LOG_LEVELS",
    "ApiSettings",
    "AttributionSettings",
    "ConfigError",
    "DatabaseSettings",
    "ImapSettings",
    "IngestSettings",
    "LogSettings",
    "NotifySettings",
    "ParseSettings",
    "PolicySettings",
    "ReportsSettings",
    "ReputationSettings",
    "ServerSettings",
    "Settings",
    "WebSettings",
    "env_var",
    "load_settings",
]

DEFAULT_FILE = Path(__file__).with_name("default.toml")
ENV_PREFIX = "RICOCHET_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

T = TypeVar("T")


class ConfigError(Exception):
    """A setting is missing, unknown or bad; ``str(error)`` is the sentence to show the operator."""


@dataclass(frozen=True)
class ServerSettings:
    """[server]: where the HTTP service listens, how many requests at once, which proxy it believes."""

    host: str
    port: int
    threads: int
    # The reverse proxy whose X-Forwarded-For and X-Forwarded-Proto are believed: its address,
    # "*" for any peer, "" for none; and how many proxies in a row add to X-Forwarded-For.
    trusted_proxy: str
    trusted_proxy_count: int


@dataclass(frozen=True)
class LogSettings:
    """[log]: how much is logged."""

    level: str


@dataclass(frozen=True)
class DatabaseSettings:
    """[database]: the SQLAlchemy URL of the store."""

    url: str


@dataclass(frozen=True)
class ParseSettings:
    """[parse]: limits applied when reading raw messages."""

    max_message_bytes: int


@dataclass(frozen=True)
class ApiSettings:
    """[api]: limits of the HTTP API (web/)."""

    max_body_bytes: int


@dataclass(frozen=True)
class Settings:
    """Every setting of Ricochet, validated."""

    server: ServerSettings
    log: LogSettings
    database: DatabaseSettings
    parse: ParseSettings
    api: ApiSettings
    ingest: IngestSettings
    attribution: AttributionSettings
    imap: ImapSettings
    reputation: ReputationSettings
    policy: PolicySettings
    notify: NotifySettings
    reports: ReportsSettings
    web: WebSettings


class _Bad(ValueError):
    """A validator's complaint: the end of the sentence after '[section].key'."""


def _host(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise _Bad("must be a host name or IP address such as 127.0.0.1 or 0.0.0.0")
    return value


def _proxy(value: object) -> str:
    if not isinstance(value, str):
        raise _Bad('must be the address of your reverse proxy in quotes, such as "127.0.0.1", or "*" or ""')
    text = value.strip()
    if text in ("", "*"):
        return text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise _Bad('must be one IP address (the reverse proxy\'s, such as "127.0.0.1"), "*" for any '
                   'peer, or "" for none') from None


def _port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _Bad("must be an integer between 1 and 65535")
    return value


def _level(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in LOG_LEVELS:
        raise _Bad(f"must be one of {', '.join(LOG_LEVELS)}")
    return value.upper()


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _url(value: object) -> str:
    if not isinstance(value, str) or not _URL.match(value):
        raise _Bad("must be a database URL such as sqlite:///var/ricochet.db or "
                   "postgresql+psycopg://user:password@host/ricochet")
    return value


def _message_bytes(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
        raise _Bad("must be an integer of at least 1024 (bytes)")
    return value


# The schema: section -> key -> validator. Keep it, default.toml and docs/config.md in step
# (tests/test_config.py checks that they are).
_SCHEMA: dict[str, dict[str, Callable[[object], object]]] = {
    "server": {"host": _host, "port": _port, "threads": between(1, 256, "worker threads"),
               "trusted_proxy": _proxy, "trusted_proxy_count": between(1, 10, "proxies")},
    "log": {"level": _level},
    "database": {"url": _url},
    "parse": {"max_message_bytes": _message_bytes},
    "api": {"max_body_bytes": _message_bytes},
    "ingest": INGEST_SCHEMA,  # config/ingest.py
    "attribution": ATTRIBUTION_SCHEMA,  # config/attribution.py
    "imap": IMAP_SCHEMA,  # config/imap.py
    "reputation": REPUTATION_SCHEMA,  # config/reputation.py
    "policy": POLICY_SCHEMA,  # config/policy.py
    "notify": NOTIFY_SCHEMA,  # config/notify.py
    "reports": REPORTS_SCHEMA,  # config/reports.py
    "web": WEB_SCHEMA,  # config/web.py
}
# Keys whose environment variable is read as an integer.
_INTEGER_KEYS = frozenset({("server", "port"), ("server", "threads"), ("server", "trusted_proxy_count"),
                           ("parse", "max_message_bytes"), ("api", "max_body_bytes")}
                          | {("ingest", key) for key in INGEST_INTEGER_KEYS}
                          | {("reputation", key) for key in REPUTATION_INTEGER_KEYS}
                          | {("policy", key) for key in POLICY_INTEGER_KEYS}
                          | {("notify", key) for key in NOTIFY_INTEGER_KEYS}
                          | {("reports", key) for key in REPORTS_INTEGER_KEYS}
                          | {("web", key) for key in WEB_INTEGER_KEYS})


def env_var(section: str, key: str) -> str:
    """The environment variable that overrides ``[section].key``."""
    return f"{ENV_PREFIX}{section}_{key}".upper()


def load_settings(path: str | os.PathLike[str] | None = None,
                  env: Mapping[str, str] = os.environ) -> Settings:
    """Read default.toml, then ``path`` if given, then ``RICOCHET_*`` variables from ``env``.

    Raises ConfigError, with a sentence naming the key and the fix, on any bad value, unknown
    key or unreadable file.
    """
    values: dict[str, dict[str, object]] = {section: {} for section in _SCHEMA}
    _merge_file(values, DEFAULT_FILE)
    if path is not None:
        _merge_file(values, Path(path))
    _merge_env(values, env)
    for section, keys in _SCHEMA.items():
        for key in keys:
            if key not in values[section]:
                raise ConfigError(f"{_display(DEFAULT_FILE)}: [{section}].{key} is missing; "
                                  f"add it back (docs/config.md gives its default)")
    return Settings(
        server=ServerSettings(host=_typed(values, "server", "host", str),
                              port=_typed(values, "server", "port", int),
                              threads=_typed(values, "server", "threads", int),
                              trusted_proxy=_typed(values, "server", "trusted_proxy", str),
                              trusted_proxy_count=_typed(values, "server", "trusted_proxy_count", int)),
        log=LogSettings(level=_typed(values, "log", "level", str)),
        database=DatabaseSettings(url=_typed(values, "database", "url", str)),
        parse=ParseSettings(max_message_bytes=_typed(values, "parse", "max_message_bytes", int)),
        api=ApiSettings(max_body_bytes=_typed(values, "api", "max_body_bytes", int)),
        ingest=_section(ingest_settings, values["ingest"], env),
        attribution=_section(attribution_settings, values["attribution"]),
        imap=_section(imap_settings, values["imap"]),
        reputation=_section(reputation_settings, values["reputation"]),
        policy=_section(policy_settings, values["policy"]),
        notify=_section(notify_settings, values["notify"], env),
        reports=_section(reports_settings, values["reports"]),
        web=_section(web_settings, values["web"]),
    )


def _merge_file(values: dict[str, dict[str, object]], path: Path) -> None:
    where = _display(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file; give the path of an existing TOML file "
                          f"to --config or RICOCHET_CONFIG") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror}); check its permissions") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: is not valid TOML ({exc}); fix the syntax") from None
    for section, table in data.items():
        if section not in _SCHEMA:
            raise ConfigError(f"{where}: unknown section [{section}]; the sections are "
                              f"{', '.join(f'[{s}]' for s in _SCHEMA)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {section} must be a [{section}] table of keys, got {table!r}")
        for key, value in table.items():
            _set(values, section, key, value, where)


def _merge_env(values: dict[str, dict[str, object]], env: Mapping[str, str]) -> None:
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section = next((s for s in _SCHEMA if rest.startswith(s + "_")), None)
        if section is None:
            continue  # RICOCHET_CONFIG and variables of other tools are not settings
        key = rest[len(section) + 1:]
        value: object = env[name]
        if (section, key) in _INTEGER_KEYS:
            # A string that is no integer goes on as given, for the validator to report.
            with contextlib.suppress(ValueError):
                value = int(env[name].strip())
        _set(values, section, key, value, f"environment variable {name}")


def _set(values: dict[str, dict[str, object]], section: str, key: str, value: object, where: str) -> None:
    validators = _SCHEMA[section]
    if key not in validators:
        raise ConfigError(f"{where}: unknown key [{section}].{key}; [{section}] has "
                          f"{', '.join(validators)}")
    try:
        values[section][key] = validators[key](value)
    except ValueError as bad:  # _Bad, or the ValueError of a section module's validator
        raise ConfigError(f"{where}: [{section}].{key} {bad}, got {value!r}") from None


def _section(build: Callable[..., T], *args: object) -> T:
    """A section built by its own module (config/<section>.py), whose ValueError is a whole sentence."""
    try:
        return build(*args)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _typed(values: dict[str, dict[str, object]], section: str, key: str, kind: type[T]) -> T:
    value = values[section][key]
    if not isinstance(value, kind):  # the validators make this impossible
        raise TypeError(f"[{section}].{key} is {type(value).__name__}, not {kind.__name__}")
    return value


def _display(path: str | os.PathLike[str]) -> str:
    """The path relative to the working directory when it lies below it, as people read it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)
