"""DigitalArts m-FILTER's "failure notice" (Japanese).

Heuristics after Sisimai::Lhost::mFILTER (BSD-2-Clause). ``X-Mailer: m-FILTER`` and
Subject "failure notice". After a Japanese preamble the failed address stands alone on a
line, then "-------server message" with the remote reply, "-------SMTP command" with the
command, and the original after "-------original message" (or "-------original mail info").
"""

from __future__ import annotations

import re

from bounces.formats._providers import fillet, received_hosts
from bounces.model import Draft, FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "mfilter"

_BACKBONE = re.compile(r"^-------original[ ](?:message|mail[ ]info)[^\n]*$", re.M)
_ADDRESS = re.compile(r"^([^ ]+@[^ ]+\.[a-zA-Z]+)$")
_SERVER = "-------server message"
_COMMAND = "-------SMTP command"


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an m-FILTER failure notice, else None."""
    if mail.header("X-Mailer") != "m-FILTER" or mail.subject != "failure notice":
        return None
    notice, original = fillet(mail.text, _BACKBONE)
    drafts: list[Draft] = []
    section = ""
    for raw in notice.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if _ADDRESS.match(line) and section == "":
            drafts.append(Draft(recipient=line, action="failed", spec="SMTP"))
        elif line in (_SERVER, _COMMAND):
            section = line
        elif not drafts or line.startswith("-"):
            continue
        elif section == _SERVER:
            drafts[-1].diagnostic = (drafts[-1].diagnostic + " " + line).strip()
        elif section == _COMMAND and re.match(r"^[A-Z]{4}", line) and not drafts[-1].command:
            drafts[-1].command = line[:4]
    received = mail.headers("Received")
    local = received_hosts(received[0]) if received else []
    # The last Received is m-FILTER's own ("from 127.0.0.1 ... by m-FILTER"): a dotted host
    # other than the loopback there is the remote one.
    last = received_hosts(received[-1]) if received else []
    remote = [host for host in last if "." in host and not host.startswith("127.")]
    for draft in drafts:
        draft.reporting_mta = local[0] if local else ""
        draft.remote_mta = remote[-1] if remote else ""
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=original)
