"""The [web] section: the dashboard's session cookie and its login throttle.

The session secret signs the cookies. It is never in a file of the repository: it comes from the
environment variable RICOCHET_WEB_SECRET_KEY (which sets ``secret_key``), or from the file
``secret_key_file``, which web/dashboard/access.py creates with a random secret (mode 0600) at the
first start when it does not exist, so that a fresh checkout runs with no set-up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from config.checks import between, boolean

__all__ = ["MIN_SECRET_LENGTH", "WEB_INTEGER_KEYS", "WEB_SCHEMA", "WebSettings", "web_settings"]

# 32 characters of a random hex or base64 string carry 128 bits or more.
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class WebSettings:
    """[web]: session secret and cookie, login failures allowed before a pause."""

    secret_key_file: str
    secure_cookies: bool
    session_hours: int
    login_max_failures: int
    login_lockout_seconds: int
    # Kept out of repr(), so that a logged Settings does not show it.
    secret_key: str = field(default="", repr=False)


def _secret(value: object) -> str:
    if not isinstance(value, str) or (value.strip() and len(value.strip()) < MIN_SECRET_LENGTH):
        raise ValueError(f"must be empty or a random string of at least {MIN_SECRET_LENGTH} characters "
                         "(python -c 'import secrets; print(secrets.token_hex(32))')")
    return value.strip()


def _path(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError('must be a file path in quotes, such as "var/web-secret.key"')
    return value.strip()


# Validators of each key; they raise ValueError with the end of the sentence after '[web].key'.
WEB_SCHEMA: dict[str, Callable[[object], object]] = {
    "secret_key": _secret,
    "secret_key_file": _path,
    "secure_cookies": boolean,
    "session_hours": between(1, 720, "hours"),
    "login_max_failures": between(1, 100, "failed logins"),
    "login_lockout_seconds": between(1, 86400, "seconds"),
}
WEB_INTEGER_KEYS = frozenset({"session_hours", "login_max_failures", "login_lockout_seconds"})


def web_settings(values: Mapping[str, object]) -> WebSettings:
    """The validated [web] section (each value has passed WEB_SCHEMA)."""
    return WebSettings(secret_key=str(values["secret_key"]), secret_key_file=str(values["secret_key_file"]),
                       secure_cookies=bool(values["secure_cookies"]),
                       session_hours=int(str(values["session_hours"])),
                       login_max_failures=int(str(values["login_max_failures"])),
                       login_lockout_seconds=int(str(values["login_lockout_seconds"])))
