"""Line-scanning helpers shared by the MTA format modules of this package (private).

Bounce texts of different MTAs share a few habits: the returned original
follows a separator line, the SMTP command that failed is named in a fixed
phrase, and a DSN-like field block may sit in the text. The phrases below are
quoted from the MTA sources or samples that produce them (each is cited).
"""

from __future__ import annotations

import re

from bounces.dsn import draft_from_fields, parse_delivery_status
from bounces.formats._lines import line_search
from bounces.model import Draft

__all__ = [
    "cut_original",
    "dsn_drafts",
    "find_command",
    "squeeze",
]

# The flattened body marks every returned original with this line (rfc822.Mail.body);
# a forwarded bounce whose MIME structure broke keeps the raw part header instead.
_ORIGINAL_MARK = re.compile(r"^Content-Type:[ \t]*(?:message/rfc822|text/rfc822-headers)\b.*$", re.M | re.I)

# The SMTP command that the remote reply answered, as MTAs name it.
_COMMANDS = (
    # Postfix smtp_proto.c: "(in reply to RCPT TO command)", "(in reply to end of DATA command)".
    re.compile(r"in reply to (?:end of )?([A-Z]{4})\b", re.I),
    # Exim transports/smtp.c: "SMTP error from remote mail server after RCPT TO:<...>:",
    # "... after pipelined MAIL FROM:<...>", "... after end of data", "... after initial
    # connection"; LMTP likewise; "Remote host X closed connection in response to end of data".
    re.compile(r"(?:SMTP|LMTP) error from remote (?:mail server|mailer) after (?:pipelined )?(?:end of )?"
               r"([A-Za-z]{4})\b"),
    re.compile(r"LMTP error after (?:end of )?([A-Za-z]{4})\b"),
    re.compile(r"closed connection in response to (?:end of )?([A-Za-z]{4})\b"),
    # Sendmail/others: "... while talking to ...: >>> RCPT To:<...>".
    re.compile(r">>> ([A-Z]{4})\b"),
)
# Postfix: "host X refused to talk to me: 421 ..." is the greeting (Sisimai::Lhost::Postfix -> HELO);
# Exim: "SMTP error from remote mail server after initial connection" is the greeting too.
_GREETING = re.compile(r"refused to talk to me:|after initial connection\b|in reply to initial greeting",
                       re.I)
# Postfix smtpd_check.c answers "Recipient address rejected: ..." only to RCPT TO, and
# relays quote it without naming the command (Mimecast alerts, OpenSMTPD notices).
_RECIPIENT_REJECTED = re.compile(r"\bRecipient address rejected:", re.I)
_KNOWN = frozenset({"HELO", "EHLO", "MAIL", "RCPT", "DATA", "QUIT", "RSET", "BDAT", "STARTTLS", "AUTH"})


def squeeze(text: str) -> str:
    """Whitespace runs (line breaks included) collapsed to one space, ends stripped."""
    return " ".join(text.split())


def cut_original(body: str, *separators: re.Pattern[str]) -> tuple[str, str]:
    """Split a flattened body into (the report, the returned original).

    The original starts at the first ``Content-Type: message/rfc822`` line or at
    the first match of one of ``separators`` (an MTA's own separator line).
    """
    found = (_original_mark(body), *(line_search(p, body) for p in separators))
    cuts = [m for m in found if m is not None]
    if not cuts:
        return body, ""
    first = min(cuts, key=lambda m: m.start())
    return body[: first.start()], body[first.end():].lstrip("\n")


def _original_mark(body: str) -> re.Match[str] | None:
    """``_ORIGINAL_MARK.search(body)``; in ASCII text, the candidate lines are found with str.find
    first (a case-insensitive pattern that starts with ``^`` makes the engine try every position).
    Only ASCII: there, lower() and the pattern's IGNORECASE agree on every letter."""
    if not body.isascii():
        return _ORIGINAL_MARK.search(body)
    lowered = body.lower()
    at = lowered.find("content-type:")
    while at >= 0:
        if at == 0 or body[at - 1] == "\n":
            match = _ORIGINAL_MARK.match(body, at)
            if match is not None:
                return match
        at = lowered.find("content-type:", at + 1)
    return None


def find_command(text: str) -> str:
    """The SMTP command that a diagnostic text says the reply answered, or ''."""
    for pattern in _COMMANDS:
        match = pattern.search(text)
        if match:
            command = match.group(1).upper()
            if command == "STAR":
                return "STARTTLS"
            if command in _KNOWN:
                return command
    if _GREETING.search(text):
        return "CONN" if "initial connection" in text else "HELO"
    if _RECIPIENT_REJECTED.search(text):
        return "RCPT"
    return ""


def dsn_drafts(text: str) -> list[Draft]:
    """Drafts from RFC 3464 field blocks found in ``text`` (a report part or loose text)."""
    if "recipient" not in text.lower():
        return []
    report = parse_delivery_status(text)
    return [draft_from_fields(fields, report.message) for fields in report.recipients
            if fields.get("final-recipient") or fields.get("original-recipient")]
