"""Amazon WorkMail: the DSN that WorkMail (sending through SES) writes as plain text.

Heuristics after Sisimai::Lhost::AmazonWorkMail (BSD-2-Clause). WorkMail's notice is
``multipart/mixed``, not a report: a text part says "An error occurred while trying to
deliver the mail to the following recipients:", then "Technical report:" and RFC 3464
fields as plain text. Both ``X-SES-Outgoing`` and ``X-Mailer`` (or ``X-Original-Mailer``)
"Amazon WorkMail" must be present. Beyond the fields, the reply code comes from the last
server's reply that WorkMail wraps in angle brackets, and a generic x.0.0/x.1.0 status
gives way to the code in the quoted reply.
"""

from __future__ import annotations

from bounces.formats._providers import bracketed_reply_code, refine_generic_status
from bounces.formats.rfc3464 import drafts_from_report
from bounces.model import FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "amazonworkmail"

_START = "Technical report:"


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from the WorkMail technical report, else None."""
    mailer = mail.header("X-Original-Mailer") or mail.header("X-Mailer")
    if mailer != "Amazon WorkMail" or not mail.header("X-SES-Outgoing"):
        return None
    text = mail.text
    start = text.find(_START)
    report = text[start + len(_START):] if start >= 0 else mail.section("message/delivery-status")
    # WorkMail appends an HTML copy of the notice; the fields end before it.
    end = report.find("<!DOCTYPE HTML>")
    drafts = drafts_from_report(report[:end] if end >= 0 else report)
    for draft in drafts:
        refine_generic_status(draft)
        draft.reply_code = draft.reply_code or bracketed_reply_code(draft.diagnostic)
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822"))
