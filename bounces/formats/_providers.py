"""Small text helpers shared by the provider format modules (Amazon, Google, Yahoo, GMX, ...).

Each helper ports one of the Sisimai utilities those modules lean on
(Sisimai::RFC5322->fillet, ->received, the ``$messagesof`` tables), BSD-2-Clause.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from bounces.formats._lines import line_search
from bounces.model import Draft, Reason
from rfc822 import Mail

__all__ = [
    "bracketed_reply_code",
    "command_in",
    "fillet",
    "fixed_reason",
    "has_received",
    "received_hosts",
    "refine_generic_status",
]

# The SMTP command an MTA names when it tells when the remote server refused:
# Exim "SMTP error from remote mail server after RCPT TO:<...>" / "after end of data",
# Postfix "(in reply to RCPT TO command)".
_COMMAND = re.compile(
    r"(?:\bafter\s+(?:end\s+of\s+)?|\bin\s+reply\s+to\s+(?:end\s+of\s+)?)"
    r"(RCPT|MAIL|DATA|HELO|EHLO|STARTTLS|AUTH|BDAT|QUIT)\b",
    re.I,
)
# "5.1.0 - Unknown address error 550-'5.2.2 <a@b>... Mailbox Full'": Amazon SES quotes the remote
# reply after its own generic status (lhost-amazonses-03).
_QUOTED_REPLY = re.compile(r"""(?:\b([245]\d\d)[ -])?["'](\d\.\d{1,3}\.\d{1,3}\b.+?)["']""")
_GENERIC = re.compile(r"^[45]\.[01]\.0$")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_HOST = re.compile(r"^\[?([A-Za-z0-9][A-Za-z0-9.:-]*[A-Za-z0-9])\]?$")


def fillet(text: str, pattern: re.Pattern[str]) -> tuple[str, str]:
    """Split ``text`` at the first match of ``pattern``: (notification, returned original).

    Sisimai::RFC5322->fillet: the returned message starts after the matched delimiter line.
    """
    match = line_search(pattern, text)
    if match is None:
        return text, ""
    return text[: match.start()], text[match.end():].lstrip("\n")


def fixed_reason(text: str, table: Mapping[Reason, Iterable[str]]) -> Reason | None:
    """The reason whose fixed message (a provider's own wording) appears in ``text``, or None."""
    lowered = text.lower()
    for reason, phrases in table.items():
        if any(phrase.lower() in lowered for phrase in phrases):
            return reason
    return None


def command_in(text: str) -> str:
    """The SMTP command the text says the remote server answered ('RCPT', 'DATA', ...), or ''."""
    match = _COMMAND.search(text)
    return match.group(1).upper() if match else ""


def refine_generic_status(draft: Draft) -> None:
    """Replace a generic x.0.0 / x.1.0 status with the one in the quoted remote reply.

    After Sisimai::Lhost::AmazonSES (and AmazonWorkMail, ReceivingSES): SES writes its own
    generic code first and quotes the receiving server's reply, which is the one that tells.
    The diagnostic becomes that quoted reply, since it is the remote server's own answer.
    """
    if not _GENERIC.match(draft.status):
        return
    match = _QUOTED_REPLY.search(draft.diagnostic)
    if match is None:
        return
    status = _STATUS.match(match.group(2))
    if status is None:
        return
    draft.status = status.group(1)
    reply = match.group(1) or ""
    draft.diagnostic = f"{reply} {match.group(2)}".strip()
    if reply:
        draft.reply_code = reply


def bracketed_reply_code(diagnostic: str) -> str:
    """The reply code inside angle brackets that ends a wrapped reply ('...<421 4.4.2 ...>'), or ''.

    Sisimai::Lhost::AmazonWorkMail: "554 4.4.7 Message expired: unable to deliver in 840
    minutes.<421 4.4.2 Connection timed out>" - the bracketed one is the last server's reply.
    """
    match = re.search(r"<([245]\d\d) [^<>]+>", diagnostic)
    return match.group(1) if match else ""


def has_received(mail: Mail, needle: str) -> bool:
    """True when any Received header contains ``needle`` (case-sensitive, like Sisimai's rindex)."""
    return any(needle in value for value in mail.headers("Received"))


def received_hosts(value: str) -> list[str]:
    """Host names in a Received header: the 'from' host (or its bracketed name) and the 'by' host.

    A reduced Sisimai::RFC5322->received: enough to name the remote and the local MTA.
    """
    hosts: list[str] = []
    tokens = value.replace("(", " ( ").replace(")", " ) ").split()
    for index, token in enumerate(tokens[:-1]):
        if token.lower() not in ("from", "by"):
            continue
        candidate = tokens[index + 1].strip(";")
        match = _HOST.match(candidate)
        if match and "." in match.group(1):
            hosts.append(match.group(1))
        elif token.lower() == "from":
            # "from unknown (HELO x.example.jp) ([192.0.2.1])": the name inside the parentheses.
            for follow in tokens[index + 2: index + 6]:
                inner = _HOST.match(follow.strip(";"))
                if inner and "." in inner.group(1) and follow.upper() != "HELO":
                    hosts.append(inner.group(1))
                    break
    return hosts
