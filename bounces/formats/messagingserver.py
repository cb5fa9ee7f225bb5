"""Oracle (Sun, iPlanet) Communications Messaging Server notifications.

Heuristics after Sisimai::Lhost::MessagingServer (BSD-2-Clause). Recognised
by its MIME boundary ``Boundary_(ID_...)`` or the subject
"Delivery Notification: ...". The readable part lists each recipient as
indented ``Recipient address:`` / ``Reason:`` / ``Diagnostic code:`` /
``Remote system:`` lines; the delivery-status part that follows carries the
status, whose comment ("5.4.4 (Illegal host/domain name found)") is the only
explanation when the remote server said nothing.
"""

from __future__ import annotations

import re

from bounces.formats._lines import fillet, reading, sweep
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail, first_address

__all__ = ["NAME", "parse"]

NAME = "messagingserver"

_BOUNDARY = re.compile(r"^(?:Content-type:[ \t]*message/rfc822|Return-path:[ \t]*)", re.M | re.I)
_START = "This report relates to a message you sent with the following header fields:"
_ITEM = re.compile(r"^[ \t]+(Recipient address|Original address|Date|Reason|Diagnostic code|Remote system):"
                   r"[ \t]*(.*)$")
_STATUS = re.compile(r"^Status:[ \t]*(\d\.\d{1,3}\.\d{1,3})[ \t]*(?:\((.+)\))?", re.I)
_REPORTING = re.compile(r"^Reporting-MTA:[ ]*dns;[ ]*(\S+)", re.I)
_TYPED = re.compile(r"^([^ ;]+);(.*)$")
# The MTA's own words for an address whose domain part is not a valid host name.
_HOST_UNKNOWN = "Illegal host/domain name found"


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Messaging Server notification, else None."""
    if "Boundary_(ID_" not in str(mail.message.get("Content-Type", "")) and \
            not mail.subject.startswith("Delivery Notification: "):
        return None
    text, original = fillet(mail.body, _BOUNDARY)
    drafts: list[Draft] = []
    reporting = ""
    draft = Draft()
    for line in reading(text.split("\n"), _START):
        item = _ITEM.match(line)
        if item:
            draft = _item(item.group(1), item.group(2).strip(), draft, drafts)
            continue
        status = _STATUS.match(line)
        if status and drafts:
            # The delivery-status fields follow the readable part, in the same order.
            target = next((d for d in drafts if not d.status), drafts[-1])
            target.status = status.group(1)
            target.diagnostic = target.diagnostic or (status.group(2) or "")
        elif (reported := _REPORTING.match(line)) is not None:
            reporting = reported.group(1)
    for each in drafts:
        each.reporting_mta = reporting
        each.diagnostic = sweep(each.diagnostic)
        if _HOST_UNKNOWN in each.diagnostic:
            each.reason = Reason.HOSTUNKNOWN
    return FormatResult(drafts=drafts, original=original) if drafts else None


def _item(name: str, value: str, draft: Draft, drafts: list[Draft]) -> Draft:
    """Store one indented item; a new 'Recipient address' starts a new draft."""
    if name == "Recipient address":
        draft = Draft(recipient=first_address(value) or value)
        drafts.append(draft)
    elif not drafts:
        return draft  # the header fields of the original message come first
    elif name == "Original address":
        draft.alias = first_address(value)
    elif name == "Date":
        draft.date = value
    elif name == "Reason":
        draft.diagnostic = value
    elif name == "Diagnostic code":
        typed = _TYPED.match(value)
        draft.spec, draft.diagnostic = (typed.group(1).upper(), typed.group(2)) if typed else ("", value)
    elif name == "Remote system":
        typed = _TYPED.match(value)
        draft.remote_mta = (typed.group(2) if typed else value).strip().split(" ")[0]
    return draft
