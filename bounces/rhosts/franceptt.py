"""Orange and La Poste (orange.fr, wanadoo.fr, laposte.net): "OFR_102", "LPN007_416" codes.

After Sisimai::Rhost::FrancePTT (BSD-2-Clause). The last three digits name the cause; codes that
only say "try again later" (105, 107-109, 201, 423, 424, 513) decide nothing.
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"(?:^|\.)(?:laposte\.net|orange\.fr|wanadoo\.fr|pagesjaunes\.fr)$")
R = Reason
_CODES: dict[str, Reason] = {
    "101": R.BLOCKED,          # blocked using Spamhaus
    "102": R.BLOCKED,          # "Adresse IP source bloquee pour incident de spam"
    "103": R.BLOCKED,          # "Service refuse. Veuillez essayer plus tard."
    "104": R.TOOMANYCONN,      # "Trop de connexions"
    "305": R.SECURITYERROR,    # "Code d'authentification invalide"
    "401": R.AUTHFAILURE,      # "SPF: ... is not allowed to send mail"
    "402": R.SECURITYERROR,    # "Authentification requise"
    "403": R.REJECTED, "405": R.REJECTED, "415": R.REJECTED,  # "Emetteur invalide"
    "416": R.USERUNKNOWN,      # "Adresse d au moins un destinataire invalide"
    "417": R.MAILBOXFULL,      # "Boite du destinataire pleine"
    "418": R.USERUNKNOWN,
    "420": R.SUSPEND,          # "Boite du destinataire archivee"
    "421": R.REJECTED,         # "Mail from not owned by user"
    "426": R.SUSPEND,          # "Le compte du destinataire est bloque"
    "505": R.SYSTEMERROR,
    "506": R.SPAMDETECTED,     # "Mail rejete"
    "510": R.BLOCKED,
    "514": R.MESGTOOBIG,       # "Taille limite du message atteinte"
    "517": R.AUTHFAILURE,      # "Message refuse, verification DMARC en echec"
    "630": R.POLICYVIOLATION,  # "Client host rejected" (LPN000_630)
    "999": R.BLOCKED,
}
_CODE = re.compile(r"\b(?:lpn|lpnaaa|ofr|ouk)(?:_\d{3}|\d{3}[-_]\d{3})\b")


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for an Orange / La Poste rejection, from its code."""
    match = _CODE.search(text)
    if not match:
        return None
    return _CODES.get(match.group(0)[-3:])
