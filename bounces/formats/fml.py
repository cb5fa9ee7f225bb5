"""fml (Japanese mailing-list manager) error notices to the list admin.

Heuristics after Sisimai::Lhost::FML (BSD-2-Clause). Recognised by an
X-MLServer header, a From "...-admin@" and a Message-ID "<digits.FML...@...>".
fml explains in one sentence naming the address ("... <user@domain>.") why it
refused or dropped a post; its fixed texts (and the subject, "Loop Alert:",
"NOT MEMBER article from ...") say the reason outright. The post follows
"Original mail as follows:".
"""

from __future__ import annotations

import re

from bounces.formats._lines import fillet, sweep
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "fml"

_FROM = re.compile(r".+-admin@.+")
_MESSAGE_ID = re.compile(r"^<\d+\.FML.+@.+>$")
_BOUNDARY = re.compile(r"^Original mail as follows:", re.M)
_RECIPIENT = re.compile(r"<([^ ]+?@[^ ]+?)>\.$")
# fml's texts in the notice (Sisimai $errortable) and in its subject ($errortitle).
_TEXTS = (
    (Reason.REJECTED, re.compile(
        r"(?:Ignored )*NOT MEMBER article from |"
        r"reject (?:mail from .+@.+|since .+ header may cause mail loop|spammers:)|"
        r"You are not a member of this mailing list")),
    (Reason.SYSTEMERROR, re.compile(
        r"Duplicated Message-ID|fml .+ has detected a loop condition so that|Loop Back Warning:")),
    (Reason.SECURITYERROR, re.compile(r"Security alert:")),
)
_TITLES = (
    (Reason.REJECTED, re.compile(
        r"(?:Ignored )*NOT MEMBER article from |reject mail (?:.+:|from) ,|"
        r"Spam mail from a spammer is rejected|You .+ are not member")),
    (Reason.SYSTEMERROR, re.compile(
        r"fml system error message|Loop Alert: |Loop Back Warning: |WARNING: UNIX FROM Loop")),
    (Reason.SECURITYERROR, re.compile(r"Security Alert")),
)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an fml error notice, else None."""
    if not mail.has_header("X-MLServer") or not _FROM.search(mail.header("From")):
        return None
    if not _MESSAGE_ID.match(mail.header("Message-ID")):
        return None
    text, original = fillet(mail.body, _BOUNDARY)
    drafts: list[Draft] = []
    for line in text.split("\n"):
        if not line:
            continue
        recipient = _RECIPIENT.search(line)
        if recipient:
            drafts.append(Draft(recipient=recipient.group(1), diagnostic=line))
        elif drafts:
            drafts[-1].diagnostic += " " + line
    for draft in drafts:
        draft.diagnostic = sweep(draft.diagnostic)
        draft.reason = _first(_TEXTS, draft.diagnostic) or _first(_TITLES, mail.subject)
    return FormatResult(drafts=drafts, original=original) if drafts else None


def _first(table: tuple[tuple[Reason, re.Pattern[str]], ...], text: str) -> Reason | None:
    return next((reason for reason, pattern in table if pattern.search(text)), None)
