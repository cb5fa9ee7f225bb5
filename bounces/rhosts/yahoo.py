"""Yahoo Inc. (yahoodns.net: Yahoo, AOL): "[TSS04]"-style codes.

After Sisimai 5's Rhost::YahooInc (BSD-2-Clause) and https://senders.yahooinc.com/smtp-error-codes:
a deferral for "unexpected volume or user complaints" from Yahoo's own MX is a refusal of the
sender (corpus lhost-postfix-74, rhost-yahooinc-02: rejected).
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"(?:^|\.)yahoodns\.net$")
R = Reason
_PHRASES: tuple[tuple[str, Reason], ...] = (
    ("temporarily deferred due to unexpected volume or user complaints", R.REJECTED),  # [TSS04]
    ("not accepted for policy reasons", R.POLICYVIOLATION),  # 554 5.7.9
    ("sender is unauthenticated", R.AUTHFAILURE),
    ("headers are not rfc compliant", R.NOTCOMPLIANTRFC),
    ("user doesn't have a yahoo.com account", R.USERUNKNOWN),
    ("user doesn't have a aol.com account", R.USERUNKNOWN),
    ("mailbox is full", R.MAILBOXFULL), ("over quota", R.MAILBOXFULL),
)


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for a Yahoo rejection, from its wording."""
    for phrase, found in _PHRASES:
        if phrase in text:
            return found
    return None
