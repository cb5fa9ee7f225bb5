"""The admins' e-mail: the explanation and the evidence, sent through the SMTP relay (stdlib).

``send_mail`` is also what mails the weekly report (reports/mail.py). With [notify].smtp_user set
it logs in (SMTP AUTH, RFC 4954) after TLS is up, with the password read at each connection from
the environment variable or file the configuration names (as [imap] does: config/imap.py).
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from config import NotifySettings
from notify.webhook import DeliveryError

__all__ = ["mail_message", "mail_subject", "mail_text", "send_mail", "smtp_password"]


def _who(payload: dict[str, Any]) -> str:
    identity = payload.get("identity") or {}
    return f"{identity.get('kind', '?')} {identity.get('value', '?')}"


def mail_subject(payload: dict[str, Any]) -> str:
    """One line saying what happened."""
    if payload.get("event") == "blocklisted":
        return f"[Ricochet] outbound IP {payload.get('ip')} is on {', '.join(payload.get('blocklists', []))}"
    rule = f" ({payload['rule']})" if payload.get("rule") else ""
    return f"[Ricochet] {_who(payload)}: {payload.get('old_state')} -> {payload.get('new_state')}{rule}"


def mail_text(payload: dict[str, Any]) -> str:
    """The body: what happened, why, and the evidence as indented JSON."""
    if payload.get("event") == "blocklisted":
        lines = [f"A receiver refused mail from our outbound IP {payload.get('ip')} and named "
                 f"{', '.join(payload.get('blocklists', []))}.", "",
                 f"Recipient domain: {payload.get('recipient_domain', '')}",
                 f"Remote MTA: {payload.get('remote_mta') or 'unknown'}",
                 f"Diagnostic: {payload.get('diagnostic', '')}",
                 f"Bounce event: {payload.get('event_id')} at {payload.get('occurred_at')}"]
    else:
        lines = [f"{_who(payload)} went from {payload.get('old_state')} to {payload.get('new_state')} "
                 f"(MTA action: {payload.get('action')}).", "",
                 f"Why: {payload.get('reason') or '-'}",
                 f"Rule: {payload.get('rule') or '(none: an override or the end of a state)'}",
                 f"Decided at: {payload.get('decided_at')}", "", "Evidence:",
                 json.dumps(payload.get("evidence") or {}, indent=2, sort_keys=True, ensure_ascii=False)]
    return "\n".join(lines) + "\n"


def mail_message(payload: dict[str, Any], sender: str, recipient: str) -> EmailMessage:
    """The message to ``recipient``."""
    # CPython's folder may break a long Subject right after "Subject:", which readers then show with
    # a leading space; RFC 5322 section 2.1.1 allows lines up to 998 characters, so do not fold.
    message = EmailMessage(policy=policy.default.clone(max_line_length=998))
    message["From"], message["To"], message["Subject"] = sender, recipient, mail_subject(payload)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(mail_text(payload))
    return message


def smtp_password(settings: NotifySettings, env: Mapping[str, str] = os.environ) -> str:
    """The relay's password, from [notify].smtp_password_env else smtp_password_file; or DeliveryError."""
    name = settings.smtp_password_env
    if name and env.get(name, ""):
        return env[name]
    if settings.smtp_password_file:
        try:
            # One line; a trailing newline (echo secret > file) is not part of the password.
            return Path(settings.smtp_password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise DeliveryError(f"cannot read [notify].smtp_password_file {settings.smtp_password_file} "
                                f"({error.strerror}); check the path and that this user may read it"
                                ) from None
    raise DeliveryError(f"[notify].smtp_user {settings.smtp_user} needs a password: the environment variable "
                        f"{name or '(smtp_password_env is empty)'} is not set or empty, and no "
                        "[notify].smtp_password_file is set")


def _tls_context(settings: NotifySettings) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=settings.smtp_ca_file or None)
    except OSError as error:
        raise DeliveryError(f"cannot read [notify].smtp_ca_file {settings.smtp_ca_file} "
                            f"({error.strerror or error})") from None


def _connect(settings: NotifySettings, context: ssl.SSLContext, password: str | None) -> smtplib.SMTP:
    """A connection to the relay with TLS up as [notify].smtp_security asks, logged in with ``password``."""
    host, port, timeout = settings.smtp_host, settings.smtp_port, settings.timeout_seconds
    if settings.smtp_security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    try:
        if settings.smtp_security == "starttls":
            client.starttls(context=context)
        if password is not None:
            client.login(settings.smtp_user, password)
    except BaseException:
        client.close()
        raise
    return client


def send_mail(settings: NotifySettings, message: EmailMessage, recipients: str | Sequence[str]) -> None:
    """Hand ``message`` to the relay for ``recipients``; raises DeliveryError saying why it failed.

    A recipient the relay refuses while it accepts others is an error too (its address is named),
    so the caller can retry; the accepted ones have the message.
    """
    to = [recipients] if isinstance(recipients, str) else list(recipients)
    where = f"SMTP relay {settings.smtp_host}:{settings.smtp_port}"
    context = _tls_context(settings)
    password = smtp_password(settings) if settings.smtp_user else None  # before connecting for nothing
    try:
        with _connect(settings, context, password) as client:
            refused = client.send_message(message, from_addr=settings.mail_from, to_addrs=to)
    except smtplib.SMTPAuthenticationError as error:
        source = settings.smtp_password_env or settings.smtp_password_file
        raise DeliveryError(f"{where} refused the login of {settings.smtp_user} ({_reply(error)}); check "
                            f"[notify].smtp_user and the password in {source}") from None
    except smtplib.SMTPNotSupportedError as error:
        raise DeliveryError(f"{where}: {error}; check [notify].smtp_security and smtp_port (AUTH is often "
                            "offered only after STARTTLS, STARTTLS only on 25 and 587)") from None
    except ssl.SSLCertVerificationError as error:
        raise DeliveryError(f"{where}: its TLS certificate is not trusted ({error.verify_message}); fix the "
                            "relay's certificate or name its CA in [notify].smtp_ca_file") from None
    except smtplib.SMTPRecipientsRefused as error:
        raise DeliveryError(_refused(where, error.recipients)) from None
    except smtplib.SMTPResponseException as error:  # the sender or the data refused, ...
        raise DeliveryError(f"{where}: {_reply(error)}") from None
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryError(f"{where}: {error}") from None
    if refused:
        raise DeliveryError(_refused(where, refused))


def _refused(where: str, refused: Mapping[str, tuple[int, bytes]]) -> str:
    """``SMTP relay host:port refused a@example.net: 550 5.1.1 No such mailbox``."""
    return f"{where} refused " + "; ".join(f"{address}: {_reply(reply)}"
                                           for address, reply in sorted(refused.items()))


def _reply(error: smtplib.SMTPResponseException | tuple[int, bytes]) -> str:
    """An SMTP reply as people read it: ``535 5.7.8 Authentication credentials invalid``."""
    code, text = (error.smtp_code, error.smtp_error) if isinstance(error, smtplib.SMTPResponseException) \
        else error
    return f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"
