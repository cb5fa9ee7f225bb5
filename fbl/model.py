"""What the complaint parser returns: one plain, frozen value per message."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rfc822 import OriginalMessage, find_addresses

__all__ = ["FeedbackReport"]

# Headers of the reported message that name its recipient, most telling first:
# To is what the sender wrote; Delivered-To and X-Original-To are what the
# receiving MTA stamped (arf-19.eml and arf-20.eml carry both).
_RECIPIENT_HEADERS = ("To", "Delivered-To", "X-Original-To")


@dataclass(frozen=True)
class FeedbackReport:
    """A feedback-loop complaint (RFC 5965 ARF and the non-ARF formats), or 'not a complaint'.

    ``format`` is empty when the message is not a complaint; every other field
    is empty too then, except ``errors``. Field names follow RFC 5965 section 3
    and RFC 6591 section 3.1; values are the report's own, decoded and
    unfolded, with addresses stripped of their angle brackets.
    """

    format: str = ""
    feedback_type: str = ""
    user_agent: str = ""
    version: str = ""
    source_ip: str = ""
    original_mail_from: str = ""
    original_rcpt_to: tuple[str, ...] = ()
    original_envelope_id: str = ""
    arrival_date: str = ""
    reporting_mta: str = ""
    reported_domain: tuple[str, ...] = ()
    reported_uri: tuple[str, ...] = ()
    removal_recipient: tuple[str, ...] = ()
    incidents: int | None = None
    authentication_results: tuple[str, ...] = ()
    # RFC 6591 (authentication-failure reports)
    auth_failure: str = ""
    delivery_result: str = ""
    dkim_domain: str = ""
    dkim_identity: str = ""
    dkim_selector: str = ""
    spf_dns: tuple[str, ...] = ()
    identity_alignment: str = ""
    # The report message itself: who sent it and when.
    reporter: str = ""
    date: str = ""
    # Every field of the machine-readable part, in order, as given (for explanations).
    fields: tuple[tuple[str, str], ...] = ()
    original: OriginalMessage | None = None
    errors: tuple[str, ...] = ()

    @property
    def is_complaint(self) -> bool:
        """True when the message is a feedback report of a known format."""
        return bool(self.format)

    @property
    def recipients(self) -> tuple[str, ...]:
        """The complained-about addresses.

        Original-Rcpt-To (or the format's own equivalent) first; else the
        first address of the reported message's To, Delivered-To or
        X-Original-To; else the Removal-Recipient fields. Empty when the
        report redacts them all.
        """
        if not self.is_complaint:
            return ()
        found = _addresses(self.original_rcpt_to)
        if found:
            return found
        if self.original is not None:
            for name in _RECIPIENT_HEADERS:
                found = _addresses(tuple(self.original.get_all(name)))
                if found:
                    # One report is one person's complaint: when the report does
                    # not say who, the first addressee is the best guess (as in
                    # Sisimai::ARF), not everyone the message was copied to.
                    return found[:1]
        return _addresses(self.removal_recipient)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form: tuples as lists, the original as ``original.as_dict()``."""
        out: dict[str, object] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "original":
                out["original"] = value.as_dict() if value is not None else None
            elif item.name == "fields":
                out["fields"] = [[name, text] for name, text in value]
            elif isinstance(value, tuple):
                out[item.name] = list(value)
            else:
                out[item.name] = value
        out["is_complaint"] = self.is_complaint
        out["recipients"] = list(self.recipients)
        return out


def _addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        for address in find_addresses(value):
            if address.lower() not in (a.lower() for a in found):
                found.append(address)
    return tuple(found)
