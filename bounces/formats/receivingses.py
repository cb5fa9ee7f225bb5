"""Amazon SES (receiving): the DSN a receipt rule's "Bounce" action sends back.

Heuristics after Sisimai::Lhost::ReceivingSES (BSD-2-Clause). The notice has the
``X-SES-Outgoing`` header, starts with "This message could not be delivered." and carries
RFC 3464 fields. The SMTP reply is one of the fixed templates of the SES console's bounce
action ("Mailbox does not exist", "Message too large", "Mailbox full", "Message content
rejected", "Unknown failure", "Temporary failure"), which name the reason outright; the
mailbox one is left to its status (5.1.1).
"""

from __future__ import annotations

from bounces.formats._providers import fixed_reason, refine_generic_status
from bounces.formats.rfc3464 import drafts_from_report
from bounces.model import FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "receivingses"

_START = "This message could not be delivered."
# The bounce action's templates (SES developer guide, "Bounce action"). "Message content
# rejected" is the template for content the rule's spam/virus verdicts refused (Sisimai 5
# reads it as spamdetected: lhost-receivingses-06).
_TEMPLATES: dict[Reason, tuple[str, ...]] = {
    Reason.MESGTOOBIG: ("Message too large",),
    Reason.MAILBOXFULL: ("Mailbox full",),
    Reason.SPAMDETECTED: ("Message content rejected",),
}


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an SES receipt-rule bounce, else None."""
    if not mail.header("X-SES-Outgoing") or _START not in mail.text:
        return None
    text = mail.section("message/delivery-status") or mail.text[mail.text.find(_START):]
    drafts = drafts_from_report(text)
    for draft in drafts:
        refine_generic_status(draft)
        draft.reason = fixed_reason(draft.diagnostic, _TEMPLATES)
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822"))
