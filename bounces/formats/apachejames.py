"""Apache James bounces.

Heuristics after Sisimai::Lhost::ApacheJames (BSD-2-Clause). Recognised by
the subject "[BOUNCE]", a JavaMail Message-ID, or a Received header from
"JAMES SMTP Server". The text gives the error ("Error message below:" and the
remote reply), then "Message details:" with indented "Subject:",
"Sent date:", "MAIL FROM:" and "RCPT TO:" lines.
"""

from __future__ import annotations

import re

from bounces.formats._lines import ORIGINAL_MARKER, fillet, sweep
from bounces.model import Draft, FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "apachejames"

_RECIPIENT = re.compile(r"^  RCPT TO: ([^ ]+@[^ ]+)$")
_DATE = re.compile(r"^  Sent date: (.+)$")
_SUBJECT = re.compile(r"^  Subject: (.+)$")
_DETAILS = "Message details:"


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an Apache James bounce, else None."""
    if mail.subject != "[BOUNCE]" and ".JavaMail." not in mail.header("Message-ID") and \
            not any("JAMES SMTP Server" in r for r in mail.headers("Received")):
        return None
    text, original = fillet(mail.body, ORIGINAL_MARKER)
    recipients: list[str] = []
    error: list[str] = []
    date = subject = ""
    in_details = False
    for raw in text.split("\n"):
        line = raw.rstrip()
        if found := _RECIPIENT.match(line):
            recipients.append(found.group(1))
        elif found := _DATE.match(line):
            date = found.group(1)
        elif found := _SUBJECT.match(line):
            subject = found.group(1)
        elif line == _DETAILS:
            in_details = True
        elif line and not in_details and (error or line.startswith("Error")):
            # The error text begins at James's "Error: ..." line; what precedes it
            # can be MIME structure that a broken Content-Type left unparsed (apachejames-01).
            error.append(line)
    if not recipients:
        return None
    diagnostic = sweep(" ".join(error))
    drafts = [Draft(recipient=r, diagnostic=diagnostic, date=date) for r in recipients]
    if not original and subject:
        original = f"Subject: {subject}\n"
    return FormatResult(drafts=drafts, original=original)
