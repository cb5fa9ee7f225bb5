"""MX Logic (McAfee SaaS Email Protection) bounces, written by its Exim-based MTA.

Heuristics after Sisimai::Lhost::MXLogic (BSD-2-Clause). Exim's text: after
"This message was created automatically by mail delivery software." each
failed address is ``<user@domain>: reason``, with more lines of the reason
indented below; the original's headers follow "Included is a copy of the
message header:". Recognised by the X-MX-Bounce / X-MXL-* headers or an
mxlogic.net sender or relay; the Exim-like text alone is left to the Exim
module, which runs before this one. Exim's fixed texts name the reason.
"""

from __future__ import annotations

import re

from bounces.formats._lines import fillet, reading, sweep
from bounces.formats.exim import EXIM_TEXTS
from bounces.model import Draft, FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "mxlogic"

_HEADERS = ("X-MX-Bounce", "X-MXL-Hash", "X-MXL-NoteHash")
_BOUNDARY = re.compile(r"^Included is a copy of the message header:", re.M)
_START = "This message was created automatically by mail delivery software."
_RECIPIENT = re.compile(r"^[ \t]*<([^ ]+@[^ ]+)>:(.+)$")
_COMMAND = re.compile(r"SMTP error from remote (?:mail server|mailer) after (?:end of )?([A-Za-z]{4})")
_REMOTE = re.compile(r"host[ \t]+([^ \t]+)[ \t]\[.+\]:[ \t]")
# MXLogic relays through Exim and says Exim's own texts (Sisimai reuses its $messagesof).
_TEXTS = EXIM_TEXTS


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an MX Logic bounce, else None."""
    if not any(mail.has_header(h) for h in _HEADERS) and "mxlogic.net" not in mail.sender \
            and not any("mxlogic.net" in r for r in mail.headers("Received")[:2]):
        return None
    text, original = fillet(mail.body, _BOUNDARY)
    drafts: list[Draft] = []
    for line in reading(text.split("\n"), _START):
        recipient = _RECIPIENT.match(line)
        if recipient:
            drafts.append(Draft(recipient=recipient.group(1), diagnostic=recipient.group(2)))
        elif drafts and line.strip():
            drafts[-1].diagnostic += " " + line.strip()
    for draft in drafts:
        _finish(draft)
    return FormatResult(drafts=drafts, original=original) if drafts else None


def _finish(draft: Draft) -> None:
    # Sisimai cuts at the first "--": what follows is a MIME boundary or Exim's separator line.
    draft.diagnostic = sweep(draft.diagnostic.split("--")[0])
    remote = _REMOTE.search(draft.diagnostic)
    draft.remote_mta = remote.group(1) if remote else ""
    command = _COMMAND.search(draft.diagnostic)
    draft.command = command.group(1).upper() if command else ""
    if draft.command:
        return  # the remote reply decides; the classifier reads it with the command
    for reason, phrases in _TEXTS:
        if any(p in draft.diagnostic for p in phrases):
            draft.reason = reason
            return
