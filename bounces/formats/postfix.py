"""Postfix bounce notices: the MIME DSN, the non-MIME and old notices, and SMTP transcripts.

Heuristics after Sisimai::Lhost::Postfix (Sisimai 4.25 and 5, BSD-2-Clause) and
Postfix's own bounce(5) templates and ``bounce_notify_util.c``:

- A notice has the subject "Undelivered Mail Returned to Sender" (or, for a
  delay warning, "Delayed Mail (still being retried)"; success and address
  verification reports have theirs too), a human-readable part
  that starts after "The mail system" / "This is the Postfix program" and
  gives one paragraph per recipient, ``<rcpt> (expanded from <alias>): text``
  with continuation lines indented, and an RFC 3464 part whose fields carry
  ``X-Postfix-Queue-ID`` / ``X-Postfix-Sender``.
- The paragraph has the remote reply in full with the SMTP command ("in reply
  to RCPT TO command"); the Diagnostic-Code field is preferred when present
  (it holds only the reply), the paragraph fills in the command and whatever the
  field lacks.
- Old Postfix versions and forwarded notices whose MIME structure broke carry
  the same lines as plain text; the scan reads the whole body up to the
  returned original. "--- Delivery report unavailable ---" means only the
  original's To: names the recipient.
- "Postfix SMTP server: errors from <client>" notices to the postmaster hold a
  session transcript (`` In:``/``Out:`` lines); the failed RCPT and the first
  4xx/5xx reply give the draft (lhost-postfix-75 in the corpus).
"""

from __future__ import annotations

import re

from bounces.formats._text import cut_original, dsn_drafts, find_command, squeeze
from bounces.model import Draft, FormatResult
from rfc822 import Mail, first_address

__all__ = ["NAME", "parse"]

NAME = "postfix"

# bounce(5): failure_template, delay_template, success_template, verify_template.
_SUBJECTS = ("undelivered mail returned to sender", "delayed mail (still being retried)",
             "successful mail delivery report", "mail delivery status report")
