"""Microsoft Office 365 / Exchange Online non-delivery reports.

Heuristics after Sisimai::Lhost::Office365 (BSD-2-Clause). Recognised when
at least two Office 365 traits are present: an "Undeliverable:" subject, the
X-MS-Exchange-* and X-Microsoft-Antispam-* headers, or a Received / Message-ID
host under ``*.prod.outlook.com`` / ``*.outbound.protection.outlook.com``.
The readable part lists each address as ``user@domain<mailto:user@domain>``
(or "Recipient Address:"), then "Diagnostic information for administrators:"
and "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; ...'".
Microsoft documents what its own enhanced status codes mean ("Email
non-delivery reports and SMTP errors in Exchange Online"); those that name a
reason outright set it.
"""

from __future__ import annotations

import re

from bounces.formats._lines import dsn_field, fillet, reading, sweep
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail, first_address

__all__ = ["NAME", "parse"]

NAME = "office365"

_OUTLOOK_HOST = re.compile(r".+\.(?:outbound\.protection|prod)\.outlook\.com\b")
_TRAIT_HEADERS = (
    "X-MS-Exchange-Message-Is-Ndr", "X-Microsoft-Antispam-PRVS", "X-Exchange-Antispam-Report-Test",
    "X-Exchange-Antispam-Report-CFA-Test", "X-MS-Exchange-CrossTenant-OriginalArrivalTime",
    "X-MS-Exchange-CrossTenant-FromEntityHeader", "X-MS-Exchange-Transport-CrossTenantHeadersStamped",
)
_BOUNDARY = re.compile(r"^Content-Type: message/rfc822", re.M)
_START = re.compile(r"^(?:Delivery has failed to these recipients or groups:|Original Message Details|"
                    r".+ rejected your message to the following e-?mail addresses:)")
