"""Tencent QQ mail (qq.com): fixed wordings.

After Sisimai::Rhost::TencentQQ (BSD-2-Clause); https://service.mail.qq.com/cgi-bin/help?id=20022.
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"(?:^|\.)qq\.com$")
R = Reason
_PHRASES: tuple[tuple[str, Reason], ...] = (
    ("dmarc check failed", R.AUTHFAILURE), ("spf check failed", R.AUTHFAILURE),
    ("suspected spam ip", R.BLOCKED), ("mail is rejected by recipients", R.FILTERED),
    ("message too large", R.MESGTOOBIG), ("mail content denied", R.SPAMDETECTED),
    ("spam is embedded in the email", R.SPAMDETECTED), ("suspected spam", R.SPAMDETECTED),
    ("bad address syntax", R.SYNTAXERROR), ("connection denied", R.TOOMANYCONN),
    ("connection frequency limited", R.TOOMANYCONN), ("domain frequency limited", R.TOOMANYCONN),
    ("ip frequency limited", R.TOOMANYCONN), ("sender frequency limited", R.TOOMANYCONN),
    ("mailbox unavailable or access denied", R.TOOMANYCONN), ("mailbox not found", R.USERUNKNOWN),
)


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for a QQ rejection, from its wording."""
    for phrase, found in _PHRASES:
        if phrase in text:
            return found
    return None
