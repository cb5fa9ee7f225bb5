"""The [notify] section: where state changes and blocklistings are told (notify/, docs/notify.md).

Webhooks go to ``webhook_urls``, signed with a secret that is never in the configuration: it is
read from the environment variable named by ``secret_env`` or from ``secret_file`` (like
[ingest]'s recipient salt). E-mails go to ``admins`` through the SMTP relay ``smtp_host``; an
empty ``smtp_host`` or ``admins`` sends none.

The relay may want SMTP AUTH (``smtp_user``). Its password is never in the configuration either:
like [imap]'s mailboxes, the configuration names the environment variable (``smtp_password_env``)
or the file (``smtp_password_file``) that holds it, and notify/mail.py reads it at each connection,
so a rotated password file is used without a restart. A password is only sent over TLS, or to a
relay on this host.

The delivery log is pruned daily: delivered rows after ``keep_delivered_days``, failed ones after
``keep_failed_days`` (kept longer, since they are what an admin looks into).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from config.checks import addresses, between

__all__ = ["LOOPBACK_HOSTS", "MIN_SECRET_LENGTH", "NOTIFY_INTEGER_KEYS", "NOTIFY_SCHEMA", "SMTP_SECURITY",
           "NotifySettings", "notify_settings"]

MIN_SECRET_LENGTH = 16
SMTP_SECURITY = ("none", "starttls", "tls")
# Where the SMTP password may travel without TLS: it never leaves the host (as config/imap.py).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class NotifySettings:
    """[notify], with the webhook secret read."""

    webhook_urls: list[str] = field(default_factory=list)
    secret_env: str = "RICOCHET_WEBHOOK_SECRET"
    secret_file: str = ""
    retry_seconds: list[int] = field(default_factory=lambda: [30, 120, 600, 1800, 7200])
    timeout_seconds: int = 10
    deliver_seconds: int = 10
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_security: str = "none"
    mail_from: str = "ricochet@localhost"
    admins: list[str] = field(default_factory=list)
    smtp_user: str = ""  # "" for no SMTP AUTH
    smtp_password_env: str = "RICOCHET_SMTP_PASSWORD"
    smtp_password_file: str = ""
    smtp_ca_file: str = ""  # a PEM file of CAs to trust instead of the system's ("" for the system's)
    keep_delivered_days: int = 90
    keep_failed_days: int = 180
    secret: bytes = field(default=b"", repr=False)

    @property
    def max_attempts(self) -> int:
        """The first attempt and one per retry delay."""
        return len(self.retry_seconds) + 1


def _urls(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and re.match(r"^https?://\S+$", v)
                                              for v in value):
        raise ValueError('must be a list of http:// or https:// URLs, such as ["https://panel.example/hook"]')
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string in quotes")
    return value


def _address(value: object) -> str:
    if not isinstance(value, str) or not re.match(r"^[^@\s]+@[^@\s]+$", value):
        raise ValueError('must be an e-mail address in quotes, such as "ricochet@example.net"')
    return value


def _delays(value: object) -> list[int]:
    if not isinstance(value, list) or not 0 < len(value) <= 20 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 86400 for v in value):
        raise ValueError("must be a list of 1 to 20 delays in seconds (1-86400), such as [30, 120, 600]")
    return value


def _security(value: object) -> str:
    if value not in SMTP_SECURITY:
        raise ValueError(f"must be one of {', '.join(SMTP_SECURITY)}")
    return str(value)


_ADMINS = addresses('["postmaster@example.net"]')

# Validators of each key; they raise ValueError with the end of the sentence after '[notify].key'.
NOTIFY_SCHEMA: dict[str, Callable[[object], object]] = {
    "webhook_urls": _urls,
    "secret_env": _text,
    "secret_file": _text,
    "retry_seconds": _delays,
    "timeout_seconds": between(1, 120, "seconds"),
    "deliver_seconds": between(1, 3600, "seconds"),
    "smtp_host": _text,
    "smtp_port": between(1, 65535, "port"),
    "smtp_security": _security,
    "mail_from": _address,
    "admins": _ADMINS,
    "smtp_user": _text,
    "smtp_password_env": _text,
    "smtp_password_file": _text,
    "smtp_ca_file": _text,
    "keep_delivered_days": between(1, 3650, "days"),
    "keep_failed_days": between(1, 3650, "days"),
}
NOTIFY_INTEGER_KEYS = frozenset({"timeout_seconds", "deliver_seconds", "smtp_port", "keep_delivered_days",
                                 "keep_failed_days"})


def notify_settings(values: Mapping[str, object], env: Mapping[str, str] = os.environ) -> NotifySettings:
    """The validated [notify] section; reads the webhook secret when there are webhook URLs.

    Raises ValueError with a whole sentence (the caller makes it a ConfigError) when the secret
    cannot be had or is too short, or when the SMTP password would cross the network unencrypted.
    (The SMTP password itself is read at each connection, by notify/mail.py.)
    """
    settings = NotifySettings(
        webhook_urls=list(_urls(values["webhook_urls"])), secret_env=str(values["secret_env"]),
        secret_file=str(values["secret_file"]), retry_seconds=list(_delays(values["retry_seconds"])),
        timeout_seconds=int(str(values["timeout_seconds"])),
        deliver_seconds=int(str(values["deliver_seconds"])),
        smtp_host=str(values["smtp_host"]), smtp_port=int(str(values["smtp_port"])),
        smtp_security=str(values["smtp_security"]), mail_from=str(values["mail_from"]),
        admins=list(_ADMINS(values["admins"])), smtp_user=str(values["smtp_user"]).strip(),
        smtp_password_env=str(values["smtp_password_env"]).strip(),
        smtp_password_file=str(values["smtp_password_file"]).strip(),
        smtp_ca_file=str(values["smtp_ca_file"]).strip(),
        keep_delivered_days=int(str(values["keep_delivered_days"])),
        keep_failed_days=int(str(values["keep_failed_days"])))
    _check_smtp_auth(settings)
    if not settings.webhook_urls:
        return settings
    return NotifySettings(**{**settings.__dict__, "secret": _read_secret(settings, env)})


def _check_smtp_auth(settings: NotifySettings) -> None:
    if not settings.smtp_user:
        return
    if not settings.smtp_password_env and not settings.smtp_password_file:
        raise ValueError("[notify].smtp_user needs a password: set [notify].smtp_password_env (the name of "
                         "an environment variable holding it) or [notify].smtp_password_file (a file)")
    host = settings.smtp_host.lower()
    if settings.smtp_security == "none" and host and host not in LOOPBACK_HOSTS:
        raise ValueError(f'[notify].smtp_user with smtp_security = "none" would send the password '
                         f'unencrypted to {settings.smtp_host}; set smtp_security to "starttls" '
                         f'(port 587 or 25) or "tls" (port 465)')


def _read_secret(settings: NotifySettings, env: Mapping[str, str]) -> bytes:
    if settings.secret_env and env.get(settings.secret_env, "").strip():
        where, text = f"environment variable {settings.secret_env}", env[settings.secret_env].strip()
    elif settings.secret_file:
        where = f"[notify].secret_file {settings.secret_file}"
        try:
            text = Path(settings.secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{where}: cannot be read ({exc.strerror}); [notify].webhook_urls needs the "
                             f"webhook secret there") from None
    else:
        named = f"the environment variable {settings.secret_env} or " if settings.secret_env else ""
        raise ValueError(f"[notify].webhook_urls needs a secret to sign the webhooks: set {named}"
                         f"[notify].secret_file (for example: head -c 32 /dev/urandom | base64)")
    if len(text) < MIN_SECRET_LENGTH:
        raise ValueError(f"{where}: the webhook secret must have at least {MIN_SECRET_LENGTH} characters, "
                         f"got {len(text)} (for example: head -c 32 /dev/urandom | base64)")
    return text.encode("utf-8")
