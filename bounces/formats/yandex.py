"""Yandex.Mail: a Postfix DSN with a Russian preamble.

Heuristics after Sisimai::Lhost::Yandex (BSD-2-Clause). Recognised by the
``X-Yandex-Uniq`` header and From "mailer-daemon@yandex.ru". The report is a regular
RFC 3464 one (read with the rfc3464 helpers); what this module adds is the SMTP command
from Postfix's "(in reply to RCPT TO command)" lines of the human-readable part, one per
recipient in order, and the reply text from that part when the fields carry none.
"""

from __future__ import annotations

import re

from bounces.formats.rfc3464 import drafts_from_report, explanation_for
from bounces.model import FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "yandex"

_COMMAND = re.compile(r"[ \t]\(in reply to .*?([A-Z]{4}).*|([A-Z]{4})[ \t]*.*command\)$", re.M)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Yandex DSN, else None."""
    if not mail.header("X-Yandex-Uniq") or mail.sender != "mailer-daemon@yandex.ru":
        return None
    report = mail.section("message/delivery-status")
    drafts = drafts_from_report(report) if report else []
    text = mail.text
    commands = [m.group(1) or m.group(2) for m in _COMMAND.finditer(text)]
    for draft, command in zip(drafts, commands + [""] * len(drafts), strict=False):
        draft.command = command
        if not draft.diagnostic:
            draft.diagnostic = explanation_for(text, draft.recipient, draft.alias)
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822"))
