"""Outlook.com / Hotmail (Windows Live) delivery status notifications.

Heuristics after Sisimai::Lhost::Outlook (BSD-2-Clause). Recognised by two of:
a "Delivery Status Notification" subject, the X-Message-Delivery and
X-Message-Info headers, a Received header from ``*.hotmail.com``. The report
is RFC 3464 (read with the shared reader); Hotmail often leaves the
Diagnostic-Code out, and then only the action tells what happened, so the
text Hotmail shows the user stands in for it. Two of Hotmail's texts name
the reason.
"""

from __future__ import annotations

from bounces.formats.rfc3464 import drafts_from_report
from bounces.model import FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "outlook"

_DELAYED = "Delivery to the following recipients has been delayed."
_FAILED = ("Unable to deliver message to the following recipients, due to being unable to connect "
           "successfully to the destination mail server.")
_TEXTS = (
    (Reason.HOSTUNKNOWN,
     "The mail could not be delivered to the recipient because the domain is not reachable"),
    (Reason.USERUNKNOWN, "Requested action not taken: mailbox unavailable"),
)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Hotmail DSN, else None."""
    traits = int("Delivery Status Notification" in mail.subject)
    traits += mail.has_header("X-Message-Delivery")
    traits += mail.has_header("X-Message-Info")
    if traits < 2:
        traits += any(".hotmail.com" in r for r in mail.headers("Received"))
    if traits < 2:
        return None
    drafts = drafts_from_report(mail.section("message/delivery-status"))
    for draft in drafts:
        if not draft.diagnostic:
            draft.diagnostic = _DELAYED if draft.action == "delayed" else _FAILED
        for reason, text in _TEXTS:
            if text in draft.diagnostic:
                draft.reason = reason
                break
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822")) if drafts else None
