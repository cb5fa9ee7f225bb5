"""Attribution: the original message's header and envelope -> the identities responsible.

Pure: stdlib and rfc822 only; no configuration loader, clock, network or
database. ``attribute(original, envelope, rules, ledger)`` names the account,
script, customer, domain, client and outbound ip, each with the source and the
evidence it was found in. Header fields are believed only inside the
provider's trust boundary (``attribution.boundary`` documents the rule).
"""

from attribution.boundary import Boundary, Zone, find_boundary
from attribution.core import attribute
from attribution.directory import DirectoryError, load_directory_csv
from attribution.model import (
    Attribution,
    AttributionResult,
    Envelope,
    IdentityKind,
    Ledger,
    LedgerEntry,
    Source,
    normalize_message_id,
)
from attribution.rules import (
    CPANEL_APPENDED_HEADERS,
    DEFAULT_HEADER_RULES,
    DEFAULT_LOCAL_SUBMISSION,
    DEFAULT_ORDER,
    DEFAULT_VERP,
    AttributionRules,
    HeaderRule,
    TrustRules,
    rules_from_mapping,
)

__all__ = [
    "CPANEL_APPENDED_HEADERS",
    "DEFAULT_HEADER_RULES",
    "DEFAULT_LOCAL_SUBMISSION",
    "DEFAULT_ORDER",
    "DEFAULT_VERP",
    "Attribution",
    "AttributionResult",
    "AttributionRules",
    "Boundary",
    "DirectoryError",
    "Envelope",
    "HeaderRule",
    "IdentityKind",
    "Ledger",
    "LedgerEntry",
    "Source",
    "TrustRules",
    "Zone",
    "attribute",
    "find_boundary",
    "load_directory_csv",
    "normalize_message_id",
    "rules_from_mapping",
]
