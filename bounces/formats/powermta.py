"""PowerMTA delivery reports.

Heuristics after Sisimai::Lhost::PowerMTA (BSD-2-Clause): subject "Delivery
report", a text part "Hello, this is the mail server on <host>." listing the
affected recipients, a message/delivery-status part with PowerMTA's extension
fields, and the original's headers as text/rfc822-headers. The per-recipient
``X-PowerMTA-BounceCategory`` field is PowerMTA's own verdict; the categories
that name a reason outright are mapped (Sisimai's $categories table; its old
name "disabled" is "suspend" now). "bad-mailbox" and "bad-domain" are left to
the classifier, which also weighs the status and the reply.
"""

from __future__ import annotations

from bounces.dsn import draft_from_fields, parse_delivery_status
from bounces.formats._text import find_command
from bounces.model import FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "powermta"

_START = "Hello, this is the mail server on "
_CATEGORIES = {
    "inactive-mailbox": Reason.SUSPEND,
    "message-expired": Reason.EXPIRED,
    "no-answer-from-host": Reason.NETWORKERROR,
    "policy-related": Reason.POLICYVIOLATION,
    "quota-issues": Reason.MAILBOXFULL,
    "routing-errors": Reason.SYSTEMERROR,
    "spam-related": Reason.SPAMDETECTED,
}


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a PowerMTA delivery report, else None."""
    if "delivery report" not in mail.subject.lower():
        return None
    status_part = mail.section("message/delivery-status")
    if _START not in mail.text and "x-powermta-" not in status_part.lower():
        return None
    report = parse_delivery_status(status_part)
    drafts = []
    for fields in report.recipients:
        if not (fields.get("final-recipient") or fields.get("original-recipient")):
            continue
        draft = draft_from_fields(fields, report.message)
        draft.command = find_command(draft.diagnostic)
        draft.reason = _CATEGORIES.get(fields.get("x-powermta-bouncecategory", "").strip().lower())
        if draft.reason is None and "mailbox disabled" in fields.get("status", "").lower():
            # PowerMTA writes RFC 3463's wording after the code: "5.2.1 (mailbox disabled, not
            # accepting messages)" says the mailbox exists but is suspended (lhost-powermta-01).
            draft.reason = Reason.SUSPEND
        drafts.append(draft)
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822")) if drafts else None
