"""Sendmail version 5 (and other pre-DSN Sendmail) bounces: "Returned mail: ...".

Heuristics after Sisimai::Lhost::V5sendmail (BSD-2-Clause). No DSN fields:
the transcript (savemail.c) names each failed address in a line
``550 <user@domain>... User unknown`` after the session's ``>>> RCPT To:``
and ``<<< 550 ...`` lines, and the returned message follows
"----- Unsent message follows -----" as plain text. When the transcript
names no address, the original's To: header is the recipient.
"""

from __future__ import annotations

import re

from bounces.formats._lines import fillet, reading, reply_code_for, sweep
from bounces.model import Draft, FormatResult
from rfc822 import Mail, first_address

__all__ = ["NAME", "parse"]

NAME = "v5sendmail"

_SUBJECT = re.compile(r"^Returned mail: [A-Z]")
_BOUNDARY = re.compile(r"^[ ]+----- (?:Unsent message follows|No message was collected) -----", re.M)
_TRANSCRIPT = "----- Transcript of session follows -----"
_RECIPIENT = re.compile(r"^\d{3}[ \t]+<([^ ]+@[^ ]+)>\.{3}[ \t]*(.+)$")  # 550 <a@b>... User unknown
_COMMAND = re.compile(r"^>>>[ \t]*([A-Z]{4})")
_REPLY = re.compile(r"^<<<[ ]+(.+)$")
_SESSION_ERROR = re.compile(r"^\.+ while talking to .+:$")
_OTHER_ERROR = re.compile(r"^\d{3}[ \t]+.+\.{3}[ \t]*.+$")  # 421 example.org (smtp)... Deferred: ...
_TO = re.compile(r"^To:[ ]*(.+)$", re.M)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Sendmail 5 bounce, else None."""
    if not _SUBJECT.match(mail.subject):
        return None
    match = _BOUNDARY.search(mail.body)
    if match is None:
        return None
    text, original = fillet(mail.body, _BOUNDARY)
    drafts: list[Draft] = []
    replies: dict[int, str] = {}
    commands: dict[int, str] = {}
    other = ""
    session_error = False
    for line in reading(text.split("\n"), _TRANSCRIPT):
        if not line.strip():
            continue
        recipient = _RECIPIENT.match(line)
        if recipient:
            diagnostic = recipient.group(2)
            if replies.get(len(drafts)):
                diagnostic += ": " + replies[len(drafts)]
            drafts.append(Draft(recipient=recipient.group(1), diagnostic=diagnostic))
        elif command := _COMMAND.match(line):
            commands[len(drafts)] = command.group(1)
        elif reply := _REPLY.match(line):
            replies[len(drafts)] = reply.group(1)
        elif not session_error:
            if _SESSION_ERROR.match(line):
                session_error = True
            elif _OTHER_ERROR.match(line):
                # The whole line: its reply code is the only one for a timed-out host.
                other = line.strip()
    if not drafts:
        to = _TO.search(original)
        address = first_address(to.group(1)) if to else ""
        if not address:
            return None
        drafts.append(Draft(recipient=address))
    for index, draft in enumerate(drafts):
        draft.command = commands.get(index, "")
        draft.diagnostic = sweep(draft.diagnostic or other or replies.get(index, ""))
        draft.reply_code = reply_code_for(replies.get(index, "") + " " + draft.diagnostic, "")
    return FormatResult(drafts=drafts, original=original)
