"""X3: an unnamed MTA's "Delivery status notification" (Sisimai's X3 family).

Heuristics after Sisimai::Lhost::X3 (BSD-2-Clause): From "Mail Delivery System",
subject "Delivery status notification", and a text part::

          This is an automatically generated Delivery Status Notification.

    Delivery to the following recipients failed permanently:

       * rcpt@example.or.jp

followed by "SMTP:<COMMAND> <reply>", "Routing: <text>" or a
Diagnostic-Code line per recipient when the MTA knows one, and a
message/delivery-status part that may lack the recipient blocks. The reply's
own status code is preferred over the Status field (Sisimai does the same).
"""

from __future__ import annotations

import re

from bounces.formats._text import dsn_drafts, squeeze
from bounces.model import Draft, FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "x3"

_START = "This is an automatically generated Delivery Status Notification."
_RECIPIENT = re.compile(r"^\s+\*\s+([^\s@]+@\S+)\s*$")
_SMTP = re.compile(r"^SMTP:(\S+)\s+(.+)$")
_DIAGNOSTIC = re.compile(r"^(?:Routing: |Diagnostic-Code: smtp; ?)(.+)$", re.I)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an X3 notice, else None."""
    if not mail.header("From").startswith("Mail Delivery System"):
        return None
    if not mail.subject.startswith("Delivery status notification") or _START not in mail.text:
        return None
    drafts: list[Draft] = []
    for line in mail.text[mail.text.find(_START):].split("\n"):
        recipient = _RECIPIENT.match(line)
        if recipient:
            drafts.append(Draft(recipient=recipient.group(1), action="failed"))
            continue
        if not drafts:
            continue
        smtp = _SMTP.match(line.strip())
        if smtp:
            drafts[-1].command, drafts[-1].diagnostic = smtp.group(1).upper()[:4], squeeze(smtp.group(2))
            continue
        diagnostic = _DIAGNOSTIC.match(line.strip())
        if diagnostic:
            drafts[-1].diagnostic = squeeze(diagnostic.group(1))
    fields = dsn_drafts(mail.section("message/delivery-status"))
    for draft in drafts:
        found = next((f for f in fields if f.recipient.lower() == draft.recipient.lower()), None)
        if found is not None:
            draft.status, draft.reporting_mta, draft.date = found.status, found.reporting_mta, found.date
            draft.diagnostic = draft.diagnostic or found.diagnostic
            draft.action = found.action or draft.action
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822")) if drafts else None
