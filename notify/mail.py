"""The admins' e-mail: the explanation and the evidence, sent through the SMTP relay (stdlib)."""

from __future__ import annotations

import json
import smtplib
import ssl
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from config import NotifySettings
from notify.webhook import DeliveryError

__all__ = ["mail_message", "mail_subject", "mail_text", "send_mail"]


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


def send_mail(settings: NotifySettings, message: EmailMessage, recipient: str) -> None:
    """Hand ``message`` to the relay for ``recipient``; raises DeliveryError with why it failed."""
    host, port, timeout = settings.smtp_host, settings.smtp_port, settings.timeout_seconds
    try:
        if settings.smtp_security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                                     context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=ssl.create_default_context())
            refused = client.send_message(message, from_addr=settings.mail_from, to_addrs=[recipient])
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryError(f"SMTP relay {host}:{port}: {error}") from None
    if refused:
        raise DeliveryError(f"SMTP relay {host}:{port} refused {recipient}: {refused[recipient]}")
