"""Sendmail (V8) bounces: "Returned mail: see transcript for details".

Heuristics after Sisimai::Lhost::Sendmail (BSD-2-Clause). Sendmail writes an
RFC 3464 report, but its Diagnostic-Code is often the first line of a
multi-line reply, or only the mailer's exit code ("255"); the transcript of
the SMTP session (``>>> DATA`` / ``<<< 552-5.7.0 ...``, savemail.c) holds
the full remote reply and the command it answered. This module reads the
transcript and the DSN fields together, from the line
"----- Transcript of session follows -----" on. A bounce without a
transcript is left to the RFC 3464 reader.
"""

from __future__ import annotations

import re

from bounces.formats._lines import DsnField, dsn_field, fillet, reading, reply_code_for, sweep, unforwarded
from bounces.model import Draft, FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "sendmail"

_SUBJECT = re.compile(r"see transcript for details\s*$|^(?:fwd?:\s*)?Warning: ", re.I)
_BOUNDARY = re.compile(r"^Content-Type:[ ](?:message/rfc822|text/rfc822-headers)", re.M)
_TRANSCRIPT = "----- Transcript of session follows -----"
_COMMAND = re.compile(r"^>>>[ ]+([A-Z]{4})")
_REPLY = re.compile(r"^<<<[ ]+(.+)$")
_ADDRESS_ERROR = re.compile(r"^<(.+)>\.+ (.+)$")  # <a@b>... Deferred: Name server: ...
_STATUS_LINE = re.compile(r"^[45]\d\d[ \t]([45]\.\d\.\d{1,3})[ \t].+")  # 554 5.3.0 unknown mailer error 255
_FULL_STATUS = re.compile(r"^[45]\.\d\.\d{1,3}$")
_BRACKETED = re.compile(r"<([^ ]+@[^ ]+)>")
_RAW_RECIPIENT = re.compile(rb"^Final-Recipient:[ \t]*rfc822;[ \t]*(=\?\S+@\S+)", re.M | re.I)


class _Transcript:
    """What the session transcript says beyond the DSN fields."""

    def __init__(self) -> None:
        self.command = ""  # the last ">>> " command sent, as Sisimai keeps it
        self.replies: list[str] = []
        self.diagnostic = ""
        self.status = ""
        self.session_error = False


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Sendmail bounce with a session transcript, else None."""
    if not _SUBJECT.search(mail.subject) or mail.header("X-AOL-IP"):
        return None
    _, body = unforwarded(mail)
    if _TRANSCRIPT not in body:
        return None
    text, original = fillet(body, _BOUNDARY)
    drafts: list[Draft] = []
    per_message = Draft()
    transcript = _Transcript()
    previous = ""
    for line in reading(text.split("\n"), _TRANSCRIPT):
        if not line:
            previous = line
            continue
        field = dsn_field(line)
        if field is not None:
            _store(field, drafts, per_message)
        elif line[0] != " ":
            _scan(line, transcript)
        elif previous.startswith("Diagnostic-Code:") and drafts:
            drafts[-1].diagnostic += " " + line.strip()
            continue  # a second continuation line still belongs to the field
        previous = line
    drafts = [d for d in drafts if d.recipient]
    if not drafts:
        return None
    for draft in drafts:
        _finish(draft, per_message, transcript, shared=len(drafts) > 1)
        if not draft.recipient.isascii():
            draft.recipient = _undecoded(mail.raw, draft.recipient)
    return FormatResult(drafts=drafts, original=original)


def _store(field: DsnField, drafts: list[Draft], per_message: Draft) -> None:
    if field.per_message:
        field.apply(per_message)
        return
    if field.name == "final-recipient":
        if not drafts or drafts[-1].recipient:
            drafts.append(Draft())
        drafts[-1].recipient = field.value
        return
    if not drafts:
        drafts.append(Draft())
    field.apply(drafts[-1])


def _scan(line: str, transcript: _Transcript) -> None:
    """One transcript line: a command, a reply, or Sendmail's own error text."""
    command = _COMMAND.match(line)
    if command:
        transcript.command = command.group(1)
        return
    reply = _REPLY.match(line)
    if reply:
        if reply.group(1) not in transcript.replies:
            transcript.replies.append(reply.group(1))
        return
    if transcript.session_error:
        return
    if line.startswith("... while talking to "):
        transcript.session_error = True
        return
    error = _ADDRESS_ERROR.match(line)
    if error:
        transcript.diagnostic = error.group(2)
        return
    status = _STATUS_LINE.match(line)
    if status:
        transcript.status = status.group(1)
        transcript.diagnostic += " " + line
    elif line.startswith(("Message: ", "Warning: ", "Message could not be delivered for ")):
        # queue.c: "Message could not be delivered for %s" when the queue lifetime ran out.
        transcript.diagnostic += " " + line


def _finish(draft: Draft, per_message: Draft, transcript: _Transcript, shared: bool) -> None:
    draft.reporting_mta = draft.reporting_mta or per_message.reporting_mta
    draft.date = draft.date or per_message.date
    draft.command = transcript.command or ("EHLO" if transcript.replies else "")
    diagnostic = draft.diagnostic.strip()
    if transcript.diagnostic.strip() and (not diagnostic or diagnostic.isdigit()):
        diagnostic = transcript.diagnostic
    if transcript.replies:
        joined = " ".join(transcript.replies)
        # Sisimai takes the longer text. With several recipients the transcript is
        # one for all of them: a recipient whose own reply is not in it keeps its own.
        unrelated = shared and diagnostic and " ".join(diagnostic.split()) not in " ".join(joined.split())
        if len(joined) > len(diagnostic) and not unrelated:
            diagnostic = joined
    draft.diagnostic = sweep(diagnostic)
    if transcript.status and not _FULL_STATUS.match(draft.status):
        draft.status = transcript.status
    draft.reply_code = reply_code_for(draft.diagnostic, draft.status)
    if "@" not in draft.recipient or draft.recipient.startswith("@"):
        # "Final-Recipient: RFC822; @mx.example.org": the address is in the reply.
        found = _BRACKETED.search(draft.diagnostic)
        if found:
            draft.recipient = found.group(1)


def _undecoded(raw: bytes, decoded: str) -> str:
    """The Final-Recipient as written when the MIME reader decoded an RFC 2047 word in it.

    RFC 2047 section 5 forbids encoded-words in an addr-spec, so the encoded
    form is the address the MTA tried (sendmail-25: "=?utf-8?B?...?=@example.org").
    """
    found = _RAW_RECIPIENT.search(raw)
    if found is None:
        return decoded
    return found.group(1).decode("ascii", "replace")
