"""SendGrid bounce notices (the older "Undelivered Mail Returned to Sender" reports).

Heuristics after Sisimai::Lhost::SendGrid (BSD-2-Clause): Return-Path
``<apps@sendgrid.net>``, the Postfix-like subject "Undelivered Mail Returned to
Sender", a text part that starts "This is an automatically generated message
from SendGrid." and gives one line per recipient::

    user:000000:<rcpt@example.jp> : 192.0.2.250 : mx.example.jp:[192.0.2.153] :
      550 5.1.1 <rcpt@example.jp>... User Unknown  in RCPT TO

("in RCPT TO", "in MAIL FROM", "in End of DATA", "in connect" name the step),
and a message/delivery-status part whose Diagnostic-Code often lacks its type
and whose Status is often empty. ``Action: expired`` says the retry period
ran out (Sisimai sets the reason expired for it).
"""

from __future__ import annotations

import re

from bounces.formats._text import dsn_drafts, squeeze
from bounces.model import FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "sendgrid"

_START = "This is an automatically generated message from SendGrid."
_LINE = re.compile(r"^\S*:\d+:<([^<>\s]+@[^<>\s]+)>\s*:(.*)$")
_STEP = re.compile(r"\bin (?:End of )?([A-Z]{4})\b[A-Z ]*$")


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a SendGrid notice, else None."""
    if "apps@sendgrid.net" not in mail.header("Return-Path").lower():
        return None
    if mail.subject.strip() != "Undelivered Mail Returned to Sender" and _START not in mail.text:
        return None
    drafts = dsn_drafts(mail.section("message/delivery-status"))
    lines = _recipient_lines(mail.text)
    for draft in drafts:
        text = lines.get(draft.recipient.lower(), "")
        step = _STEP.search(text)
        draft.command = step.group(1) if step else ("CONN" if text.endswith(" in connect") else "")
        if not draft.diagnostic:
            draft.diagnostic = squeeze(text.rsplit(" : ", 1)[-1])
        if draft.action == "expired":
            draft.action = "delayed"
            draft.reason = Reason.EXPIRED
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822")) if drafts else None


def _recipient_lines(text: str) -> dict[str, str]:
    """recipient -> its notification line, continuation lines joined."""
    found: dict[str, str] = {}
    last = ""
    for line in text.split("\n"):
        match = _LINE.match(line)
        if match:
            last = match.group(1).lower()
            found[last] = squeeze(match.group(2))
        elif last and line[:1].isspace() and line.strip():
            found[last] = squeeze(found[last] + " " + line)
        else:
            last = ""
    return found
