"""X6: an unnamed MTA's "There was an error sending your mail" notices (Sisimai's X6 family).

Heuristics after Sisimai::Lhost::X6 (BSD-2-Clause): the subject, then::

    1 error(s):

    SMTP Server <mx.example.org> rejected recipient <rcpt@example.org> (Error following RCPT
    command). It responded as follows: [550 5.1.1 User unknown]

or "The following recipients returned permanent errors: rcpt@example.org.
Reason: SMTP Server <192.0.2.223> refused to accept your message (DATA), with the
following error message: [554 5.4.6 ...]". The line is the diagnostic; the SMTP
command is the one it names. The original's headers follow "The attachment
contains the original mail headers".
"""

from __future__ import annotations

import re

from bounces.formats._text import squeeze
from bounces.model import Draft, FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "x6"

_START = re.compile(r"^\d+ *error\(s\):", re.M)
_SEPARATOR = re.compile(r"^The attachment contains the original mail headers.*$", re.M)
_RECIPIENT = (re.compile(r"<([^<>\s@]+@[^<>\s@]+)>"), re.compile(r"errors: *([^\s@]+@[^\s@]+?)\.?(?:\s|$)"))
_COMMAND = re.compile(r"\b(HELO|EHLO|MAIL|RCPT|DATA)\b")
_SERVER = re.compile(r"SMTP Server <([^<>]+)>")


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an X6 notice, else None."""
    if not mail.subject.startswith("There was an error sending your mail"):
        return None
    start = _START.search(mail.body)
    if start is None:
        return None
    end = _SEPARATOR.search(mail.body, start.end())
    drafts: list[Draft] = []
    for line in mail.body[start.end(): end.start() if end else len(mail.body)].split("\n"):
        found = next((m for m in (p.search(line) for p in _RECIPIENT) if m), None)
        if found is None or "@" not in found.group(1):
            continue
        command = _COMMAND.search(line)
        server = _SERVER.search(line)
        drafts.append(Draft(recipient=found.group(1), diagnostic=squeeze(line), action="failed",
                            command=command.group(1) if command else "", spec="SMTP",
                            remote_mta=server.group(1) if server else ""))
    original = mail.body[end.end():].lstrip("\n") if end else ""
    return FormatResult(drafts=drafts, original=original) if drafts else None
