"""I.UA (Ukraine): "mail.i.ua/err/N" links.

After Sisimai::Rhost::IUA (BSD-2-Clause); codes from http://mail.i.ua/err/.
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"(?:^|\.)email\.ua$|(?:^|\.)i\.ua$")
R = Reason
_CODES: dict[str, Reason] = {
    "1": R.NORELAYING,    # SMTP as a mail gate is forbidden
    "2": R.USERUNKNOWN,   # user not found
    "3": R.SUSPEND,       # mailbox not used for more than 3 months
    "4": R.MAILBOXFULL,
    "5": R.TOOMANYCONN,   # sending limit exceeded
    "6": R.NORELAYING,    # use your provider's SMTP
    "7": R.BLOCKED,       # bad HELO/EHLO
    "8": R.REJECTED,      # could not check the sender address
    "9": R.BLOCKED,       # sender IP blacklisted
    "10": R.FILTERED,     # not in the recipient's address list
}
_CODE = re.compile(r"\.i\.ua/err/(\d+)")


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for an I.UA rejection, from its error link."""
    match = _CODE.search(text)
    return _CODES.get(match.group(1)) if match else None
