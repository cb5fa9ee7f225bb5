"""Active!hunter (Japanese anti-spam gateway) bounces.

Heuristics after Sisimai::Lhost::Activehunter (BSD-2-Clause). Recognised by
its X-AHMAILID header. Sendmail-like text: after "----- The following
addresses had permanent fatal errors -----" each address is written
``>>> user@domain <user@domain>``, and the first line of the transcript that
follows is the remote reply.
"""

from __future__ import annotations

import re

from bounces.formats._lines import ORIGINAL_MARKER, fillet, reading, sweep
from bounces.model import Draft, FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "activehunter"

_START = "----- The following addresses had permanent fatal errors -----"
_RECIPIENT = re.compile(r"^>>>[ \t]+.+<([^ ]+?@[^ ]+?)>$")
_REPLY = re.compile(r"^[0-9A-Za-z]+")


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an Active!hunter bounce, else None."""
    if not mail.has_header("X-AHMAILID"):
        return None
    text, original = fillet(mail.body, ORIGINAL_MARKER)
    drafts: list[Draft] = []
    for line in reading(text.split("\n"), _START):
        recipient = _RECIPIENT.match(line.strip())
        if recipient:
            drafts.append(Draft(recipient=recipient.group(1)))
        elif drafts and not drafts[-1].diagnostic and _REPLY.match(line):
            drafts[-1].diagnostic = sweep(line)
    return FormatResult(drafts=drafts, original=original) if drafts else None
