"""Microsoft's Junk Mail Reporting Program (JMRP), the legacy Hotmail/Outlook.com complaint.

Not ARF: a ``multipart/mixed`` message from staff@hotmail.com, subject
"complaint about message from <IP>", with the reported message attached as
``message/rfc822``; Hotmail adds ``X-HmXmrOriginalRecipient`` to that copy
to name the complaining recipient (arf-22.eml, arf-23.eml). Amazon SES
forwarded such complaints from complaints@email-abuse.amazonses.com with the
same subject. The report carries no Feedback-Type: every JMRP report is a
"this is junk" click, so it is ``abuse``.
Heuristics after Sisimai::ARF (BSD-2-Clause), ``is_arf`` and ``make``.
"""

from __future__ import annotations

import re

from fbl.fields import find_ip
from fbl.model import FeedbackReport
from fbl.original import ORIGINAL_TYPES, original_of_part
from rfc822 import Mail, OriginalMessage, find_addresses, first_address

__all__ = ["NAME", "parse"]

NAME = "jmrp"

_REPORTERS = ("staff@hotmail.com", "complaints@email-abuse.amazonses.com")
_SUBJECT = re.compile(r"complaint about message from\s+(\S+)", re.I)
_RECIPIENT_HEADER = "X-HmXmrOriginalRecipient"


def parse(mail: Mail) -> FeedbackReport | None:
    """A JMRP complaint; None for any other message."""
    if not mail.content_type.startswith("multipart/") or mail.content_type == "multipart/report":
        return None
    reporter = first_address(mail.header("From"))
    from_reporter = reporter.lower().endswith(_REPORTERS)
    subject = _SUBJECT.search(mail.subject)
    if not from_reporter and subject is None:
        return None
    originals: list[OriginalMessage] = []
    for part in mail.parts():
        if mail.type_of(part) in ORIGINAL_TYPES:
            found = original_of_part(part)
            if found is not None:
                originals.append(found)
    recipients: list[str] = []
    for original in originals:
        for value in original.get_all(_RECIPIENT_HEADER):
            recipients.extend(a for a in find_addresses(value) if a not in recipients)
    # Either signal alone is too weak: staff@hotmail.com also sends other
    # notices, and the subject can be typed by anyone.
    if not ((from_reporter and (subject or recipients)) or (subject and recipients)):
        return None
    errors: list[str] = []
    if not originals:
        errors.append("jmrp: the reported message is missing or unreadable")
    return FeedbackReport(
        format=NAME,
        feedback_type="abuse",
        source_ip=find_ip(subject.group(1)) if subject else "",
        original_rcpt_to=tuple(recipients),
        reporter=reporter,
        date=mail.header("Date"),
        original=originals[0] if originals else None,
        errors=tuple(errors),
    )
