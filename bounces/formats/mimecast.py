"""Mimecast "Email Delivery Failure" alerts.

Sisimai 4.25 has no Mimecast lhost module (Sisimai 5 added one); written from the
structure of the corpus sample (lhost-mimecast-01), a Mimecast alert sent as
plain text::

    This is an automated alert notification. Please do not reply.

    An email that you attempted to send to the following address could not be delivered:
    -- rcpt@example.org

    The problem appears to be :
    -- Recipient email address is possibly incorrect

    Additional information follows :
    -- 5.4.1 Recipient address rejected: Access denied. [...]

Recognised by the ``X-Mimecast-*`` / ``X-MC-System`` headers or a Mimecast
Message-ID, with that body. The remote reply ("Additional information") is the
diagnostic, after Mimecast's own summary of the problem.
"""

from __future__ import annotations

import re

from bounces.formats._text import find_command, squeeze
from bounces.model import Draft, FormatResult
from rfc822 import Mail, first_address

__all__ = ["NAME", "parse"]

NAME = "mimecast"

_START = re.compile(r"could not be delivered:\s*$", re.M)
_SECTION = re.compile(r"^(?:The problem appears to be|Additional information follows)\s*:\s*$", re.M)


def parse(mail: Mail) -> FormatResult | None:
    """A draft from a Mimecast delivery-failure alert, else None."""
    if not (mail.header("X-MC-System") or mail.header("X-Mimecast-Originator")
            or "mimecast" in mail.header("Message-ID").lower()):
        return None
    text = mail.text
    start = _START.search(text)
    if start is None or "This is an automated alert notification" not in text[: start.start()]:
        return None
    items = _dashed_items(text[start.end():])
    if not items or "@" not in items[0]:
        return None
    problem = " ".join(items[1:2])
    details = " ".join(items[2:3])
    diagnostic = squeeze(f"{details} ({problem})" if details and problem else details or problem)
    draft = Draft(recipient=first_address(items[0]), action="failed", diagnostic=diagnostic,
                  command=find_command(details))
    return FormatResult(drafts=[draft])


def _dashed_items(text: str) -> list[str]:
    """The '-- ' items of the alert, continuation lines joined, in order."""
    items: list[str] = []
    current: list[str] | None = None
    for line in text.split("\n"):
        if line.startswith("-- "):
            if current is not None:
                items.append(" ".join(current))
            current = [line[3:].strip()]
        elif current is not None and line.strip() and not _SECTION.match(line):
            current.append(line.strip())
        elif current is not None:
            items.append(" ".join(current))
            current = None
    if current is not None:
        items.append(" ".join(current))
    return items
