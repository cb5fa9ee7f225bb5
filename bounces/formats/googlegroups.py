"""Google Groups: the notice that a post to a group was refused.

Heuristics after Sisimai::Lhost::GoogleGroups (BSD-2-Clause). From
"<mailer-daemon@googlemail.com>", Subject "Delivery Status Notification", with
``X-Failed-Recipients`` (the group address) and ``X-Google-Smtp-Source`` headers. The
body says "the group you tried to contact (...) may not exist, or you may not have
permission to post messages to the group", with a bulleted list of possible causes: the
four-bullet list is the permission refusal (``rejected``), anything else says too little
(``onhold``).
"""

from __future__ import annotations

import re

from bounces.formats._providers import fillet, received_hosts
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail, find_addresses

__all__ = ["NAME", "parse"]

NAME = "googlegroups"

_BACKBONE = re.compile(r"^-----[ ]Original[ ]message[ ]-----[ ]*$", re.M)
_GROUPS = re.compile(r"groups\.google\.com|Google Groups", re.I)
_BULLET = re.compile(r"^[ ]?\*[ ]?", re.M)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts for the refused group addresses, else None."""
    if "<mailer-daemon@googlemail.com>" not in mail.sender:
        return None
    if "Delivery Status Notification" not in mail.subject:
        return None
    failed = mail.header("X-Failed-Recipients")
    if not failed or not mail.header("X-Google-Smtp-Source"):
        return None
    notice, original = fillet(mail.text, _BACKBONE)
    # Gmail's RFC 3464 reports carry the same headers (rfc3464-57, rhost-gsuite-08): a Groups
    # notice is plain text that points to the Groups help centre.
    if mail.section("message/delivery-status") or not _GROUPS.search(notice):
        return None
    reason = Reason.REJECTED if len(_BULLET.findall(notice)) == 4 else Reason.ONHOLD
    # After the greeting, the refusal and its causes explain; the rest is boilerplate.
    paragraphs = [p for p in notice.strip().split("\n\n") if p.strip()]
    diagnostic = " ".join(" ".join(paragraphs[1:3] if len(paragraphs) > 1 else paragraphs).split())
    received = mail.headers("Received")
    hosts = received_hosts(received[0]) if received else []
    drafts = [
        Draft(recipient=address, action="failed", diagnostic=diagnostic, reason=reason,
              remote_mta=hosts[0] if hosts else "")
        for address in find_addresses(failed)
    ]
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=original)
