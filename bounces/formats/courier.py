"""Courier mail server delivery status notifications.

Heuristics after Sisimai::Lhost::Courier (BSD-2-Clause). Recognised by From
"Courier mail server at ...", the subjects "NOTICE: mail delivery status." /
"WARNING: delayed mail.", or a ``<courier.XXXXXXXX.XXXXXXXX@host>`` Message-ID.
The text part (after "UNDELIVERABLE MAIL" or "DELAYS IN DELIVERING YOUR
MESSAGE") gives per recipient::

    <rcpt@example.jp>:
        mx.example.jp [192.0.2.45]:
    >>> RCPT TO:<rcpt@example.jp>
    <<< 550 Unknown user rcpt@example.jp

and the message/delivery-status part carries the fields. The ">>>" line names
the SMTP command. Courier's own texts "No such domain.", "This domain's DNS
violates RFC 1035." and "DNS lookup failed." name the reason (Sisimai's
$messagesof).
"""

from __future__ import annotations

import re

from bounces.formats._text import dsn_drafts, squeeze
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "courier"

_SUBJECT = re.compile(r"NOTICE: mail delivery status\.|WARNING: delayed mail\.")
_MESSAGE_ID = re.compile(r"^<courier\.[0-9A-F]+\.")
_START = re.compile(r"^\s*(?:DELAYS IN DELIVERING YOUR MESSAGE|UNDELIVERABLE MAIL)\s*$", re.M)
_RECIPIENT = re.compile(r"^<([^<>\s]+@[^<>\s]+)>:\s*$")
_OWN_TEXTS = (
    (Reason.HOSTUNKNOWN, "No such domain."),
    (Reason.SYSTEMERROR, "This domain's DNS violates RFC 1035."),
    (Reason.NETWORKERROR, "DNS lookup failed."),
)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Courier notice, else None."""
    if not ("courier mail server at " in mail.sender or _SUBJECT.search(mail.subject)
            or _MESSAGE_ID.match(mail.header("Message-ID"))):
        return None
    start = _START.search(mail.text)
    if start is None:
        return None
    delayed = "DELAYS IN DELIVERING" in start.group(0)
    paragraphs = _paragraphs(mail.text[start.end():])
    drafts = dsn_drafts(mail.section("message/delivery-status"))
    if not drafts:
        drafts = [Draft(recipient=r, diagnostic=p[1]) for r, p in paragraphs.items()]
    for draft in drafts:
        command, reply = paragraphs.get(draft.recipient.lower(), ("", ""))
        draft.command = command
        draft.diagnostic = draft.diagnostic or reply
        draft.action = draft.action or ("delayed" if delayed else "failed")
        for reason, text in _OWN_TEXTS:
            if text in draft.diagnostic:
                draft.reason = reason
                break
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822")) if drafts else None


def _paragraphs(text: str) -> dict[str, tuple[str, str]]:
    """recipient -> (the '>>>' command, the '<<<' reply or the explanation)."""
    found: dict[str, tuple[str, str]] = {}
    recipient, command = "", ""
    lines: list[str] = []
    for line in [*text.split("\n"), "<end>:"]:
        match = _RECIPIENT.match(line)
        if match or line.startswith("-----") or line == "<end>:":
            if recipient:
                found[recipient] = (command, squeeze(" ".join(lines)))
            recipient, command, lines = (match.group(1).lower() if match else ""), "", []
            continue
        if not recipient or not line.strip():
            continue
        if line.startswith(">>> "):
            command = command or line[4:].split(" ", 1)[0].split(":", 1)[0].upper()
        elif line.startswith("<<< "):
            lines.append(line[4:])
        elif not line.rstrip().endswith("]:"):
            lines.append(line)
    return found
