"""Auto-replies (RFC 3834): vacation and out-of-office answers, reason ``vacation``.

RFC 3834 section 5 says an automatic response carries ``Auto-Submitted:
auto-replied``; real responders also use ``X-Autoreply``, ``X-Autorespond``,
``Precedence: auto_reply``, Microsoft's ``X-Auto-Response-Suppress`` and
subjects such as "Auto:", "Out of Office" (after Sisimai::RFC3834). Bounces
sent by MTAs also say ``Auto-Submitted: auto-replied``, so messages from
postmaster/MAILER-DAEMON or with delivery-failure subjects are not auto-replies;
by the time this module runs, every bounce format has already declined.
"""

from __future__ import annotations

import re

from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail, first_address

__all__ = ["NAME", "parse"]

NAME = "rfc3834"

_HEADER_SIGNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("auto-submitted", re.compile(r"^auto-(?:generated|replied|notified)", re.I)),
    ("x-autoreply", re.compile(r"\S")),
    ("x-autorespond", re.compile(r"\S")),
    ("x-auto-response-suppress", re.compile(r"oof|autoreply", re.I)),
    ("x-apple-action", re.compile(r"^vacation$", re.I)),
    ("precedence", re.compile(r"^auto_reply$", re.I)),
)
_SUBJECT_SIGN = re.compile(
    r"^\s*(?:auto:|auto(?:matic)?[ -]?(?:reply|response|antwort)\b|out of (?:the )?office\b|"
    r"abwesenheit|absence|vacation\b|away from\b|risposta automatica|r[ée]ponse automatique|"
    r"自動応答|自動返信|不在)",
    re.I,
)
_NOT_AUTOREPLY_SUBJECT = re.compile(
    r"security information for|mail failure|undeliver|delivery (?:status|failure|notification)|"
    r"returned mail|failure notice|mail delivery", re.I)
# An auto-reply announcing that the mailbox is dead ("This email inbox ... is no
# longer in use", Mimecast-hosted responders, rfc3834-06) is an address problem,
# not an absence: the recipient will never read the mail (Sisimai 5 says suspend).
_MAILBOX_GONE = re.compile(
    r"\b(?:address|inbox|mailbox|account|e-?mail)\b.{0,60}?"
    r"\bno longer (?:in use|active|monitored|valid|exists?)",
    re.I | re.S)
_NOT_AUTOREPLY_FROM = re.compile(r"(?:root|postmaster|mailer-daemon)@", re.I)


def parse(mail: Mail) -> FormatResult | None:
    """One ``vacation`` draft for the person who answered, or None."""
    subject = mail.subject
    if _NOT_AUTOREPLY_SUBJECT.search(subject) or _NOT_AUTOREPLY_FROM.search(mail.sender):
        return None
    signed = any(pattern.search(mail.header(name)) for name, pattern in _HEADER_SIGNS if mail.header(name))
    if not signed and not _SUBJECT_SIGN.search(subject):
        return None
    recipient = first_address(mail.header("From")) or first_address(mail.header("Return-Path"))
    if not recipient:
        return None
    lines = [line.strip() for line in mail.text.split("\n") if " " in line.strip()]
    diagnostic = " ".join(lines[:5]) or subject
    reason = Reason.SUSPEND if _MAILBOX_GONE.search(diagnostic) else Reason.VACATION
    draft = Draft(recipient=recipient, diagnostic=diagnostic, reason=reason,
                  date=mail.header("Date"), hard_bounce=False)
    quoted = re.match(r"^(?:.*?re:|auto:|auto(?:matic)?[ -]?(?:reply|response):|out of office:)\s*(.+)$",
                      subject, re.I)
    return FormatResult(drafts=[draft], original=f"Subject: {quoted.group(1)}\n" if quoted else "")
