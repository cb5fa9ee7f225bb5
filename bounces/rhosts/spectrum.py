"""Spectrum (Charter): "AUP#In-1310" / "AUP#O-1000" codes.

After Sisimai::Rhost::Spectrum (BSD-2-Clause); codes from
https://www.spectrumbusiness.net/support/internet/understanding-email-error-codes.
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"charter\.net$|spectrum\.net$")
R = Reason
_CODES: dict[int, Reason] = {
    1000: R.BLOCKED, 1010: R.REJECTED, 1090: R.SYSTEMERROR, 1260: R.NETWORKERROR, 1500: R.REJECTED,
    1520: R.REJECTED, 1530: R.MESGTOOBIG, 1540: R.TOOMANYCONN, 1550: R.TOOMANYCONN, 1560: R.POLICYVIOLATION,
}
# (first, last, reason): documented ranges of codes.
_RANGES: tuple[tuple[int, int, Reason], ...] = (
    (1020, 1080, R.REJECTED),         # account with limited access because of suspicious activity
    (1100, 1150, R.BLOCKED),          # DNS problem with the connecting IP
    (1160, 1190, R.POLICYVIOLATION),  # against the domain's security policies
    (1200, 1210, R.BLOCKED),          # flagged by Cloudmark CSI
    (1220, 1250, R.BLOCKED),          # listed by Spamhaus
    (1300, 1340, R.TOOMANYCONN),      # concurrent connections
    (1350, 1490, R.TOOMANYCONN),      # messages, recipients per time
)
_AUP = re.compile(r"aup#[-a-z]*(\d{4})")


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for a Spectrum rejection, from its AUP# code."""
    match = _AUP.search(text)
    if not match:
        return None
    code = int(match.group(1))
    if code in _CODES:
        return _CODES[code]
    for first, last, found in _RANGES:
        if first <= code <= last:
            return found
    return None
