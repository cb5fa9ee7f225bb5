"""Yahoo! Mail's "Failure Notice".

Heuristics after Sisimai::Lhost::Yahoo (BSD-2-Clause). Recognised by the ``X-YMailISG``
header that Yahoo's outbound servers add. The body starts "Sorry, we were unable to deliver
your message to the following address.", then "<recipient>:", "Remote host said:", the
remote reply and the SMTP command in brackets ("[RCPT_TO]"), and the returned message after
"--- Below this line is a copy of the message.".
"""

from __future__ import annotations

import re

from bounces.formats._providers import fillet
from bounces.model import Draft, FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "yahoo"

_BACKBONE = re.compile(r"^--- Below this line is a copy of the message\.[^\n]*$", re.M)
_START = "Sorry, we were unable to deliver your message"
_RECIPIENT = re.compile(r"^<([^<>\s]+@[^<>\s]+)>:\s*$")
_COMMAND = re.compile(r"\[([A-Z]{4})[A-Z_]*\]\s*$")


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Yahoo! failure notice, else None."""
    if not mail.header("X-YMailISG"):
        return None
    notice, original = fillet(mail.text, _BACKBONE)
    start = notice.find(_START)
    if start < 0:
        return None
    drafts: list[Draft] = []
    lines: list[str] = []
    for line in notice[start:].split("\n")[1:]:
        match = _RECIPIENT.match(line.strip())
        if match:
            _finish(drafts, lines)
            drafts.append(Draft(recipient=match.group(1), spec="SMTP", action="failed"))
            lines = []
        elif drafts and line.strip():
            lines.append(line.strip())
    _finish(drafts, lines)
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=original)


def _finish(drafts: list[Draft], lines: list[str]) -> None:
    """Fill the last draft from the lines under its address."""
    if not drafts:
        return
    draft = drafts[-1]
    text = []
    for line in lines:
        command = _COMMAND.search(line)
        if command:
            draft.command = command.group(1)
            line = line[: command.start()].strip()
        if line and line != "Remote host said:":
            text.append(line)
    draft.diagnostic = " ".join(text)
    if not draft.command and re.search(r"<[^<>\s]+@[^<>\s]+>", draft.diagnostic):
        # Sisimai::Lhost::Yahoo: a reply that names the recipient answered RCPT TO.
        draft.command = "RCPT"
