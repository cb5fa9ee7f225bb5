"""The [ingest] section: how the pipeline stores what it learns, and how imports commit.

The recipient hash salt is a secret, so it is never a value in a TOML file: the section names
the environment variable (or the file) that holds it, and the salt is read once, here, at
start-up, so that ``hash_recipients = true`` without a salt stops the program with a sentence
instead of storing addresses in clear.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from config.checks import between, boolean

__all__ = ["INGEST_INTEGER_KEYS", "INGEST_SCHEMA", "MIN_SALT_LENGTH", "IngestSettings", "ingest_settings"]

# An HMAC key shorter than this is guessable; 16 characters of a random string are 80+ bits.
MIN_SALT_LENGTH = 16
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class IngestSettings:
    """[ingest]: what the pipeline stores, and how ``app.py import`` commits."""

    hash_recipients: bool
    recipient_salt_env: str
    recipient_salt_file: str
    import_batch_size: int
    # Read from recipient_salt_env / recipient_salt_file; None when hash_recipients is off.
    recipient_salt: bytes | None = field(default=None, repr=False, compare=False)


def _env_name(value: object) -> str:
    if not isinstance(value, str) or (value and not _ENV_NAME.match(value)):
        raise ValueError("must be the name of an environment variable, such as RICOCHET_RECIPIENT_SALT")
    return value


def _path(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError('must be a file path in quotes, or "" for none')
    return value


# Validators of each key; they raise ValueError with the end of the sentence after '[ingest].key'.
INGEST_SCHEMA: dict[str, Callable[[object], object]] = {
    "hash_recipients": boolean,
    "recipient_salt_env": _env_name,
    "recipient_salt_file": _path,
    "import_batch_size": between(1, 100_000, "messages per commit"),
}
INGEST_INTEGER_KEYS = frozenset({"import_batch_size"})


def ingest_settings(values: Mapping[str, object], env: Mapping[str, str] = os.environ) -> IngestSettings:
    """The validated [ingest] section; reads the salt when ``hash_recipients`` is on.

    Raises ValueError with a whole sentence (the caller makes it a ConfigError) when the salt
    cannot be had or is too short.
    """
    settings = IngestSettings(
        hash_recipients=bool(values["hash_recipients"]),
        recipient_salt_env=str(values["recipient_salt_env"]),
        recipient_salt_file=str(values["recipient_salt_file"]),
        import_batch_size=int(str(values["import_batch_size"])),
    )
    if not settings.hash_recipients:
        return settings
    salt = _read_salt(settings, env)
    return IngestSettings(settings.hash_recipients, settings.recipient_salt_env, settings.recipient_salt_file,
                          settings.import_batch_size, salt)


def _read_salt(settings: IngestSettings, env: Mapping[str, str]) -> bytes:
    where = ""
    text = ""
    if settings.recipient_salt_env and env.get(settings.recipient_salt_env, "").strip():
        where = f"environment variable {settings.recipient_salt_env}"
        text = env[settings.recipient_salt_env].strip()
    elif settings.recipient_salt_file:
        where = f"[ingest].recipient_salt_file {settings.recipient_salt_file}"
        try:
            text = Path(settings.recipient_salt_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{where}: cannot be read ({exc.strerror}); [ingest].hash_recipients = true "
                             f"needs the salt there") from None
    else:
        named = (f"the environment variable {settings.recipient_salt_env} or "
                 if settings.recipient_salt_env else "")
        raise ValueError(f"[ingest].hash_recipients = true needs a secret salt: set {named}"
                         f"[ingest].recipient_salt_file (for example: head -c 32 /dev/urandom | base64)")
    if len(text) < MIN_SALT_LENGTH:
        raise ValueError(f"{where}: the recipient salt must have at least {MIN_SALT_LENGTH} characters, "
                         f"got {len(text)} (for example: head -c 32 /dev/urandom | base64)")
    return text.encode("utf-8")
