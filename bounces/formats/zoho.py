"""Zoho Mail's "Undelivered Mail Returned to Sender".

Heuristics after Sisimai::Lhost::Zoho (BSD-2-Clause). Recognised by the ``X-ZohoMail``
header. After "This message was created automatically by mail delivery software." each
failed address starts a line followed by Zoho's text and the remote reply
("kijitora@example.co.jp Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <...>... User
Unknown"), or a "[Status: ..., <address>, ...]" line; the returned headers follow from
"Received: from mail.zoho.com by mx.zohomail.com".
"""

from __future__ import annotations

import re

from bounces.formats._providers import fillet, fixed_reason
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "zoho"

_BACKBONE = re.compile(r"^(?=Received:[ ]*from[ ]mail\.zoho\.com[ ]by[ ]mx\.zohomail\.com)", re.M)
_START = "This message was created automatically by mail delivery"
_RECIPIENT = re.compile(r"^([^ ]+@[^ ]+)[ \t]+(.+)$")
_STATUS_LINE = re.compile(r"^\[Status: .+<([^ ]+@[^ ]+)>,")
_MESSAGES: dict[Reason, tuple[str, ...]] = {Reason.EXPIRED: ("Host not reachable",)}


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Zoho Mail bounce, else None."""
    if not mail.header("X-ZohoMail"):
        return None
    notice, original = fillet(mail.text, _BACKBONE)
    start = notice.find(_START)
    if start < 0:
        return None
    drafts: list[Draft] = []
    continued = False
    for line in notice[start:].split("\n")[1:]:
        match, status = _RECIPIENT.match(line), _STATUS_LINE.match(line)
        if status:
            drafts.append(Draft(recipient=status.group(1), diagnostic=line, action="failed"))
        elif match and "@" in match.group(1) and not match.group(1).endswith(":"):
            drafts.append(Draft(recipient=match.group(1).strip("<>"), diagnostic=match.group(2),
                                action="failed"))
        elif continued and drafts:
            # A quoted-printable soft break left in an undecoded body (Sisimai reads on).
            drafts[-1].diagnostic += line
        continued = bool(drafts) and drafts[-1].diagnostic.endswith("=")
        if continued:
            drafts[-1].diagnostic = drafts[-1].diagnostic[:-1]
    for draft in drafts:
        draft.reason = fixed_reason(draft.diagnostic, _MESSAGES)
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=original)
