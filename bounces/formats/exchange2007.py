"""Microsoft Exchange Server 2007 and later (on premises) non-delivery reports.

Heuristics after Sisimai::Lhost::Exchange2007 (BSD-2-Clause). Recognised by
an NDR subject ("Undeliverable:", "Non remis :", "Non recapitabile:", ...)
with a Content-Language header and without the X-MS-Exchange-CrossTenant
headers that Office 365 adds. The readable part, in the sender's language,
ends with "Diagnostic information for administrators:", the generating
server, each failed address, and the remote reply or Exchange's own error
("#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##"). Exchange's error
names (RESOLVER.*, QUEUE.*, SMTPSEND.*) say the reason outright.
"""

from __future__ import annotations

import re

from bounces.formats._lines import fillet, reading, sweep
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "exchange2007"

# The NDR subject prefix in each language Exchange writes (en, fr, it, de, es, pt, nl, sv, ja).
_SUBJECT = re.compile(r"^(?:Undeliverable|Non[ _]remis|Non recapitabile|Unzustellbar|No se puede entregar|"
                      r"Não é possível entregar|Onbestelbaar|Olevererbart|配信不能)\s*_?:", re.I)
_LANGUAGE = re.compile(r"^[a-z]{2}(?:-[A-Z]{2})?$")
# French typography puts a (non-breaking) space before the colon.
_BOUNDARY = re.compile(r"^(?:Original message headers|En-t.tes de message d'origine|"
                       r"Intestazioni originali del messaggio|Ursprüngliche Nachrichtenkopfzeilen|"
                       r"Encabezados del mensaje original|元のメッセージ ヘッダー)\s*:", re.M)
_START = re.compile(r"^(?:Diagnostic information for administrators:|Informations de diagnostic pour les "
                    r"administrateurs|Informazioni di diagnostica per gli amministratori|"
                    r"Diagnoseinformationen für Administratoren|Información de diagnóstico para "
                    r"administradores|管理者向けの診断情報)")
_GENERATING = re.compile(r"^(?:Generating server|Serveur de g\S+ration|Server di generazione|"
                         r"Generierender Server|Servidor de generación|生成サーバー)\s*:\s?(.*)$")
_ADDRESS = re.compile(r"^([^ @]+@[^ @]+)$")
_ERROR = re.compile(r"([45]\d{2}) ([45]\.\d\.\d+) .+$")
_ERROR_NAME = re.compile(r" ((?:RESOLVER|QUEUE|SMTPSEND)\.[A-Za-z]+(?:\.\w+)?);")
# Exchange's error names and the reason each means (Sisimai::Lhost::Exchange2007 $ndrsubject).
_ERROR_NAMES = {
    "SMTPSEND.DNS.NonExistentDomain": Reason.HOSTUNKNOWN,   # 554 5.4.4
    "SMTPSEND.DNS.MxLoopback": Reason.NETWORKERROR,         # 554 5.4.4
    "RESOLVER.ADR.BadPrimary": Reason.SYSTEMERROR,          # 550 5.2.0
    "RESOLVER.ADR.RecipNotFound": Reason.USERUNKNOWN,       # 550 5.1.1
    "RESOLVER.ADR.RecipientNotFound": Reason.USERUNKNOWN,   # 550 5.1.10
    "RESOLVER.ADR.ExRecipNotFound": Reason.USERUNKNOWN,     # 550 5.1.1
    "RESOLVER.ADR.RecipLimit": Reason.TOOMANYCONN,          # 550 5.5.3
    "RESOLVER.ADR.InvalidInSmtp": Reason.SYSTEMERROR,       # 550 5.1.0
    "RESOLVER.ADR.Ambiguous": Reason.SYSTEMERROR,           # 550 5.1.4
    "RESOLVER.RST.AuthRequired": Reason.SECURITYERROR,      # 550 5.7.1
    "RESOLVER.RST.NotAuthorized": Reason.REJECTED,          # 550 5.7.1
    # Sisimai 4 says mesgtoobig; the limit is the recipient's own, which Sisimai 5 calls exceedlimit.
    "RESOLVER.RST.RecipSizeLimit": Reason.EXCEEDLIMIT,      # 550 5.2.3
    "QUEUE.Expired": Reason.EXPIRED,                        # 550 4.4.7
}


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an Exchange 2007+ NDR, else None."""
    if not _SUBJECT.match(mail.subject) or not _LANGUAGE.match(mail.header("Content-Language")):
        return None
    if mail.header("X-MS-Exchange-CrossTenant-OriginalArrivalTime") or \
            mail.header("X-MS-Exchange-CrossTenant-FromEntityHeader"):
        return None  # Office 365
    text, original = fillet(mail.body, _BOUNDARY)
    drafts, generating = read_administrator_block(reading(text.split("\n"), _START))
    for draft in drafts:
        draft.reporting_mta = generating
        name = _ERROR_NAME.search(draft.diagnostic)
        if name and name.group(1) in _ERROR_NAMES:
            draft.reason = _ERROR_NAMES[name.group(1)]
        draft.diagnostic = sweep(draft.diagnostic)
    return FormatResult(drafts=drafts, original=original) if drafts else None


def read_administrator_block(lines: list[str]) -> tuple[list[Draft], str]:
    """Drafts from the lines after "Diagnostic information for administrators:", and the generating server.

    Each address line starts a recipient; the last line with a reply code and
    a status (Exchange lists every attempt, oldest last) is its diagnostic.
    """
    drafts: list[Draft] = []
    generating = ""
    for raw in lines:
        line = raw.strip()
        if not generating and not drafts:
            found = _GENERATING.match(line)
            if found:
                generating = found.group(1).strip()
                continue
        if _ADDRESS.match(line):
            drafts.append(Draft(recipient=line))
            continue
        if not drafts:
            continue
        error = _ERROR.search(line)
        if error:
            draft = drafts[-1]
            draft.reply_code, draft.status = error.group(1), error.group(2)
            # "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##" ends at the "##".
            draft.diagnostic = line.split("##")[0]
    return drafts, generating
