"""DragonFly Mail Agent (dma) bounce messages.

Sisimai 4.25 has no module for dma (Sisimai 5 added Sisimai::Lhost::DragonFly);
this one is written from dma's ``mail.c`` (``bounce()``) and ``net.c`` texts as
the corpus samples show them (lhost-dragonfly-*):

    This is the DragonFly Mail Agent v0.13 at df.example.jp.

    There was an error delivering your mail to <rcpt@example.org>.

    mx.example.org [192.0.2.25] did not like our RCPT TO:
    550 5.1.1 <rcpt@example.org>: Recipient address rejected: User unknown

    Message headers follow.        (or "Original message follows.")

One recipient per bounce. "did not like our <command>" names the SMTP command
(net.c: "RCPT TO", "MAIL FROM", "DATA", "final DATA", "EHLO"...); "Could not
deliver for the last N seconds. Giving up." (expired) and "DNS lookup failure: host
X not found" (hostunknown) are dma's own texts and name the reason.
"""

from __future__ import annotations

import re

from bounces.formats._text import squeeze
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "dragonfly"

_START = re.compile(r"^This is the DragonFly Mail Agent\b.*$", re.M)
_RECIPIENT = re.compile(r"^There was an error delivering your mail to <([^<>\s]+)>\.?[ \t]*$", re.M)
_END = re.compile(r"^(?:Message headers follow|Original message follows)\.?[ \t]*$", re.M)
_DID_NOT_LIKE = re.compile(r"^(\S+) \[[^\]]*\] did not like our (final )?([A-Z]{4})[^:\n]*:[ \t]*$", re.M)
_EXPIRED = re.compile(r"Could not deliver for the last \d+ seconds\. Giving up\.")
_NO_HOST = re.compile(r"DNS lookup failure: host \S+ not found")


def parse(mail: Mail) -> FormatResult | None:
    """A draft from a dma bounce, else None."""
    text = mail.text
    start = _START.search(text[:2000])
    if start is None:
        return None
    recipient = _RECIPIENT.search(text, start.end())
    if recipient is None:
        return None
    end = _END.search(text, recipient.end())
    explanation = text[recipient.end(): end.start() if end else len(text)].strip()
    original = text[end.end():].lstrip("\n") if end else ""
    draft = Draft(recipient=recipient.group(1), action="failed", spec="SMTP",
                  reporting_mta=start.group(0).rsplit(" at ", 1)[-1].rstrip(". \t"))
    refused = _DID_NOT_LIKE.search(explanation)
    if refused:
        draft.remote_mta = refused.group(1)
        draft.command = refused.group(3)
        draft.diagnostic = squeeze(explanation[refused.end():])
    else:
        draft.diagnostic = squeeze(explanation)
        if _EXPIRED.search(explanation):
            draft.reason = Reason.EXPIRED
        elif _NO_HOST.search(explanation):
            draft.reason = Reason.HOSTUNKNOWN
    return FormatResult(drafts=[draft], original=original)
