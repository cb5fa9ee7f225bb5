"""Trustwave (Marshal) MailMarshal SMTP bounces: 'Undeliverable Mail: "<subject>"'.

Heuristics after Sisimai::Lhost::MailMarshalSMTP (BSD-2-Clause). The text
quotes the message ("Your message:" with From / Subject), gives the error
after "Could not be delivered because of", then lists "The following
recipients were affected:" (addresses indented four spaces), and ends with
"Additional Information" fields (Original Sender, Sender-MTA, Remote-MTA,
Reporting-MTA in angle brackets).
"""

from __future__ import annotations

import re

from bounces.formats._lines import ORIGINAL_MARKER, fillet, reading, sweep
from bounces.model import Draft, FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "mailmarshal"

_RECIPIENT = re.compile(r"^[ \t]{4}([^ ]+@[^ ]+)$")
_ERROR = "Could not be delivered because of"
_RECIPIENTS = "The following recipients were affected:"
_FIELD = re.compile(r"^(Original Sender|Remote-MTA|Reporting-MTA):[ \t]+<(.+)>$")
_QUOTED = re.compile(r"^\s+(From|Subject):\s*(.+)$")


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a MailMarshal bounce, else None."""
    if not mail.subject.startswith('Undeliverable Mail: "'):
        return None
    text, original = fillet(mail.body, ORIGINAL_MARKER)
    recipients: list[str] = []
    error: list[str] = []
    fields: dict[str, str] = {}
    quoted: list[str] = []
    state = ""  # "", "error", "recipients"
    for line in reading(text.split("\n"), re.compile(r"^Your message:")):
        recipient = _RECIPIENT.match(line.rstrip())
        if recipient:
            recipients.append(recipient.group(1))
        elif line.strip() == _ERROR:
            state = "error"
        elif line.startswith(_RECIPIENTS):
            state = "recipients"
        elif state == "error" and line.strip():
            error.append(line.strip())
        elif found := _FIELD.match(line.strip()):
            fields[found.group(1)] = found.group(2)
        elif not state and (found := _QUOTED.match(line)):
            quoted.append(f"{found.group(1)}: {found.group(2)}")
    if not recipients:
        return None
    diagnostic = sweep(" ".join(error))
    drafts = [Draft(recipient=r, diagnostic=diagnostic, remote_mta=fields.get("Remote-MTA", ""),
                    reporting_mta=fields.get("Reporting-MTA", "")) for r in recipients]
    if not original and quoted:
        original = "\n".join(quoted) + "\n"
    return FormatResult(drafts=drafts, original=original)