_END_OF_ERROR = re.compile(r"^(?:Original [Mm]essage [Hh]eaders:?|Message Hops)")
_ERROR = re.compile(r"^(?:Diagnostic information for administrators:|Error Details)")
_RECIPIENT = re.compile(r"^(.+@.+)<mailto:.+@.+>$|^Recipient Address:\s+(.+)$")
_GENERATING = re.compile(r"^Generating server: (.+)$")
_REMOTE_HOST = re.compile(r"^\S+ (?=Remote Server returned )")  # "msmx.au.com Remote Server returned"
_RECEIVING = re.compile(r"^Receiving server: \S+(?: \([^)]*\))? ")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_RCPT = re.compile(r"unknown recipient or mailbox unavailable ->.+<?.+@.+\.[a-zA-Z]+>?")
# Status codes whose meaning Microsoft documents as one reason (learn.microsoft.com, "Email
# non-delivery reports and SMTP errors in Exchange Online"); after Sisimai's $statuslist.
_STATUS_REASONS: tuple[tuple[re.Pattern[str], Reason], ...] = tuple(
    (re.compile(pattern), reason) for pattern, reason in (
        (r"^4\.4\.7$", Reason.EXPIRED),            # message delayed past the retry time
        (r"^[45]\.4\.312$", Reason.NETWORKERROR),  # DNS query failed
        (r"^[45]\.4\.316$", Reason.EXPIRED),       # message expired, connection refused
        (r"^4\.7\.[56]\d\d$", Reason.BLOCKED),     # the sending IP is on a block list
        (r"^4\.7\.8[5-9]\d$", Reason.BLOCKED),
        (r"^5\.0\.350$", Reason.CONTENTERROR),
        (r"^5\.1\.10$", Reason.USERUNKNOWN),       # RESOLVER.ADR.RecipientNotFound
        (r"^5\.4\.1$", Reason.NORELAYING),         # relay access denied
        (r"^5\.4\.6$", Reason.NETWORKERROR),       # routing loop
        (r"^5\.6\.11$", Reason.CONTENTERROR),      # bare line feeds
        (r"^5\.7\.1[23]$", Reason.REJECTED),       # sender not allowed to send to the group
        (r"^5\.7\.124$", Reason.REJECTED),
        (r"^5\.7\.13[3-6]$", Reason.REJECTED),
        (r"^5\.7\.50[1-3]$", Reason.SPAMDETECTED),  # banned sender / spam
        (r"^5\.7\.50[4-5]$", Reason.FILTERED),
        (r"^5\.7\.50[6-7]$", Reason.BLOCKED),
        (r"^5\.7\.509$", Reason.AUTHFAILURE),      # does not pass DMARC verification
        (r"^5\.7\.60[6-9]$", Reason.BLOCKED),      # banned sending IP
        (r"^5\.7\.6[1-4]\d$", Reason.BLOCKED),
        (r"^5\.7\.7[0-4]\d$", Reason.TOOMANYCONN),  # the tenant exceeded its sending limits
    )
)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an Office 365 NDR, else None."""
    if not _is_office365(mail):
        return None
    text, original = fillet(mail.body, _BOUNDARY)
    if "\nContent-Transfer-Encoding: quoted-printable" in text:
        # A part the MIME reader could not open (office365-09: a multipart/alternative
        # inside the report) is still quoted-printable: join its soft line breaks.
        text = text.replace("=\n", "")
    drafts: list[Draft] = []
    generating = ""
    ended = False
    ending = ""
    for line in reading(text.split("\n"), _START):
        if not line:
            continue
        recipient = _RECIPIENT.match(line)
        if recipient:
            # The address as written, not the mailto: link: office365-04 shows them differ.
            drafts.append(Draft(recipient=first_address(recipient.group(1) or recipient.group(2))))
        elif generating_match := _GENERATING.match(line):
            generating = generating_match.group(1).lower()
        elif ended:
            field = dsn_field(line)
            if field is not None and drafts and field.name not in ("diagnostic-code", "final-recipient"):
                field.apply(drafts[-1])
        elif not drafts:
            continue
        elif _ERROR.match(line):
            drafts[-1].diagnostic = line
        elif drafts[-1].diagnostic:
            if _END_OF_ERROR.match(line):
                ended, ending = True, line
                continue
            drafts[-1].diagnostic += " " + line
    if not drafts:
        return None
    if not original and ending:
        # The headers are quoted in the text after "Original message headers:".
        original = text[text.find(ending) + len(ending):]
    for draft in drafts:
        _finish(draft, generating)
    return FormatResult(drafts=drafts, original=original)


def _is_office365(mail: Mail) -> bool:
    traits = int("Undeliverable:" in mail.subject)
    traits += sum(1 for name in _TRAIT_HEADERS if mail.has_header(name))
    if traits >= 2:
        return True
    # The substring test first: the pattern's leading ".+" makes a miss cost a scan per position.
    traits += any(".outlook.com" in r and _OUTLOOK_HOST.search(r) for r in mail.headers("Received"))
    message_id = mail.header("Message-ID")
    traits += bool(".outlook.com" in message_id and _OUTLOOK_HOST.search(message_id))
    return traits >= 2


def _finish(draft: Draft, generating: str) -> None:
    draft.reporting_mta = draft.reporting_mta or generating
    # The administrators' block begins with its own title, the receiving server
    # and the address again; the reply follows them.
    text = sweep(_ERROR.sub("", draft.diagnostic))
    text = _RECEIVING.sub("", text)
    if text.lower().startswith(draft.recipient.lower() + " "):
        text = text[len(draft.recipient) + 1:]
    draft.diagnostic = _REMOTE_HOST.sub("", text)
    if not draft.status or draft.status.endswith(".0.0"):
        found = _STATUS.search(draft.diagnostic)
        if found:
            draft.status = found.group(1)
    if _RCPT.search(draft.diagnostic):
        draft.command = "RCPT"
    for pattern, reason in _STATUS_REASONS:
        if draft.status and pattern.match(draft.status):
            draft.reason = reason
            break
