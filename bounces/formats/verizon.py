"""Verizon Wireless: vtext.com (SMS gateway) and vzwpix.com (MMS gateway) notices.

Heuristics after Sisimai::Lhost::Verizon (BSD-2-Clause). Only when a Received header shows
a ".vtext.com (" host. From "post_master@vtext.com": "Error: ...", the remote reply
("550 - Requested action not taken: no such user here") and "Message details:" with
indented "RCPT TO: <address>". From "sysadmin@...vzwpix.com": "Message could not be
delivered to mobile.", "Error: No valid recipients for this MM", then the original's
"To:" line. Both fixed texts say the address does not exist.
"""

from __future__ import annotations

import re

from bounces.formats._providers import fixed_reason, has_received
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail, first_address

__all__ = ["NAME", "parse"]

NAME = "verizon"

_VZWPIX = re.compile(r"<?sysadmin@.+\.vzwpix\.com>?$")
_MESSAGES: dict[Reason, tuple[str, ...]] = {
    Reason.USERUNKNOWN: ("550 - Requested action not taken: no such user here",
                         "No valid recipients for this MM"),
}


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Verizon gateway notice, else None."""
    if not has_received(mail, ".vtext.com (") or b".vtext.com (" not in mail.raw:  # cached headers first
        return None
    if mail.sender == "post_master@vtext.com":
        drafts, original = _vtext(mail.text)
    elif _VZWPIX.search(mail.sender):
        drafts, original = _vzwpix(mail.text)
    else:
        return None
    for draft in drafts:
        draft.reason = fixed_reason(draft.diagnostic, _MESSAGES)
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=original)


def _vtext(text: str) -> tuple[list[Draft], str]:
    start = re.search(r"^Error:[ \t]", text, re.M)
    if start is None:
        return [], ""
    drafts: list[Draft] = []
    reply, original = "", []
    for line in text[start.start():].split("\n"):
        rcpt = re.match(r"^[ \t]+RCPT TO: (.*)$", line)
        if rcpt and first_address(rcpt.group(1)):
            drafts.append(Draft(recipient=first_address(rcpt.group(1)), action="failed", command="RCPT"))
        elif re.match(r"^\d{3}[ \t]-[ \t]", line):
            reply = line.strip()
        mail_from = re.match(r"^[ \t]+(MAIL FROM|Subject):[ \t](.+)$", line)
        if mail_from:
            # The notice keeps only these of the original: enough to attribute it.
            name = "From" if mail_from.group(1) == "MAIL FROM" else "Subject"
            original.append(f"{name}: {mail_from.group(2).strip()}")
    for draft in drafts:
        draft.diagnostic = reply
    return drafts, "\n".join(original)


def _vzwpix(text: str) -> tuple[list[Draft], str]:
    start = text.find("Message could not be delivered to mobile")
    if start < 0:
        return [], ""
    drafts: list[Draft] = []
    error, original = "", []
    for line in text[start:].split("\n"):
        to = re.match(r"^To:[ \t]+(.*)$", line)
        if to and first_address(to.group(1)):
            drafts.append(Draft(recipient=first_address(to.group(1)), action="failed"))
        elif re.match(r"^Error:[ \t]+\S", line):
            error = line.strip()
        if re.match(r"^(?:From|To|Subject|Date):[ \t]", line):
            original.append(line.strip())
    for draft in drafts:
        draft.diagnostic = error
    return drafts, "\n".join(original)
