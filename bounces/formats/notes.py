"""Lotus Notes (R4/R5 SMTP MTA) bounces: "Undeliverable message".

Heuristics after Sisimai::Lhost::Notes (BSD-2-Clause). The reasons follow
"------- Failure Reasons --------", each failed address on a line of its
own below its reason; the returned message follows "------- Returned Message
--------". Notes writes the reason in the server's language (often
Japanese in ISO-2022-JP); its fixed texts name the reason.
"""

from __future__ import annotations

import re

from bounces.formats._lines import fillet, reading, sweep
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail, first_address

__all__ = ["NAME", "parse"]

NAME = "notes"

_BOUNDARY = re.compile(r"^------- Returned Message --------", re.M)
_START = "------- Failure Reasons "
_ADDRESS = re.compile(r"^[^ ]+@[^ ]+")
_TO = re.compile(r"^To:[ ]*(.+)$", re.M)
# Notes's texts (Sisimai $messagesof); the Japanese one reads "not in the directory's list".
_TEXTS = (
    (Reason.USERUNKNOWN, ("User not listed in public Name & Address Book",
                          "ディレクトリのリストにありません")),
    (Reason.NETWORKERROR, ("Message has exceeded maximum hop count",)),
)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Lotus Notes bounce, else None."""
    if not mail.subject.startswith("Undeliverable message"):
        return None
    text, original = fillet(mail.body, _BOUNDARY)
    drafts: list[Draft] = []
    pending = ""  # Notes writes the reason before the address it concerns
    for line in reading(text.split("\n"), _START):
        if _ADDRESS.match(line):
            drafts.append(Draft(recipient=first_address(line) or line.strip(), diagnostic=pending))
            pending = ""
        elif line.strip() and not line.startswith("-"):
            if drafts and not pending and not drafts[-1].diagnostic:
                drafts[-1].diagnostic = line
            else:
                pending += line
    if not drafts:
        to = _TO.search(original)
        address = first_address(to.group(1)) if to else ""
        if not address:
            return None
        drafts.append(Draft(recipient=address, diagnostic=pending))
    for draft in drafts:
        draft.diagnostic = sweep(draft.diagnostic)
        draft.reason = next((r for r, texts in _TEXTS if any(t in draft.diagnostic for t in texts)), None)
    return FormatResult(drafts=drafts, original=original)
