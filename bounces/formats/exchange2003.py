"""Microsoft Exchange Server 5.5 / 2000 / 2003 non-delivery reports.

Heuristics after Sisimai::Lhost::Exchange2003 (BSD-2-Clause). Recognised by
X-MS-Embedded-Report, an X-Mailer "Internet Mail Service (...)" / "Microsoft
Exchange Server Internet Mail Connector", X-MimeOLE "Produced By Microsoft
Exchange", or a Received "with Internet Mail Service (". The text says "Your
message ... did not reach the following recipient(s):", then per address
``user@domain on <date>``, an explanation, and an ``MSEXCH:...`` line whose
hexadecimal code in parentheses names the error (Exchange's own error table).
"""

from __future__ import annotations

import re

from bounces.formats._lines import fillet, reading, sweep
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "exchange2003"

_MAILERS = ("Internet Mail Service (", "Microsoft Exchange Server Internet Mail Connector")
_BOUNDARY = re.compile(r"^Content-Type: message/rfc822", re.M)
_RECIPIENT = re.compile(r"^[ \t]*([^ ]+@[^ ]+) on[ \t]*.*$|^[ \t]*.+(?:SMTP|smtp)=([^ ]+@[^ ]+) on[ \t]*.*$")
_MSEXCH = re.compile(r"^[ \t]+(MSEXCH:.+)$")
_CODE = re.compile(r"\(([0-9A-F]{8})\)[ \t]*(.*)$")
# Exchange's error codes (Sisimai $errorcodes); 000B099C, 000B09AA and 000B09B6 wrap the remote
# server's text ("Host Unknown", "Unable to relay for", ...), so the classifier reads that instead.
_CODES = {
    "000C05A6": Reason.USERUNKNOWN,    # Unknown Recipient
    "00010256": Reason.SYSTEMERROR,    # Too many recipients
    "000D06B5": Reason.SYSTEMERROR,    # No proxy for recipient (non-SMTP mail?)
    "00120270": Reason.NETWORKERROR,   # Too Many Hops
    "00050311": Reason.CONTENTERROR,   # Conversion to Internet format failed
    "000502CC": Reason.CONTENTERROR,   # Conversion to Internet format failed
    "000B0981": Reason.SECURITYERROR,  # 502 Server does not support AUTH
    "000C0595": Reason.FILTERED,       # Ambiguous Recipient
}
_CONNECTION = re.compile(r"^[ \t]+(To|Subject|Sent):[ \t]+(.+)$")


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an Exchange 2003 (or older) NDR, else None."""
    if not _is_exchange(mail):
        return None
    text, original = fillet(mail.body, _BOUNDARY)
    drafts: list[Draft] = []
    texts: list[list[str]] = []
    state: list[int] = []  # per recipient: 0 reading, 1 after the MSEXCH line, 2 done
    quoted: dict[str, str] = {}
    for line in reading(text.split("\n"), re.compile(r"^Your message")):
        found = _RECIPIENT.match(line)
        if found:
            drafts.append(Draft(recipient=found.group(1) or found.group(2)))
            texts.append([])
            state.append(0)
        elif not drafts:
            connection = _CONNECTION.match(line)
            if connection and connection.group(1) not in quoted:
                quoted[connection.group(1)] = connection.group(2).strip()
        elif line.strip() and state[-1] < 2:
            if not line.strip().startswith(("The MTS-ID of the original message", ";")):
                texts[-1].append(line.strip())  # the MTS-ID is an X.400 trace, not an error
            # The MSEXCH line may wrap once; after that Exchange writes no more about this recipient.
            state[-1] = 2 if state[-1] == 1 else int(bool(_MSEXCH.match(line)))
    for draft, lines in zip(drafts, texts, strict=True):
        draft.diagnostic = sweep(" ".join(lines))
        code = _CODE.search(draft.diagnostic)
        if code and code.group(1) in _CODES:
            draft.reason = _CODES[code.group(1)]
        draft.date = quoted.get("Sent", "")
    if not drafts:
        return None
    if not original and quoted:
        # No returned message: what the NDR quotes of it is all there is.
        original = "".join(f"{k}: {quoted[k]}\n" for k in ("To", "Subject") if k in quoted)
    return FormatResult(drafts=drafts, original=original)


def _is_exchange(mail: Mail) -> bool:
    if mail.has_header("X-MS-Embedded-Report"):
        return True
    if mail.header("X-Mailer").startswith(_MAILERS):
        return True
    if mail.header("X-MimeOLE").startswith("Produced By Microsoft Exchange"):
        return True
    return any(" with Internet Mail Service (" in r for r in mail.headers("Received"))
