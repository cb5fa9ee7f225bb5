"""X1: an unnamed MTA's "Returned Mail" notices (Sisimai's X1 family).

Heuristics after Sisimai::Lhost::X1 (BSD-2-Clause) and the samples of Sisimai 5
(lhost-x1-*): From "Mail Deliver System" (sic) or "Mail Delivery System", and
a text that reads::

    The original message was received at Thu, 29 Apr 2011 23:34:45 +0900 (JST)
    from sender@example.co.jp

    ---The following addresses had delivery errors---

    rcpt@example.org [User unknown]

The bracketed text is the only diagnostic. A "Warning--Could not send mail for
past N hours" subject is the notice that delivery has been retried that long
(Sisimai 5 reports it as expired).
"""

from __future__ import annotations

import re

from bounces.formats._text import squeeze
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "x1"

_MARK = "---The following addresses had delivery errors---"
_RECEIVED = re.compile(r"^The original message was received at (.+?)\s*$", re.M)
_LINE = re.compile(r"^([^\s@]+@[^\s\[\]]+)\s+\[(.+)\]\s*$")
_WARNING = re.compile(r"^Warning--Could not send mail for past ", re.I)
# The returned original is a bare header block after the report (Sisimai's $rebackbone).
_ORIGINAL = re.compile(r"^Received: from \d+\.\d+\.\d+\.\d", re.M)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an X1 notice, else None."""
    if "mail deliver" not in mail.sender or _MARK not in mail.text:
        return None
    text = mail.text
    start = text.find(_MARK)
    received = _RECEIVED.search(text, 0, start)
    expired = bool(_WARNING.match(mail.subject))
    drafts = []
    for line in text[start + len(_MARK):].split("\n"):
        match = _LINE.match(line.strip())
        if match:
            drafts.append(Draft(recipient=match.group(1), diagnostic=squeeze(match.group(2)),
                                date=received.group(1) if received else "",
                                action="delayed" if expired else "failed",
                                reason=Reason.EXPIRED if expired else None))
    original = mail.section("message/rfc822")
    if not original:
        found = _ORIGINAL.search(mail.body, start)
        original = mail.body[found.start():] if found else ""
    return FormatResult(drafts=drafts, original=original) if drafts else None
