"""GoDaddy (smtp.secureserver.net): "IB103" codes and fixed wordings.

After Sisimai::Rhost::GoDaddy (BSD-2-Clause); codes from
https://www.godaddy.com/help/what-does-my-email-bounceback-mean-3568.
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"^(?:smtp|mailstore1)\.secureserver\.net$")
R = Reason
_CODES: dict[str, Reason] = {
    "ib103": R.BADREPUTATION,  # "This IP has a poor reputation on Cloudmark Sender Intelligence"
    "ib104": R.BLOCKED, "ib105": R.BLOCKED, "ib106": R.BLOCKED,  # Spamhaus SBL, XBL, PBL
    "ib007": R.TOOMANYCONN, "ib101": R.EXPIRED,
    "ib108": R.REQUIREPTR,  # "Reverse DNS for this IP failed"
    "ib110": R.BLOCKED, "ib111": R.BLOCKED, "ib112": R.BLOCKED, "ib113": R.BLOCKED,
    "ib212": R.SPAMDETECTED, "ib401": R.SECURITYERROR, "ib501": R.REJECTED, "ib502": R.REJECTED,
    "ib504": R.SPEEDING, "ib506": R.REJECTED, "ib508": R.REJECTED, "ib510": R.TOOMANYCONN,
    "ib607": R.SPEEDING, "ib705": R.VIRUSDETECTED,
}
_PHRASES: tuple[tuple[str, Reason], ...] = (
    ("www.spamhaus.org/query/bl?ip=", R.BLOCKED), ("554 rbl reject.", R.BLOCKED),
    ("delivery timeout", R.EXPIRED), ("451 sorry, i wasn't able to establish an smtp connection.", R.EXPIRED),
    ("account disabled", R.SUSPEND), ("account storage limit", R.MAILBOXFULL),
    ("account does not exist", R.USERUNKNOWN), ("550 recipient not found.", R.USERUNKNOWN),
)
_CODE = re.compile(r"\s(ib\d{3})\b")


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for a GoDaddy rejection, from its IB code or its wording."""
    match = _CODE.search(text)
    if match:
        return _CODES.get(match.group(1))
    for phrase, found in _PHRASES:
        if phrase in text:
            return found
    return None
