"""The [imap] section: the mailboxes the IMAP collector reads (ingest/imap.py), and how it retries.

Any number of mailboxes, one ``[[imap.mailbox]]`` table each (docs/imap.md). The scalar keys of
[imap] are checked one by one as they are set (so a bad value names the file or variable it came
from, through config/settings.py); the mailbox tables are checked together by ``imap_settings``,
whose ValueError is a whole sentence naming the mailbox and the key.

Passwords are never in the configuration: a mailbox names the environment variable
(``password_env``) or the file (``password_file``) that holds it, read when connecting.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from config.checks import boolean

__all__ = ["IMAP_SCHEMA", "LOOPBACK_HOSTS", "SECURITY_MODES", "ImapMailbox", "ImapSettings", "imap_settings"]

SECURITY_MODES = ("tls", "starttls", "none")
# Where a password may travel unencrypted without `allow_plaintext = true`: it never leaves the host.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_DEFAULT_PORTS = {"tls": 993, "starttls": 143, "none": 143}  # RFC 8314 section 7.3; RFC 3501
# Mailbox names become the message source ("imap:<name>") and the scheduler job id ("imap:<name>").
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class ImapMailbox:
    """One ``[[imap.mailbox]]`` table, checked and with its defaults filled in."""

    name: str
    host: str
    port: int
    security: str  # tls | starttls | none
    user: str
    password_env: str  # the environment variable holding the password ("" when password_file is used)
    password_file: str  # the file holding the password ("" when password_env is used)
    folder: str = "INBOX"
    processed_folder: str = "Ricochet/Processed"
    quarantine_folder: str = "Ricochet/Quarantine"
    flag_instead_of_move: bool = False
    batch_size: int = 100
    poll_seconds: int = 60
    allow_plaintext: bool = False
    ca_file: str = ""  # a PEM file of certificates to trust instead of the system's ("" for the system's)

    @property
    def source(self) -> str:
        """The ``source`` of the raw messages collected from this mailbox."""
        return f"imap:{self.name}"


@dataclass(frozen=True)
class ImapSettings:
    """[imap], as written, and the mailboxes built from it."""

    enabled: bool
    timeout_seconds: int
    connect_attempts: int
    backoff_seconds: int
    backoff_max_seconds: int
    mailbox: list[dict[str, Any]]  # the tables as written (default.toml: [])
    mailboxes: tuple[ImapMailbox, ...] = field(default=(), repr=False, compare=False)


def _integer(low: int, high: int, unit: str) -> Callable[[object], int]:
    def validate(value: object) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be an integer from {low} to {high} ({unit})")
        return value

    return validate


def _tables(value: object) -> list[dict[str, Any]]:
    if isinstance(value, str) and value.strip().startswith("["):  # RICOCHET_IMAP_MAILBOX as TOML
        try:
            value = tomllib.loads(f"value = {value.strip()}")["value"]
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"is not a valid TOML array of inline tables ({exc})") from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("must be a list of [[imap.mailbox]] tables (docs/imap.md)")
    return value


IMAP_SCHEMA: dict[str, Callable[[object], object]] = {
    "enabled": boolean,
    "timeout_seconds": _integer(1, 3600, "seconds"),
    "connect_attempts": _integer(1, 100, "attempts"),
    "backoff_seconds": _integer(0, 3600, "seconds"),
    "backoff_max_seconds": _integer(0, 86400, "seconds"),
    "mailbox": _tables,
}

_REQUIRED = ("name", "host", "user")
_OPTIONAL: dict[str, Callable[[object], object]] = {
    "port": _integer(1, 65535, "a TCP port"),
    "security": lambda value: _choice(value, SECURITY_MODES),
    "password_env": lambda value: _text(value, empty=True),
    "password_file": lambda value: _text(value, empty=True),
    "folder": lambda value: _text(value),
    "processed_folder": lambda value: _text(value),
    "quarantine_folder": lambda value: _text(value),
    "flag_instead_of_move": boolean,
    "batch_size": _integer(1, 100000, "messages per poll"),
    "poll_seconds": _integer(1, 86400, "seconds"),
    "allow_plaintext": boolean,
    "ca_file": lambda value: _text(value, empty=True),
}


def _text(value: object, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise ValueError('must be a string in quotes' + (' ("" for none)' if empty else ""))
    return value.strip()


def _choice(value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise ValueError(f"must be one of {', '.join(repr(choice) for choice in choices)}")
    return value.strip().lower()


def _mailbox(number: int, table: Mapping[str, Any]) -> ImapMailbox:
    label = f"[[imap.mailbox]] #{number}"
    if isinstance(table.get("name"), str):
        label += f" ({table['name']!r})"
    unknown = sorted(set(table) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ValueError(f"{label}: unknown key {unknown[0]}; a mailbox has "
                         f"{', '.join((*_REQUIRED, *_OPTIONAL))}")
    values: dict[str, Any] = {}
    for key in (*_REQUIRED, *_OPTIONAL):
        if key not in table:
            if key in _REQUIRED:
                raise ValueError(f"{label}: {key} is missing; every mailbox needs name, host and user")
            continue
        check = _OPTIONAL.get(key) or (lambda value: _text(value))
        try:
            values[key] = check(table[key])
        except ValueError as bad:
            raise ValueError(f"{label}: {key} {bad}, got {table[key]!r}") from None
    if not _NAME.match(values["name"]):
        raise ValueError(f"{label}: name must be letters, digits, '.', '_' or '-' (at most 63), "
                         f"got {values['name']!r}")
    if bool(values.get("password_env")) == bool(values.get("password_file")):
        raise ValueError(f"{label}: set exactly one of password_env (the name of an environment "
                         "variable holding the password) and password_file (a file holding it)")
    values.setdefault("security", "tls")
    values.setdefault("port", _DEFAULT_PORTS[values["security"]])
    if values["security"] == "none" and values["host"].lower() not in LOOPBACK_HOSTS \
            and not values.get("allow_plaintext", False):
        raise ValueError(f"{label}: security = \"none\" would send the password unencrypted to "
                         f"{values['host']}; use \"tls\" or \"starttls\", or set allow_plaintext = true")
    values.setdefault("password_env", "")
    values.setdefault("password_file", "")
    mailbox = ImapMailbox(**values)
    targets = (mailbox.processed_folder, mailbox.quarantine_folder)
    if not mailbox.flag_instead_of_move and mailbox.folder in targets:
        # Moving a message into the folder it is read from gives it a new UID: read again forever.
        raise ValueError(f"{label}: processed_folder and quarantine_folder must differ from folder "
                         f"({mailbox.folder!r}); or set flag_instead_of_move = true")
    return mailbox


def imap_settings(values: Mapping[str, object]) -> ImapSettings:
    """[imap] from its checked keys; raises ValueError (a whole sentence) for a bad mailbox table."""
    tables = _tables(values["mailbox"])
    mailboxes = tuple(_mailbox(number, table) for number, table in enumerate(tables, start=1))
    names = [mailbox.name for mailbox in mailboxes]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise ValueError(f"[[imap.mailbox]]: two mailboxes are named {duplicate!r}; give each its own name "
                         "(it names the messages' source and the collection state)")
    return ImapSettings(
        enabled=boolean(values["enabled"]),
        timeout_seconds=_integer(1, 3600, "seconds")(values["timeout_seconds"]),
        connect_attempts=_integer(1, 100, "attempts")(values["connect_attempts"]),
        backoff_seconds=_integer(0, 3600, "seconds")(values["backoff_seconds"]),
        backoff_max_seconds=_integer(0, 86400, "seconds")(values["backoff_max_seconds"]),
        mailbox=tables,
        mailboxes=mailboxes,
    )
