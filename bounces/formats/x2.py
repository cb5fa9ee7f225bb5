"""X2: an unnamed web-mail provider's "Delivery failure" notices (Sisimai's X2 family).

Heuristics after Sisimai::Lhost::X2 (BSD-2-Clause): From ``MAILER-DAEMON@...``,
a subject "Delivery failure", "failure delivery" or "failed delivery", and::

    Message from example.com.
    Unable to deliver message to the following address(es).

    <rcpt@example.com>:
    This user doesn't have a example.com account (rcpt@example.com) [0]

    --- Original message follows.

The lines under each ``<address>:`` are its diagnostic, in qmail's style ("I'm
not going to try again; this message has been in the queue too long." is
qmail-send's give-up text, so it names the reason expired).
"""

from __future__ import annotations

import re

from bounces.formats._text import cut_original, squeeze
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "x2"

_SUBJECT = re.compile(r"^(?:Delivery failure|fail(?:ure|ed) delivery)", re.I)
_START = "Unable to deliver message to the following address"
_SEPARATOR = re.compile(r"^--- Original message follows\.?.*$", re.M)
_RECIPIENT = re.compile(r"^<([^<>\s]+@[^<>\s]+)>:\s*$")
_GAVE_UP = "this message has been in the queue too long"


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an X2 notice, else None."""
    if "mailer-daemon@" not in mail.sender or not _SUBJECT.match(mail.subject):
        return None
    report, original = cut_original(mail.body, _SEPARATOR)
    start = report.find(_START)
    if start < 0:
        return None
    drafts: list[Draft] = []
    for line in report[start:].split("\n")[1:]:
        match = _RECIPIENT.match(line.strip())
        if match:
            drafts.append(Draft(recipient=match.group(1), action="failed"))
        elif drafts and line.strip():
            drafts[-1].diagnostic += " " + line.strip()
    for draft in drafts:
        draft.diagnostic = squeeze(draft.diagnostic)
        if _GAVE_UP in draft.diagnostic:
            draft.reason = Reason.EXPIRED
    return FormatResult(drafts=drafts, original=original) if drafts else None
