"""Cox Communications: "AUP#CXBL" codes and fixed wordings.

After Sisimai::Rhost::Cox (BSD-2-Clause); codes from https://www.cox.com/residential/support/email-error-codes.html.
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"cox\.net$")
R = Reason
_CODES: dict[str, Reason] = {
    "cxbl": R.BLOCKED, "cxthrt": R.SECURITYERROR, "cxmj": R.SECURITYERROR, "cxdns": R.REQUIREPTR,
    "cxsndr": R.REJECTED, "cxsmtp": R.REJECTED, "cxcnct": R.TOOMANYCONN, "cxmxrt": R.SPEEDING,
    "cdrbl": R.BLOCKED, "ipbl00001": R.BLOCKED, "urlbl011": R.SPAMDETECTED, "urlbl101": R.SPAMDETECTED,
    "urlbl110": R.SPAMDETECTED, "urlbl1001": R.SPAMDETECTED,
}
_PHRASES: tuple[tuple[str, Reason], ...] = (
    ("rejected - no rdns", R.REQUIREPTR),                 # no reverse DNS PTR record
    ("cox too many bad commands from", R.BLOCKED),
    ("dns check failure - try again later", R.REQUIREPTR),
    ("too many invalid recipients", R.BLOCKED),
    ("esmtp server temporarily not available", R.NOTACCEPT),
    ("esmtp no data before greeting", R.POLICYVIOLATION),
    ("attachment extension is forbidden", R.POLICYVIOLATION),
    ("sender rejected", R.REJECTED),
    ("too many sessions from", R.TOOMANYCONN),
    ("requested action aborted: try again later", R.TOOMANYCONN),
    ("message threshold exceeded", R.SPEEDING),
    ("recipient rejected", R.USERUNKNOWN),
)
_AUP = re.compile(r"aup#([0-9a-z]+)")


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for a Cox rejection, from its AUP# code or its wording."""
    match = _AUP.search(text)
    if match:
        code = match.group(1)
        if code in _CODES:
            return _CODES[code]
        if code.startswith("ipbl"):
            return R.BLOCKED          # IPBL0001..IPBL1111: the sending IP is on a DNSBL
    for phrase, found in _PHRASES:
        if phrase in text:
            return found
    return None
