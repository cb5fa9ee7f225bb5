"""GMX (and mail.com): the Exim-derived "Mail delivery failed" notice.

Heuristics after Sisimai::Lhost::GMX (BSD-2-Clause). Recognised by the ``X-GMX-Antispam``
header. After "This message was created automatically by mail delivery software." each
failed address stands on its own line, quoted ('"a@b":') or bracketed ('<a@b>'), followed
by "SMTP error from remote server after RCPT command:", "host: mx.example.jp" and the
remote reply, or by "Reason:" and GMX's own text. The returned headers follow
"--- The header of the original message is following. ---".
"""

from __future__ import annotations

import re

from bounces.formats._providers import fillet, fixed_reason
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "gmx"

_BACKBONE = re.compile(r"^--- The header of the original message is following\. ---[ ]*$", re.M)
_START = "This message was created automatically by mail delivery software"
_RECIPIENT = re.compile(r'^(?:"([^ "]+@[^ "]+)":|<([^ <>]+@[^ <>]+)>)$')
_COMMAND = re.compile(r"^SMTP error .+ ([A-Z]{4}) command:$")
_HOST = re.compile(r"^host:[ \t]*(\S+)")
_REPLY_LIKE = re.compile(r"\b[45]\.\d\.\d\b|<[^ ]+@[^ ]+>|\b[45]\d{2}\b")
_MESSAGES: dict[Reason, tuple[str, ...]] = {Reason.EXPIRED: ("delivery retry timeout exceeded",)}


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a GMX failure notice, else None."""
    if not mail.header("X-GMX-Antispam"):
        return None
    notice, original = fillet(mail.text, _BACKBONE)
    start = notice.find(_START)
    if start < 0:
        return None
    drafts: list[Draft] = []
    reason_next = False
    for raw in notice[start:].split("\n"):
        line = raw.strip()
        if not line:
            continue
        match = _RECIPIENT.match(line)
        if match:
            drafts.append(Draft(recipient=match.group(1) or match.group(2), action="failed", spec="SMTP"))
            continue
        if not drafts:
            continue
        draft = drafts[-1]
        command, host = _COMMAND.match(line), _HOST.match(line)
        if command:
            draft.command = command.group(1)
        elif host:
            draft.remote_mta = host.group(1)
        elif line == "Reason:":
            reason_next = True
        elif reason_next or (_REPLY_LIKE.search(line) and not draft.diagnostic):
            draft.diagnostic = line
            reason_next = False
    for draft in drafts:
        draft.reason = fixed_reason(draft.diagnostic, _MESSAGES)
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=original)
