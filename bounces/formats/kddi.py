"""au by KDDI (dion.ne.jp, auone-net.jp): "Your mail sent on: ... Could not be delivered to: <...>".

Heuristics after Sisimai::Lhost::KDDI (BSD-2-Clause). Recognised by From
"no-reply@...dion.ne.jp", Reply-To "no-reply@app.auone-net.jp", or a Received header of
ezweb.ne.jp or au.com; the body starts "Your mail sent on: <date>" (or "Your mail attempted
to be delivered on: <date>"), then indented "Could not be delivered to: <address>" and
KDDI's fixed reason ("As their mailbox is full.", "Due to the following SMTP relay error",
"As the remote domain doesnt exist"). ``X-SPASIGN: NG`` marks mail au's spam filter refused.
"""

from __future__ import annotations

import re

from bounces.formats._providers import fixed_reason, has_received
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "kddi"

_START = re.compile(r"^Your mail (?:sent|attempted to be delivered) on:? [A-Z][a-z]{2},", re.M)
_RECIPIENT = re.compile(r"^[ \t]+Could not be delivered to: <([^ <>]+@[^ <>]+)>")
_NEEDLES = (b"dion.ne.jp", b"auone-net.jp", b"ezweb.ne.jp (", b".au.com (")
_SENT_ON = re.compile(r"Your mail sent on: (.+)$")
_DION = re.compile(r"no-reply@.+\.dion\.ne\.jp")
_MESSAGES: dict[Reason, tuple[str, ...]] = {
    Reason.MAILBOXFULL: ("As their mailbox is full",),
    Reason.NORELAYING: ("Due to the following SMTP relay error",),
    Reason.HOSTUNKNOWN: ("As the remote domain doesnt exist",),
}


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a KDDI notice, else None."""
    if not (_DION.search(mail.sender)
            or mail.header("Reply-To") == "no-reply@app.auone-net.jp"
            or has_received(mail, "ezweb.ne.jp (") or has_received(mail, ".au.com (")):
        return None
    # The headers (parsed once, cached) first: scanning the raw bytes costs a pass over the message.
    if not any(needle in mail.raw for needle in _NEEDLES):
        return None
    text = mail.text
    start = _START.search(text)
    if start is None:
        return None
    drafts: list[Draft] = []
    date = ""
    for line in text[start.start():].split("\n"):
        recipient, sent = _RECIPIENT.match(line), _SENT_ON.search(line)
        if recipient:
            drafts.append(Draft(recipient=recipient.group(1), action="failed", date=date.strip()))
        elif sent:
            date = sent.group(1)
        elif drafts and line[:1] in (" ", "\t") and line.strip():
            drafts[-1].diagnostic = (drafts[-1].diagnostic + " " + line.strip()).strip()
    spam = mail.header("X-SPASIGN") == "NG"
    for draft in drafts:
        draft.reason = Reason.FILTERED if spam else fixed_reason(draft.diagnostic, _MESSAGES)
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822"))
