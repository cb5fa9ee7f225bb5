"""Mail.Ru: an Exim bounce with a Russian preamble.

Heuristics after Sisimai::Lhost::MailRu (BSD-2-Clause). From "mailer-daemon@...mail.ru",
Message-ID ending in ".mail.ru>" or ".smailru.net>", an Exim subject ("Mail delivery
failed", "Mail failure", ...). The Russian text repeats the English one; reading starts at
Exim's "This message was created automatically by mail delivery software." Each failed
address stands indented on its own line, followed by Exim's explanation ("SMTP error from
remote mail server after RCPT TO:<...>: host mx.example.jp [192.0.2.1]: 550 ...");
the returned message follows "------ This is a copy of the message, including all the
headers. ------".
"""

from __future__ import annotations

import re

from bounces.formats._providers import command_in, fillet, fixed_reason, received_hosts
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail, find_addresses

__all__ = ["NAME", "parse"]

NAME = "mailru"

_FROM = re.compile(r"<?mailer-daemon@.*mail\.ru>?")
_MESSAGE_ID = re.compile(r"\.(?:mail\.ru|smailru\.net)>$")
_SUBJECT = re.compile(
    r"Mail delivery failed(?:: returning message to sender)?|Warning: message .+ delayed +"
    r"|Delivery Status Notification|Mail failure|Message frozen|error\(s\) in forwarding or filtering"
)
_BACKBONE = re.compile(r"^------ This is a copy of the message, including all the headers\. ------ *$", re.M)
_START = "This message was created automatically by mail delivery software."
_RECIPIENT = re.compile(r"^[ \t]+([^ \t]+@[^ \t]+\.[a-zA-Z]+)$")
_REMOTE = re.compile(r"host[ \t]+([^ \t]+)[ \t]\[.+\]:[ \t]")
# Exim's fixed texts (Sisimai::Lhost::MailRu $messagesof, from Exim's deliver.c and transports).
_MESSAGES: dict[Reason, tuple[str, ...]] = {
    Reason.EXPIRED: ("retry timeout exceeded", "No action is required on your part"),
    Reason.USERUNKNOWN: ("user not found",),
    Reason.HOSTUNKNOWN: ("all host address lookups failed permanently",
                         "all relevant MX records point to non-existent hosts", "Unrouteable address"),
    Reason.MAILBOXFULL: ("mailbox is full", "error: quota exceed"),
    Reason.NOTACCEPT: ("an MX or SRV record indicated no SMTP service",
                       "no host found for existing SMTP connection"),
    Reason.SYSTEMERROR: ("delivery to file forbidden", "delivery to pipe forbidden", "local delivery failed"),
    Reason.CONTENTERROR: ('Too many "Received" headers ',),
}


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Mail.Ru bounce, else None."""
    if not _FROM.search(mail.sender) or not _MESSAGE_ID.search(mail.header("Message-ID")):
        return None
    if not _SUBJECT.search(mail.subject):
        return None
    notice, original = fillet(mail.text, _BACKBONE)
    start = notice.find(_START)
    drafts: list[Draft] = []
    for line in notice[start:].split("\n") if start >= 0 else []:
        match = _RECIPIENT.match(line)
        if match:
            drafts.append(Draft(recipient=match.group(1), action="failed"))
        elif drafts and line.strip():
            drafts[-1].diagnostic += " " + line.strip()
    if not drafts:
        # No address in the text: Exim's X-Failed-Recipients header names them.
        failed = find_addresses(mail.header("X-Failed-Recipients"))
        drafts = [Draft(recipient=address, action="failed") for address in failed]
    received = mail.headers("Received")
    local = received_hosts(received[-1]) if received else []
    for draft in drafts:
        draft.diagnostic = draft.diagnostic.strip()
        remote = _REMOTE.search(draft.diagnostic)
        draft.remote_mta = remote.group(1) if remote else ""
        draft.reporting_mta = local[-1] if local else ""
        draft.command = command_in(draft.diagnostic)
        draft.spec = "SMTP" if draft.command else ""
        if draft.command not in ("MAIL", "HELO", "EHLO"):
            draft.reason = fixed_reason(draft.diagnostic, _MESSAGES)
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=original)
