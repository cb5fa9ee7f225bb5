"""MailFoundry bounces: "Message delivery has failed".

Heuristics after Sisimai::Lhost::MailFoundry (BSD-2-Clause). Recognised by
that subject and a Received header "... (MAILFOUNDRY) id". The text says
"Unable to deliver message to: <user@domain>", then "Delivery failed for
the following reason:" and the remote server's reply.
"""

from __future__ import annotations

import re

from bounces.formats._lines import ORIGINAL_MARKER, fillet, sweep
from bounces.model import Draft, FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "mailfoundry"

_RECIPIENT = re.compile(r"^Unable to deliver message to: <([^ ]+@[^ ]+)>$")
_ERROR = "Delivery failed for the following reason:"


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a MailFoundry bounce, else None."""
    if mail.subject != "Message delivery has failed":
        return None
    if not any("(MAILFOUNDRY) id" in r for r in mail.headers("Received")):
        return None
    text, original = fillet(mail.body, ORIGINAL_MARKER)
    drafts: list[Draft] = []
    reading = False
    for raw in text.split("\n"):
        line = raw.strip()
        recipient = _RECIPIENT.match(line)
        if recipient:
            drafts.append(Draft(recipient=recipient.group(1)))
            reading = False
        elif drafts and line == _ERROR:
            reading = True
        elif drafts and reading and line and not line.startswith("-"):
            drafts[-1].diagnostic += " " + line
    for draft in drafts:
        draft.diagnostic = sweep(draft.diagnostic)
    return FormatResult(drafts=drafts, original=original) if drafts else None
