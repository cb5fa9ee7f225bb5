"""The machine-readable fields of a feedback report, read leniently.

RFC 5965 section 3 defines the ARF fields and RFC 6591 section 3.1 adds the
authentication-failure ones. Reports in the wild spell them loosely: AOL's
and Yahoo's Version 0.1 reports say ``Received-Date`` for ``Arrival-Date``
(arf-01.eml, arf-14.eml; so does RFC 6591's own example), some write
``Source-Ip`` or put underscores in names, and feedback types come in any
case. Heuristics after Sisimai::ARF (BSD-2-Clause), which accepts
``Received-Date`` and ``Source-I[Pp]`` for the same reason.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from fbl.model import FeedbackReport
from rfc822 import first_address

__all__ = ["FEEDBACK_TYPES", "feedback_type", "find_ip", "report_from_fields"]

# The IANA "Feedback Report Type Values" registry (RFC 5965, RFC 6591,
# RFC 6650) plus opt-out and opt-out-list from the ARF drafts that early
# feedback loops implemented.
FEEDBACK_TYPES = frozenset(
    {"abuse", "fraud", "virus", "other", "not-spam", "auth-failure", "opt-out", "opt-out-list"}
)
# Spellings seen for registered types; anything else is kept as written.
_TYPE_ALIASES = {
    "optout": "opt-out",
    "notspam": "not-spam",
    "not-junk": "not-spam",
    "authfailure": "auth-failure",
    "auth-fail": "auth-failure",
}
_NAME_ALIASES = {
    "received-date": "arrival-date",  # ARF Version 0.1 (AOL, Yahoo), RFC 6591 section 3 example
    "feedbacktype": "feedback-type",
    "useragent": "user-agent",
    "source-ip-address": "source-ip",
    "sourceip": "source-ip",
    "reported-url": "reported-uri",
    "original-rcpt": "original-rcpt-to",
}
# RFC 5965 section 3.1/3.2 and RFC 6591 section 3.1: fields that MUST NOT repeat.
_SINGLE = frozenset(
    {"feedback-type", "user-agent", "version", "original-envelope-id", "original-mail-from",
     "arrival-date", "reporting-mta", "source-ip", "incidents", "auth-failure", "delivery-result",
     "dkim-domain", "dkim-identity", "dkim-selector", "identity-alignment"}
)
_IP_CANDIDATE = re.compile(r"[0-9A-Fa-f]*[.:][0-9A-Fa-f.:]*[0-9A-Fa-f]")


def field_name(name: str) -> str:
    """A field name lower-cased, with '_' and spaces as '-', aliases resolved."""
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    return _NAME_ALIASES.get(key, key)


def feedback_type(value: str) -> str:
    """Normalise a Feedback-Type value: lower case, comments dropped, known misspellings fixed."""
    token = re.split(r"[;,(]", value.strip().strip("\"'").lower(), maxsplit=1)[0].strip()
    token = re.sub(r"[\s_]+", "-", token)
    return _TYPE_ALIASES.get(token, token)


def find_ip(text: str) -> str:
    """The first IPv4 or IPv6 address in ``text`` (brackets and 'IPv6:' allowed), or ''."""
    for match in _IP_CANDIDATE.finditer(re.sub(r"(?i)\bipv6:", " ", text)):
        candidate = match.group(0)
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return ""


def _address(value: str) -> str:
    """An address field's addr-spec; a value without one (redacted, '<>') as written."""
    found = first_address(value)
    if found:
        return found
    return value.strip().strip("<>").strip()


def report_from_fields(pairs: Iterable[tuple[str, str]]) -> FeedbackReport:
    """A report (format not yet set) from the fields of a feedback-report part."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    kept: list[tuple[str, str]] = []
    errors: list[str] = []
    for name, value in pairs:
        kept.append((name, value))
        key = field_name(name)
        if key in _SINGLE:
            if key in single:
                errors.append(f"feedback report: {name} appears more than once; the first is used")
            else:
                single[key] = value.strip()
        else:
            multi.setdefault(key, []).append(value.strip())
    incidents: int | None = None
    if single.get("incidents"):
        try:
            incidents = int(single["incidents"].split()[0])
        except ValueError:
            errors.append(f"feedback report: Incidents is not a number: {single['incidents']!r}")
    reporting_mta = single.get("reporting-mta", "")
    if ";" in reporting_mta:
        # "Reporting-MTA: dns; mail.example.com" (RFC 5965 section 3.2, after RFC 3464)
        reporting_mta = reporting_mta.split(";", 1)[1].strip()
    source_ip = single.get("source-ip", "")
    return FeedbackReport(
        feedback_type=feedback_type(single.get("feedback-type", "")),
        user_agent=single.get("user-agent", ""),
        version=single.get("version", ""),
        source_ip=find_ip(source_ip) or source_ip,
        original_mail_from=_address(single.get("original-mail-from", "")),
        original_rcpt_to=tuple(_address(v) for v in multi.get("original-rcpt-to", []) if v),
        original_envelope_id=single.get("original-envelope-id", ""),
        arrival_date=single.get("arrival-date", ""),
        reporting_mta=reporting_mta,
        reported_domain=tuple(v for v in multi.get("reported-domain", []) if v),
        reported_uri=tuple(v for v in multi.get("reported-uri", []) if v),
        removal_recipient=tuple(_address(v) for v in multi.get("removal-recipient", []) if v),
        incidents=incidents,
        authentication_results=tuple(v for v in multi.get("authentication-results", []) if v),
        auth_failure=single.get("auth-failure", "").lower(),
        delivery_result=single.get("delivery-result", "").lower(),
        dkim_domain=single.get("dkim-domain", ""),
        dkim_identity=single.get("dkim-identity", ""),
        dkim_selector=single.get("dkim-selector", ""),
        spf_dns=tuple(v for v in multi.get("spf-dns", []) if v),
        identity_alignment=single.get("identity-alignment", "").lower(),
        fields=tuple(kept),
        errors=tuple(errors),
    )
