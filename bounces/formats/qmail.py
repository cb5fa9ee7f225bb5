"""qmail (and netqmail, indimail, qmail-ldap) bounces: "Hi. This is the qmail-send program".

Heuristics after Sisimai::Lhost::qmail (BSD-2-Clause), with the Sisimai 5
reading of qmail's own texts. qmail writes no status fields: each failed
address is a line ``<user@domain>:`` followed by qmail-remote's or
qmail-local's text, and, for a remote failure, "Remote host said:" and the
remote reply. The texts qmail itself writes are fixed (qmail-remote.c,
qmail-local.c, qmail-send.c, error_str.c, the qmail-ldap patch), so they name
the SMTP command and, for local failures, the reason outright.
"""

from __future__ import annotations

import re

from bounces.formats._lines import fillet, reading, sweep
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "qmail"

# Received: (qmail 12345 invoked for bounce); 29 Apr 2009 12:34:56 -0000
_INVOKED = re.compile(r"\(qmail \d+ invoked (?:for bounce|from network)\)")
_START = re.compile(r"^Hi\. This is the qmail|^This is the mail delivery agent at|"
                    r"unable to deliver your message to the following addresses", re.I)
_BOUNDARY = re.compile(r"^--- (?:Below this line is a copy of the message|Enclosed is a copy of the message|"
                       r"Original message follows)", re.M)
_RECIPIENT = re.compile(r"^(?:To\s*:)?<(.+@.+)>:\s*$")
_REMOTE_SAID = "Remote host said:"
_REMOTE_END = re.compile(r"\s(?:Giving up on \S+|I'm not going to try again;.*)$")
# qmail-remote.c: the texts that tell which SMTP command failed.
_COMMANDS = (
    ("CONN", re.compile(r"(?:Error:)?Connected to \S+ but greeting failed\.")),
    ("EHLO", re.compile(r"(?:Error:)?Connected to \S+ but my name was rejected\.")),
    ("MAIL", re.compile(r"(?:Error:)?Connected to \S+ but sender was rejected\.")),
    ("RCPT", re.compile(r"(?:Error:)?\S+ does not like recipient\.")),
    ("DATA", re.compile(r"(?:Error:)?\S+ failed (?:on DATA command|after I sent the message)\.")),
)
# qmail-remote-fallback.patch
_PROGRESS = re.compile(r"Sorry, no SMTP connection got far enough; most progress was ([A-Z]{4}) ")
_REMOTE_HOST = re.compile(r"Giving up on (\S+[0-9a-zA-Z])\.?$|Connected to ([-0-9a-zA-Z.]+[0-9a-zA-Z]) |"
                          r"remote host ([-0-9a-zA-Z.]+[0-9a-zA-Z]) said:")
# qmail-send.c:922: "I'm not going to try again; this message has been in the queue too long."
_EXPIRED = "this message has been in the queue too long."
# Texts qmail (not the remote host) writes, and the reason each names.
_OWN_TEXTS: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    (Reason.USERUNKNOWN, ("no mailbox here by that name",)),         # qmail-local.c:589 (#5.1.1)
    (Reason.MAILBOXFULL, ("disk quota exceeded",)),                  # error_str.c:192 EDQUOT
    (Reason.MESGTOOBIG, ("Message size exceeds fixed maximum message size:",)),
    (Reason.HOSTUNKNOWN, ("Sorry, I couldn't find any host ",)),     # qmail-remote.c:68, 78 (#4.1.2)
    # Sisimai 5: no mail exchanger and no address at all is a domain that accepts no mail.
    (Reason.NOTACCEPT, ("Sorry, I couldn't find a mail exchanger or IP address",)),
    (Reason.SYSTEMFULL, ("Requested action not taken: mailbox unavailable (not enough free space)",)),
    (Reason.NETWORKERROR, ("Sorry, I wasn't able to establish an SMTP connection",
                           "Sorry. Although I'm listed as a best-preference MX or A for that host")),
    # qmail-ldap-1.03-20040101.patch
    (Reason.SUSPEND, ("Mailaddress is administratively disabled", "Mailaddress is administrativley disabled",
                      "account is locked")),  # vpopmail's vdelivermail
    (Reason.EXCEEDLIMIT, ("The message exeeded the maximum size the user accepts",)),
    (Reason.SYSTEMERROR, (
        "Automatic homedir creator crashed", "Illegal value in LDAP attribute",
        "LDAP attribute is not given but mandatory", "Timeout while performing search on LDAP server",
        "Too many results returned but needs to be unique", "Permanent error while executing qmail-forward",
        "Temporary error in automatic homedir creation", "Temporary error while executing qmail-forward",
        "Temporary failure in LDAP lookup", "Unable to contact LDAP server",
        "Unable to login into LDAP server, bad credentials", "bad interpreter: No such file or directory",
        "system error", "Unable to ")),
)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a qmail bounce, else None."""
    if mail.subject != "failure notice" and not any(_INVOKED.search(r) for r in mail.headers("Received")):
        return None
    text, original = fillet(mail.body, _BOUNDARY)
    drafts: list[Draft] = []
    texts: list[list[str]] = []
    lines = text.split("\n")
    # A qmail whose greeting was customised still lists "<address>:" blocks.
    for line in reading(lines, _START) or lines:
        if not line.strip():
            continue
        recipient = _RECIPIENT.match(line.strip())
        if recipient:
            drafts.append(Draft(recipient=recipient.group(1)))
            texts.append([])
        elif texts:
            texts[-1].append(line.strip())
    for draft, lines in zip(drafts, texts, strict=True):
        _fill(draft, sweep(" ".join(lines)))
    return FormatResult(drafts=drafts, original=original) if drafts else None


def _fill(draft: Draft, text: str) -> None:
    """Command, remote host, diagnostic and (for qmail's own texts) reason of one recipient."""
    for command, pattern in _COMMANDS:
        if pattern.search(text):
            draft.command = command
            break
    else:
        progress = _PROGRESS.search(text)
        draft.command = progress.group(1) if progress else ""
    host = _REMOTE_HOST.search(text)
    if host:
        draft.remote_mta = next(g for g in host.groups() if g)
    said = text.find(_REMOTE_SAID)
    if said >= 0:
        # The remote reply is the diagnostic; qmail's own words around it only
        # name the command (kept above).
        draft.diagnostic = _REMOTE_END.sub("", text[said + len(_REMOTE_SAID):]).strip()
        return
    # qmail-send's "I'm not going to try again; ..." says it gave up, not why:
    # when qmail wrote a cause before it, the cause is the diagnostic.
    cause = text.split("I'm not going to try again;")[0].strip()
    draft.diagnostic = cause or text
    if draft.command in ("", "RCPT", "DATA"):
        for reason, phrases in _OWN_TEXTS:
            if any(p in cause for p in phrases):
                draft.reason = reason
                return
    if _EXPIRED in text and not draft.command:
        draft.reason = Reason.EXPIRED
