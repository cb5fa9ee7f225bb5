"""RFC 3464 delivery status notifications, from any MTA that writes them properly.

``multipart/report; report-type=delivery-status`` with a ``message/delivery-status``
part (RFC 3464 section 2, RFC 6533 ``message/global-delivery-status``). Also
reads DSN fields that arrive as plain text when the MIME structure is broken
(a forwarded bounce, a lost boundary), as Sisimai::RFC3464 does. Where the
fields carry no Diagnostic-Code, the human-readable part's lines about that
recipient stand in for it.
"""

from __future__ import annotations

import re

from bounces.dsn import draft_from_fields, parse_delivery_status
from bounces.model import Draft, FormatResult
from rfc822 import Mail

__all__ = ["NAME", "drafts_from_report", "explanation_for", "parse"]

NAME = "rfc3464"

_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status", "message/x-delivery-status")
_LOOSE_START = re.compile(r"^(?:Final|Original)-Recipient:[ \t]*\S", re.M | re.I)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from the delivery-status part (or loose DSN fields), else None."""
    text = ""
    for ctype in _STATUS_TYPES:
        text = mail.section(ctype)
        if text:
            break
    if not text:
        match = _LOOSE_START.search(mail.text)
        if not match:
            return None
        # Per-message fields such as Reporting-MTA sit a few lines above.
        start = mail.text.rfind("\n\n", 0, match.start())
        text = mail.text[start + 1 if start >= 0 else 0:]
    drafts = drafts_from_report(text)
    if not drafts:
        return None
    for draft in drafts:
        if not draft.diagnostic:
            draft.diagnostic = explanation_for(mail.text, draft.recipient, draft.alias)
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822"))


def drafts_from_report(text: str) -> list[Draft]:
    """One draft per recipient block of a delivery-status text."""
    report = parse_delivery_status(text)
    return [draft_from_fields(fields, report.message) for fields in report.recipients
            if fields.get("final-recipient") or fields.get("original-recipient")]


def explanation_for(text: str, recipient: str, alias: str = "") -> str:
    """The human-readable lines about ``recipient``: its line and the indented ones after it.

    Postfix, Exim and Sendmail all write the failed address and then the
    remote server's reply, indented or on the next lines, in the notification.
    """
    lines = text.split("\n")
    wanted = [a.lower() for a in (recipient, alias) if a]
    for index, line in enumerate(lines):
        lowered = line.lower()
        if not any(a in lowered for a in wanted):
            continue
        collected = [line.strip()]
        for follow in lines[index + 1: index + 8]:
            if not follow.strip() or (follow[:1] not in " \t" and "@" in follow):
                break
            collected.append(follow.strip())
        explanation = " ".join(collected)
        if len(explanation) > len(recipient) + 12:
            return explanation
    return ""