# bounce(5) templates, as Sisimai::Lhost::Postfix's $markingsof->{message} lists them.
_START = re.compile(
    r"^\s*(?:The (?:Postfix (?:program|on .+ program)|\w+ Postfix program|mail[ \t]system|\w+[ \t]program)"
    r"\s*$"
    r"|This is the (?:Postfix program|\w+ Postfix program|\w+ program|mail system at host))",
    re.M,
)
# One recipient's paragraph: "<rcpt> (expanded from <alias>): text".
_PARAGRAPH = re.compile(r"^<([^<>\s]+@[^<>\s]+)>(?:\s*\(expanded from\s*<([^<>]*)>\))?:\s*(.*)$", re.S)
# A forwarded copy may shift the line by a space (lhost-postfix-66).
_PARAGRAPH_START = re.compile(r"^[ \t]{0,2}<[^<>\s]+@[^<>\s]+>(?::|\s*\(expanded from)")
_DSN_CODE = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
_UNAVAILABLE = "--- Delivery report unavailable ---"
_TRANSCRIPT_SUBJECT = re.compile(r"SMTP server: errors from ", re.I)
_TRANSCRIPT_LINE = re.compile(r"^\s(In|Out):\s+(.*)$")
_REPLY = re.compile(r"^([245]\d\d)[ -]?(.*)$")


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Postfix notice or session transcript, else None."""
    subject = mail.subject.strip().lower()
    if "@sendgrid.net" in mail.header("Return-Path").lower():
        return None  # SendGrid copies Postfix's subject; its own module reads it
    if subject in _SUBJECTS:
        return _notice(mail, "delayed" if subject.startswith("delayed") else "failed")
    if _TRANSCRIPT_SUBJECT.search(mail.subject) and "Transcript of session follows" in mail.text:
        return _transcript(mail)
    return None


def _notice(mail: Mail, action: str) -> FormatResult | None:
    report, original = cut_original(mail.body)
    status_part = mail.section("message/delivery-status")
    drafts = dsn_drafts(status_part or report)
    start = _START.search(report)
    prose = report[start.end() if start else 0:]
    paragraphs = _paragraphs(prose)
    if not drafts:
        drafts = [Draft(recipient=r, alias=a) for r, (a, _) in paragraphs.items()]
    if not drafts and _UNAVAILABLE.lower() in report.lower():
        # postfix bounce_notify_util.c: no log records, only the returned original.
        to = re.search(r"^To:[ \t]*(.+)$", original, re.M | re.I)
        if to and first_address(to.group(1)):
            drafts = [Draft(recipient=first_address(to.group(1)))]
    for index, draft in enumerate(drafts):
        found = paragraphs.get(draft.recipient.lower()) or paragraphs.get(draft.alias.lower())
        if found is None and len(drafts) == len(paragraphs):
            found = list(paragraphs.values())[index]
        _complete(draft, found[1] if found else "")
        draft.action = draft.action or action
    return FormatResult(drafts=drafts, original=original) if drafts else None


def _paragraphs(prose: str) -> dict[str, tuple[str, str]]:
    """recipient (lower-cased) -> (alias, explanation) from the human-readable part."""
    found: dict[str, tuple[str, str]] = {}
    current: list[str] = []
    for line in [*prose.split("\n"), ""]:
        starts = _PARAGRAPH_START.match(line)
        if starts or not line.strip():
            if current:
                match = _PARAGRAPH.match(" ".join(current))
                if match:
                    found.setdefault(match.group(1).lower(), (match.group(2) or "", squeeze(match.group(3))))
            current = [line.strip()] if starts else []
        elif current:
            # Continuation lines are indented by four spaces; forwarded copies lose the indent.
            current.append(line.strip())
    return found


def _complete(draft: Draft, explanation: str) -> None:
    """Merge the paragraph's text into a draft made from the DSN fields (Sisimai's $anotherset)."""
    if draft.spec == "X-POSTFIX":
        # Postfix's own errors (DNS, connect) are about the SMTP delivery (Sisimai does the same).
        draft.spec = "SMTP"
    if explanation:
        # Sisimai: the paragraph replaces a missing or bare-number field, or a field whose
        # status is generic (x.0.0) when only the paragraph has a specific one.
        generic = not draft.status or draft.status.endswith(".0.0")
        better = (generic and bool(_DSN_CODE.search(explanation)) and not _DSN_CODE.search(draft.diagnostic)
                  and len(explanation) > len(draft.diagnostic))
        if not draft.diagnostic or draft.diagnostic.isdigit() or better:
            draft.diagnostic = explanation
    draft.command = draft.command or find_command(explanation) or find_command(draft.diagnostic)
    if not draft.spec and re.search(r"host \S+ said:", explanation or draft.diagnostic):
        draft.spec = "SMTP"
    if not draft.remote_mta:
        host = re.search(r"\b(?:host|connect to) (\S+?)\[", explanation)
        draft.remote_mta = host.group(1) if host else ""
    draft.diagnostic = squeeze(draft.diagnostic)


def _transcript(mail: Mail) -> FormatResult | None:
    """Drafts from a 'Transcript of session follows.' notice (postfix smtpd_chat.c)."""
    session: list[list[str]] = []  # [direction, text] with continuation lines joined
    for line in mail.text.split("\n"):
        match = _TRANSCRIPT_LINE.match(line)
        if match:
            session.append([match.group(1), match.group(2).strip()])
        elif session and line.startswith("     ") and line.strip():
            session[-1][1] += " " + line.strip()
    drafts: list[Draft] = []
    command, recipient, server = "", "", ""
    for direction, text in session:
        if direction == "In":
            verb = text.split(" ", 1)[0].upper()
            command = verb if verb in ("HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "QUIT") else command
            if verb == "RCPT":
                recipient = first_address(text)
            continue
        reply = _REPLY.match(text)
        if reply and reply.group(1) == "220" and not server:
            server = reply.group(2).split(" ", 1)[0]  # the greeting names the reporting server
        if not reply or reply.group(1)[0] == "2" or reply.group(1) == "354" or command == "QUIT":
            continue
        if recipient and not any(d.recipient == recipient for d in drafts):
            drafts.append(Draft(recipient=recipient, diagnostic=text, command=command, spec="SMTP",
                                reply_code=reply.group(1), reporting_mta=server))
    return FormatResult(drafts=drafts) if drafts else None
