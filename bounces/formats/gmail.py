"""Gmail's own plain-text delivery notices ("Delivery to the following recipient failed permanently").

Heuristics after Sisimai::Lhost::Gmail (BSD-2-Clause). From "Mail Delivery Subsystem
<mailer-daemon@googlemail.com>", Subject "Delivery Status Notification (...)", a text/plain
body: "Delivery to the following recipient(s) failed permanently:" (or "has been
delayed:"), the indented addresses, "Technical details of permanent|temporary failure:" and
the remote server's reply, ending with a "(state N)" code of Google's outbound SMTP client,
then "----- Original message -----". Newer Gmail bounces are RFC 3464 reports and are read
by the rfc3464 module.
"""

from __future__ import annotations

import re
from dataclasses import replace

from bounces.formats._providers import fillet, fixed_reason
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "gmail"

_BACKBONE = re.compile(r"^[ ]*-----[ ](?:Original[ ]message|Message[ ]header[ ]follows)[ ]-----[ ]*$", re.M)
_START = "Delivery to the following recipient"
_DETAILS = re.compile(r"Technical details of (?:permanent|temporary) failure:")
_RETURNED = "The error that the other server returned was:"
_RECIPIENT = re.compile(r"^[ \t]+<?([^ \t<>]+@[^ \t<>]+?)>?[ \t]*$")
_STATE = re.compile(r"\(state (\d+)\)\.")
_REMOTE = re.compile(r"\sby\s+(\S+?)\.?\s+\[(\d{1,3}(?:\.\d{1,3}){3})\]\.")
_SPECIFIC = re.compile(r"\b[45]\.[1-7]\.[1-9]\b")
# "(state N)": the stage of Google's SMTP client when the remote server refused
# (Sisimai::Lhost::Gmail $statetable, from Gmail help forum threads).
_STATES: dict[str, tuple[str, Reason]] = {
    "6": ("MAIL", Reason.SYSTEMERROR),    # 500 Remote server does not support TLS
    "8": ("AUTH", Reason.SYSTEMERROR),    # 535 SMTP AUTH failed with the remote server
    "9": ("AUTH", Reason.SYSTEMERROR),    # 454 TLS missing certificate
    "12": ("AUTH", Reason.NORELAYING),    # 500 Remote server does not support SMTP Authenticated Relay
    "13": ("EHLO", Reason.BLOCKED),       # 550 5.7.1 ... Access denied
    "14": ("RCPT", Reason.USERUNKNOWN),   # 550 5.1.1 ... User Unknown
    "15": ("DATA", Reason.FILTERED),      # 550 5.7.1 SPF unauthorized mail is prohibited
    "17": ("DATA", Reason.FILTERED),      # 550 <...> No such user here
    "18": ("DATA", Reason.FILTERED),      # 550 Unknown user
}
# Gmail's own fixed texts when there is no (state N).
_MESSAGES: dict[Reason, tuple[str, ...]] = {
    Reason.EXPIRED: (
        "DNS Error: Could not contact DNS servers",
        "Delivery to the following recipient has been delayed",
        "The recipient server did not accept our requests to connect",
    ),
    Reason.HOSTUNKNOWN: ("DNS Error: Domain name not found",
                         "DNS Error: DNS server returned answer with no data"),
    Reason.MAILBOXFULL: ("Storage quota exceeded",),  # a Gmail mailbox over its quota
}


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Gmail plain-text notice, else None."""
    if "<mailer-daemon@googlemail.com>" not in mail.sender:
        return None
    if "Delivery Status Notification" not in mail.subject:
        return None
    notice, original = fillet(mail.text, _BACKBONE)
    start = notice.find(_START)
    if start < 0:
        return None
    notice = notice[start:]
    recipients = [m.group(1) for m in map(_RECIPIENT.match, notice.split("\n")) if m and "@" in m.group(1)]
    if not recipients:
        return None
    draft = _details(notice)
    drafts = [replace(draft, recipient=address) for address in dict.fromkeys(recipients)]
    return FormatResult(drafts=drafts, original=original or mail.section("message/rfc822"))


def _details(notice: str) -> Draft:
    """What the notice says about every recipient: the reply, the command, the reason."""
    found = _DETAILS.search(notice)
    details = " ".join(notice[found.end():].split()) if found else ""
    diagnostic = details.split(_RETURNED, 1)[1].strip() if _RETURNED in details else details
    draft = Draft(diagnostic=diagnostic, spec="SMTP",
                  action="delayed" if "has been delayed" in notice else "failed")
    remote = _REMOTE.search(details)
    if remote:
        host = remote.group(1)
        draft.remote_mta = host if re.search(r"[-0-9a-zA-Z]+\.[a-zA-Z]+$", host) else remote.group(2)
    state = _STATE.search(details)
    reason: Reason | None
    if state and state.group(1) in _STATES:
        draft.command, reason = _STATES[state.group(1)]
    else:
        reason = fixed_reason(" ".join(notice.split()), _MESSAGES)
    # Sisimai: a specific status in the reply overrides the reason the state or text gave.
    if not _SPECIFIC.search(diagnostic):
        draft.reason = reason
    return draft
