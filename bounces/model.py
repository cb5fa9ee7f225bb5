"""What the bounce parser returns: plain, frozen values."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from rfc822 import OriginalMessage

__all__ = ["BounceReport", "Delivery", "Draft", "FormatResult", "Reason", "SignalGroup"]


class Reason(StrEnum):
    """Why a recipient failed: the vocabulary of shared/reasons.md (Sisimai's names)."""

    USERUNKNOWN = "userunknown"
    HOSTUNKNOWN = "hostunknown"
    HASMOVED = "hasmoved"
    SUSPEND = "suspend"
    NOTACCEPT = "notaccept"
    BLOCKED = "blocked"
    BADREPUTATION = "badreputation"
    SPAMDETECTED = "spamdetected"
    VIRUSDETECTED = "virusdetected"
    FILTERED = "filtered"
    POLICYVIOLATION = "policyviolation"
    REJECTED = "rejected"
    AUTHFAILURE = "authfailure"
    REQUIREPTR = "requireptr"
    FAILEDSTARTTLS = "failedstarttls"
    NORELAYING = "norelaying"
    SECURITYERROR = "securityerror"
    TOOMANYCONN = "toomanyconn"
    SPEEDING = "speeding"
    MAILBOXFULL = "mailboxfull"
    EXCEEDLIMIT = "exceedlimit"
    MESGTOOBIG = "mesgtoobig"
    SYSTEMFULL = "systemfull"
    SYSTEMERROR = "systemerror"
    MAILERERROR = "mailererror"
    NETWORKERROR = "networkerror"
    EXPIRED = "expired"
    CONTENTERROR = "contenterror"
    NOTCOMPLIANTRFC = "notcompliantrfc"
    SYNTAXERROR = "syntaxerror"
    ONHOLD = "onhold"
    UNDEFINED = "undefined"
    FEEDBACK = "feedback"
    VACATION = "vacation"
    DELIVERED = "delivered"

    @property
    def group(self) -> SignalGroup:
        """The reputation signal group of shared/reasons.md."""
        return _GROUPS[self]


class SignalGroup(StrEnum):
    """How the reputation engine groups reasons (shared/reasons.md, 'signal')."""

    LIST_QUALITY = "list_quality"
    BLOCK = "block"
    CONFIGURATION = "configuration"
    RATE = "rate"
    TRANSIENT = "transient"
    UNKNOWN = "unknown"
    COMPLAINT = "complaint"
    NONE = "none"


R, G = Reason, SignalGroup
_GROUPS: dict[Reason, SignalGroup] = {
    **dict.fromkeys((R.USERUNKNOWN, R.HOSTUNKNOWN, R.HASMOVED, R.SUSPEND, R.NOTACCEPT), G.LIST_QUALITY),
    **dict.fromkeys((R.BLOCKED, R.BADREPUTATION, R.SPAMDETECTED, R.VIRUSDETECTED, R.FILTERED,
                     R.POLICYVIOLATION, R.REJECTED), G.BLOCK),
    **dict.fromkeys((R.AUTHFAILURE, R.REQUIREPTR, R.FAILEDSTARTTLS, R.NORELAYING, R.SECURITYERROR),
                    G.CONFIGURATION),
    **dict.fromkeys((R.TOOMANYCONN, R.SPEEDING), G.RATE),
    **dict.fromkeys((R.MAILBOXFULL, R.EXCEEDLIMIT, R.MESGTOOBIG, R.SYSTEMFULL, R.SYSTEMERROR,
                     R.MAILERERROR, R.NETWORKERROR, R.EXPIRED, R.CONTENTERROR, R.NOTCOMPLIANTRFC,
                     R.SYNTAXERROR), G.TRANSIENT),
    **dict.fromkeys((R.ONHOLD, R.UNDEFINED), G.UNKNOWN),
    R.FEEDBACK: G.COMPLAINT,
    **dict.fromkeys((R.VACATION, R.DELIVERED), G.NONE),
}
del R, G


@dataclass
class Draft:
    """What a format module found about one recipient, before classification.

    Mutable on purpose: format modules fill it field by field as they scan,
    like Sisimai's ``DELIVERYSTATUS`` hash. Leave a field empty when the
    message does not say it; the core derives status, reply code and reason.
    """

    recipient: str = ""
    diagnostic: str = ""
    status: str = ""
    reply_code: str = ""
    action: str = ""
    reason: Reason | None = None  # set only when the format itself names the reason
    command: str = ""
    remote_mta: str = ""
    reporting_mta: str = ""
    date: str = ""
    alias: str = ""
    spec: str = ""  # the diagnostic type: "SMTP", "X-UNIX", "X-POSTFIX", ... ('' = unknown)
    hard_bounce: bool | None = None  # set only when the format says it outright


@dataclass
class FormatResult:
    """A format module's answer: drafts per recipient and the returned original as text."""

    drafts: list[Draft]
    original: str = ""


@dataclass(frozen=True)
class Delivery:
    """One failed (or delayed, delivered, auto-replied) recipient."""

    recipient: str
    action: str
    status: str
    reply_code: str
    reason: Reason
    hard_bounce: bool
    diagnostic: str
    remote_mta: str
    reporting_mta: str
    command: str
    date: str

    def as_dict(self) -> dict[str, object]:
        return {
            "recipient": self.recipient, "action": self.action, "status": self.status,
            "reply_code": self.reply_code, "reason": self.reason.value,
            "hard_bounce": self.hard_bounce, "diagnostic": self.diagnostic,
            "remote_mta": self.remote_mta, "reporting_mta": self.reporting_mta,
            "command": self.command, "date": self.date,
        }


@dataclass(frozen=True)
class BounceReport:
    """The result of ``bounces.parse``: empty ``deliveries`` means 'not a bounce'."""

    deliveries: tuple[Delivery, ...] = ()
    format: str = ""
    original: OriginalMessage | None = None
    errors: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> str:
        """bounce, autoreply, delivery or other, from what the deliveries say."""
        if not self.deliveries:
            return "other"
        reasons = {d.reason for d in self.deliveries}
        if reasons == {Reason.VACATION}:
            return "autoreply"
        if reasons == {Reason.DELIVERED}:
            return "delivery"
        return "bounce"
