"""OpenSMTPD bounce and delay notices.

Heuristics after Sisimai::Lhost::OpenSMTPD (BSD-2-Clause) and OpenSMTPD's
``smtpd/bounce.c`` (NOTICE_INTRO, notice_error, notice_warning):

    Hi!

    This is the MAILER-DAEMON, please DO NOT REPLY to this e-mail.

    An error has occurred while attempting to deliver a message for
    the following list of recipients:

rcpt@example.jp: 550 5.2.2 <rcpt@example.jp>... Mailbox Full

    Below is a copy of the original message:

Subject "Delivery status notification[: error|: delayed]", From "Mailer Daemon
<...>". Newer releases (6.x, 7.x) add a message/delivery-status part, merged
per recipient. The relay failure texts of ``smtpd/mta.c`` and ``queue.c``
("Envelope expired", "Domain does not exist", "No MX found for domain", ...)
are OpenSMTPD's own and name the reason (Sisimai's $messagesof).
"""

from __future__ import annotations

import re

from bounces.formats._text import cut_original, dsn_drafts, find_command, squeeze
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "opensmtpd"

_START = re.compile(r"^\s*This is the MAILER-DAEMON, please DO NOT REPLY to this e-?mail", re.M)
_SEPARATOR = re.compile(r"^\s+Below is a copy of the original message:.*$", re.M)
_LINE = re.compile(r"^([^\s@]+@[^\s:]+?):?\s+(\S.*)$")
_OWN_TEXTS: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    (Reason.EXPIRED, ("Envelope expired",)),
    (Reason.HOSTUNKNOWN, ("Invalid domain name", "Domain does not exist")),
    # Sisimai 5 counts a domain without MX as one that accepts no mail (lhost-opensmtpd-12).
    (Reason.NOTACCEPT, ("Destination seem to reject all mails", "No MX found for domain",
                        "No MX found for destination")),
    (Reason.NETWORKERROR, (
        "Address family mismatch on destination MXs", "All routes to destination blocked",
        "bad DNS lookup error code", "Could not retrieve source address", "Loop detected",
        "Network error on destination MXs", "No valid route to remote MX", "No valid route to destination",
        "Temporary failure in MX lookup")),
    (Reason.SECURITYERROR, ("Could not retrieve credentials",)),
)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an OpenSMTPD notice, else None."""
    if "delivery status notification" not in mail.subject.lower() or "mailer daemon" not in mail.sender:
        return None
    report, original = cut_original(mail.body, _SEPARATOR)
    start = _START.search(report)
    if start is None:
        return None
    delayed = "is delayed for more than" in report[start.end(): start.end() + 400]
    drafts: list[Draft] = []
    for line in report[start.end():].split("\n"):
        match = _LINE.match(line)
        if match and not line.startswith("Content-"):
            drafts.append(Draft(recipient=match.group(1), diagnostic=squeeze(match.group(2)),
                                action="delayed" if delayed else "failed"))
    fields = dsn_drafts(mail.section("message/delivery-status"))
    for draft in drafts:
        _complete(draft, next((f for f in fields if f.recipient.lower() == draft.recipient.lower()), None))
    return FormatResult(drafts=drafts, original=original) if drafts else None


def _complete(draft: Draft, fields: Draft | None) -> None:
    if fields is not None:
        draft.action = fields.action or draft.action
        draft.status = fields.status
        draft.reporting_mta = fields.reporting_mta
        draft.remote_mta = fields.remote_mta
    draft.command = find_command(draft.diagnostic)
    if re.match(r"^[245]\d\d\b", draft.diagnostic):
        draft.spec = "SMTP"
        return  # the remote server's reply: the classifier reads it
    for reason, texts in _OWN_TEXTS:
        if any(t in draft.diagnostic for t in texts):
            draft.reason = reason
            break
