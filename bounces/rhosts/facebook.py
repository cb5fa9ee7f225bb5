"""Facebook (facebook.com, fb.com): "RCP-P2" response codes.

After Sisimai::Lhost::Facebook (BSD-2-Clause); codes from
https://www.facebook.com/postmaster/response_codes.
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"(?:^|\.)(?:facebook\.com|fb\.com|facebookmail\.com)$")
R = Reason
_CODES: dict[str, Reason] = {
    "rcp-p1": R.USERUNKNOWN, "int-p1": R.USERUNKNOWN, "int-p3": R.USERUNKNOWN, "int-p4": R.USERUNKNOWN,
    "rcp-p2": R.FILTERED,        # the recipient's preferences prevent delivery
    "rcp-p3": R.FILTERED,        # the recipient's privacy settings blocked delivery
    "pol-p1": R.BLOCKED,         # IP listed on the Spamhaus PBL
    "pol-p2": R.BLOCKED,
    "int-p2": R.MESGTOOBIG,
    "pol-p6": R.CONTENTERROR, "pol-p7": R.CONTENTERROR,
    "pol-p3": R.NOTACCEPT, "pol-p4": R.NOTACCEPT, "pol-t1": R.NOTACCEPT, "pol-t2": R.NOTACCEPT,
    "pol-t3": R.NOTACCEPT,
    "dns-p1": R.REJECTED, "dns-p2": R.REJECTED, "dns-t1": R.REJECTED,
    "dns-p3": R.REQUIREPTR, "dns-t2": R.REQUIREPTR,  # no / unresolvable reverse DNS
    "con-t1": R.SYSTEMERROR, "rcp-t1": R.SYSTEMERROR,
    "con-t2": R.TOOMANYCONN, "con-t3": R.TOOMANYCONN,
    "pol-p5": R.VIRUSDETECTED,
    "rcp-t4": R.SUSPEND,
}
_CODE = re.compile(r"\b((?:rcp|int|pol|dns|con)-[pt]\d)\b")


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for a Facebook rejection, from its response code."""
    match = _CODE.search(text)
    return _CODES.get(match.group(1)) if match else None
