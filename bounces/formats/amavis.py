"""amavisd-new non-delivery reports.

Heuristics after Sisimai::Lhost::Amavis (BSD-2-Clause): From
``"Content-filter at <host>"``, a text part ("The message WAS NOT relayed to:",
"was considered unsolicited bulk e-mail (UBE)", ...), a message/delivery-status
part and the original's headers as text/rfc822-headers. amavisd-new's own
reject texts in the Diagnostic-Code name the reason ("... - SPAM",
"... - INFECTED", "... - BAD HEADER: ..."; Sisimai's $messagesof).

When the report lists amavisd-new's header checks ("Duplicate header field:",
"Missing required header field:", ...: amavisd ``check_header_validity``), the
message broke RFC 5322 and that is the reason Sisimai 5 gives
(lhost-amavis-03: notcompliantrfc although the reject says SPAM).
"""

from __future__ import annotations

import re

from bounces.formats._text import dsn_drafts, find_command, squeeze
from bounces.model import FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "amavis"

_OWN_TEXTS: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    (Reason.SPAMDETECTED, (" - spam",)),
    (Reason.VIRUSDETECTED, (" - infected",)),
    (Reason.CONTENTERROR, (" - bad header:",)),
    (Reason.EXCEEDLIMIT, (" - message size exceeds recipient",)),
    (Reason.SYSTEMERROR, (" - temporary mta failure on relaying", " - rejected by next-hop mta on relaying",
                          " - unable to relay message back to mta")),
)
# amavisd-new check_header_validity() findings, as its reports list them.
_HEADER_FINDINGS = re.compile(
    r"^(?:Duplicate header field: .*|Missing required header field: .*|Non-encoded 8-bit data .*"
    r"|Improper use of control character .*|Header line longer than 998 characters.*"
    r"|Improper folded header field .*|Header field syntax error.*)$", re.M)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an amavisd-new report, else None."""
    if not mail.header("From").lower().startswith('"content-filter at ') and not mail.sender.startswith(
            "content-filter at "):
        return None
    drafts = dsn_drafts(mail.section("message/delivery-status"))
    findings = [squeeze(m.group(0)) for m in _HEADER_FINDINGS.finditer(mail.text)]
    for draft in drafts:
        draft.command = find_command(draft.diagnostic)
        lowered = draft.diagnostic.lower()
        if findings:
            draft.diagnostic = squeeze(draft.diagnostic + " " + " ".join(findings))
            draft.reason = Reason.NOTCOMPLIANTRFC
            continue
        for reason, texts in _OWN_TEXTS:
            if any(t in lowered for t in texts):
                draft.reason = reason
                break
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822")) if drafts else None
