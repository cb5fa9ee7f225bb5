"""Ipswitch IMail Server (SMTP32) bounces: "Undeliverable Mail".

Heuristics after Sisimai::Lhost::IMailServer (BSD-2-Clause). Recognised by the
subject "Undeliverable Mail" or an X-Mailer "<SMTP32 v...>". Each failure is
one line, "Unknown user: user@domain" or "undeliverable to user@domain"; the
remote reply, when there is one, follows "Body of message generated
response:" (or "... command generated response:", which names the SMTP
command). The returned message follows "Original message follows.".
IMail's own fixed texts name the reason.
"""

from __future__ import annotations

import re

from bounces.formats._lines import fillet, sweep
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail, first_address

__all__ = ["NAME", "parse"]

NAME = "imailserver"

_SUBJECT = re.compile(r"^Undeliverable Mail\s*$")
_BOUNDARY = re.compile(r"^Original message follows\.", re.M)
_FAILURE = re.compile(r"^([^ ]+) (.+):[ \t]*([^ ]+@[^ ]+)")   # Unknown user: kijitora@example.com
_UNDELIVERABLE = re.compile(r"^undeliverable[ ]+to[ ]+(.+)$")
_RESPONSE = "Body of message generated response:"
_COMMANDS = (
    ("CONN", re.compile(r"SMTP connection failed,|Unexpected connection response from server:")),
    ("EHLO", re.compile(r"Unexpected response to EHLO/HELO:")),
    ("MAIL", re.compile(r"Server response to MAIL FROM:")),
    ("RCPT", re.compile(r"Additional RCPT TO generated following response:")),
    ("DATA", re.compile(r"DATA command generated response:")),
)
# IMail's own texts (Sisimai $refailures).
_FAILURES = (
    (Reason.HOSTUNKNOWN, re.compile(r"Unknown host")),
    (Reason.USERUNKNOWN, re.compile(r"^(?:Unknown user|Invalid final delivery userid)")),
    (Reason.MAILBOXFULL, re.compile(r"^User mailbox exceeds allowed size")),
    (Reason.VIRUSDETECTED, re.compile(r"^Requested action not taken: virus detected")),
    (Reason.EXPIRED, re.compile(r"^Delivery failed \d+ attempts")),
)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an IMail Server bounce, else None."""
    if not _SUBJECT.match(mail.subject) and not mail.header("X-Mailer").startswith("<SMTP32 v"):
        return None
    text, original = fillet(mail.body, _BOUNDARY)
    drafts: list[Draft] = []
    responses: list[str] = []
    for raw in text.split("\n"):
        line = raw.strip()
        failure = _FAILURE.match(line)
        undeliverable = _UNDELIVERABLE.match(line)
        if failure:
            diagnostic = f"{failure.group(1)} {failure.group(2)}"
            drafts.append(Draft(recipient=failure.group(3), diagnostic=diagnostic))
            responses.append("")
        elif undeliverable:
            drafts.append(Draft(recipient=first_address(undeliverable.group(1))))
            responses.append("")
        elif line and drafts and (responses[-1] or _starts_response(line)):
            responses[-1] += " " + line  # the remote reply and what follows it, up to the original
    for draft, response in zip(drafts, responses, strict=True):
        draft.diagnostic = sweep(f"{response} {draft.diagnostic}")
        for command, pattern in _COMMANDS:
            if pattern.search(draft.diagnostic):
                draft.command = command
                break
        for reason, pattern in _FAILURES:
            if pattern.search(draft.diagnostic):
                draft.reason = reason
                break
    drafts = [d for d in drafts if d.recipient]
    return FormatResult(drafts=drafts, original=original) if drafts else None


def _starts_response(line: str) -> bool:
    return _RESPONSE in line or any(pattern.search(line) for _, pattern in _COMMANDS)
