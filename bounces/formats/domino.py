"""IBM (Lotus) Domino bounces: "DELIVERY FAILURE: ...".

Heuristics after Sisimai::Lhost::Domino (BSD-2-Clause). The readable part
says "Your message ... was not delivered to:", the address indented two
spaces, "because:" and the reason, in the server's language (English,
French, Japanese...). A delivery-status part usually follows; its fields
fill what the text does not say. Domino's fixed texts name the reason.
"""

from __future__ import annotations

import re

from bounces.formats._lines import ORIGINAL_MARKER, dsn_field, fillet, reading, sweep
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail, first_address

__all__ = ["NAME", "parse"]

NAME = "domino"

_SUBJECT = re.compile(r"^DELIVERY[ _]FAILURE:")
_ADDRESS = re.compile(r"^  ([^ ]+@[^ ]+)$")
_QUOTED_SUBJECT = re.compile(r"^  Subject: (.+)$")
# Domino's texts (Sisimai $messagesof): "user not listed in the Domino Directory" in en, fr, ja.
_TEXTS = (
    (Reason.USERUNKNOWN, ("not listed in Domino Directory", "not listed in public Name & Address Book",
                          "non répertorié dans l'annuaire Domino", "Domino ディレクトリには見つかりません")),
    (Reason.FILTERED, ("Cannot route mail to user",)),
    (Reason.SYSTEMERROR, ("Several matches found in Domino Directory",)),
)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from a Domino bounce, else None."""
    if not _SUBJECT.match(mail.subject):
        return None
    text, original = fillet(mail.body, ORIGINAL_MARKER)
    drafts: list[Draft] = []
    subject = ""
    because = False
    fields = Draft()
    for line in reading(text.split("\n"), re.compile(r"^Your message")):
        if not line:
            continue
        if line == "was not delivered to:":
            drafts.append(Draft())
        elif drafts and (address := _ADDRESS.match(line)) and not drafts[-1].recipient:
            drafts[-1].recipient = address.group(1)
        elif line == "because:":
            because = True
        elif because and drafts:
            drafts[-1].diagnostic, because = line, False
        elif found := _QUOTED_SUBJECT.match(line):
            subject = found.group(1)
        elif (field := dsn_field(line)) is not None:
            if field.name.endswith("recipient") and drafts and not drafts[-1].recipient:
                drafts[-1].recipient = first_address(field.value)
            elif field.name == "diagnostic-code":
                fields.spec = fields.spec or field.subtype.upper()
                fields.diagnostic = fields.diagnostic or field.value
            else:
                field.apply(fields)
    drafts = [d for d in drafts if d.recipient]
    for draft in drafts:
        draft.diagnostic = sweep(draft.diagnostic or fields.diagnostic)
        draft.status, draft.action, draft.spec = fields.status, fields.action, fields.spec
        draft.reporting_mta, draft.remote_mta = fields.reporting_mta, fields.remote_mta
        draft.date = fields.date
        draft.reason = next((r for r, texts in _TEXTS if any(t in draft.diagnostic for t in texts)), None)
    if drafts and not original and subject:
        original = f"Subject: {subject}\n"
    return FormatResult(drafts=drafts, original=original) if drafts else None
