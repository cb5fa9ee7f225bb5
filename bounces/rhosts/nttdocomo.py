"""NTT docomo (mfsmax.docomo.ne.jp): one wording ("550 Unknown user") for several causes.

After Sisimai::Rhost::NTTDOCOMO (BSD-2-Clause): docomo says "Unknown user" both for an address that
does not exist (refused at RCPT) and for a recipient whose filter refused the sender (refused after
DATA); the status and the SMTP command tell them apart.
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"mfsmax\.docomo\.ne\.jp$")


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for a docomo rejection."""
    if draft.status in ("5.1.1", "5.0.911"):
        return Reason.USERUNKNOWN
    if draft.status == "5.2.0":
        return Reason.FILTERED
    if "552 too much mail data" in text:
        return Reason.MAILBOXFULL
    if "552 too many recipients" in text:
        return Reason.TOOMANYCONN
    if "503 bad sequence of commands" in text or "504 command parameter not implemented" in text:
        return Reason.SYNTAXERROR
    if draft.status == "5.0.0" or not draft.status:
        if draft.command == "RCPT":
            return Reason.USERUNKNOWN
        if draft.command == "DATA":
            return Reason.REJECTED
    return None
