"""Zoho Mail (zoho.com, zohomail.com): its own wordings.

Zoho answers "554 5.7.1 Email cannot be delivered. Reason: Email flagged as Spam." when it refuses
the sender (corpus rhost-zoho-03, Sisimai 5 says rejected), not a content filter verdict on the message.
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"(?:^|\.)(?:zoho\.com|zohomail\.com|zoho\.eu|zoho\.in)$")
R = Reason
_PHRASES: tuple[tuple[str, Reason], ...] = (
    ("reason: email flagged as spam", R.REJECTED),
    ("mail rejected by the recipient's policy", R.FILTERED),
    ("mailbox not found", R.USERUNKNOWN),
    ("relaying disallowed", R.NORELAYING),
)


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for a Zoho rejection, from its wording."""
    for phrase, found in _PHRASES:
        if phrase in text:
            return found
    return None
