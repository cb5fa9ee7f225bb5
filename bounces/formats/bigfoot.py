"""Bigfoot (bigfoot.com forwarding service) bounces.

Heuristics after Sisimai::Lhost::Bigfoot (BSD-2-Clause). Recognised by a
sender at bigfoot.com or a Received header from ``*.bigfoot.com``. An RFC 3464
report (read with the shared reader) preceded by a Sendmail-like transcript:
its ``>>> RCPT TO:`` line names the SMTP command that failed, which the
fields do not say.
"""

from __future__ import annotations

import re

from bounces.formats.rfc3464 import drafts_from_report, explanation_for
from bounces.model import FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "bigfoot"

_COMMAND = re.compile(r"^>>>[ ]+([A-Z]{4})", re.M)
_REPLY = re.compile(r"^<<<[ ]+(.+)$", re.M)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Bigfoot bounce, else None."""
    if "@bigfoot.com>" not in mail.sender and \
            not any(".bigfoot.com " in r for r in mail.headers("Received")):
        return None
    drafts = drafts_from_report(mail.section("message/delivery-status"))
    commands = _COMMAND.findall(mail.text)
    replies = _REPLY.findall(mail.text)
    for draft in drafts:
        draft.command = commands[-1] if commands else ("EHLO" if replies else "")
        if not draft.diagnostic:
            draft.diagnostic = replies[-1] if replies else explanation_for(mail.text, draft.recipient)
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822")) if drafts else None
