"""RFC 3464 delivery-status fields: the shared reader that format modules build on.

A ``message/delivery-status`` body is one block of per-message fields and then
one block per recipient, blocks separated by blank lines (RFC 3464 section 2.1).
In the wild the blank lines go missing, fields come in any case, values are
folded or RFC 2047-encoded, and some MTAs emit X- fields; all are tolerated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bounces.model import Draft
from rfc822 import decode_header_value, first_address

__all__ = ["DeliveryStatus", "draft_from_fields", "parse_delivery_status", "strip_address"]

_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")
# Fields that start a new recipient block even without a blank line before them.
_RECIPIENT_START = frozenset({"final-recipient", "original-recipient"})
_PER_RECIPIENT = frozenset({
    "final-recipient", "original-recipient", "action", "status", "remote-mta", "diagnostic-code",
    "last-attempt-date", "final-log-id", "will-retry-until", "x-actual-recipient",
    "x-supplementary-info", "x-display-name",
})
_TYPED = re.compile(r"^\s*([A-Za-z0-9-]+)\s*;\s*(.*)$", re.S)
_STATUS = re.compile(r"([245]\.\d{1,3}\.\d{1,3})")


@dataclass
class DeliveryStatus:
    """Per-message fields and one field dict per recipient, names lower-cased."""

    message: dict[str, str] = field(default_factory=dict)
    recipients: list[dict[str, str]] = field(default_factory=list)


def parse_delivery_status(text: str) -> DeliveryStatus:
    """Read the field blocks of a delivery-status body. Never raises."""
    result = DeliveryStatus()
    current: dict[str, str] | None = None
    last_name = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            last_name = ""
            if current is not None and current:
                current = None
            continue
        if line[0] in " \t" and last_name:
            target = current if current is not None else result.message
            target[last_name] = (target.get(last_name, "") + " " + line.strip()).strip()
            continue
        match = _FIELD.match(line)
        if not match:
            last_name = ""
            continue
        name, value = match.group(1).lower(), match.group(2).strip()
        starts_block = name in _RECIPIENT_START and (current is None or name in current)
        if starts_block or (current is None and name in _PER_RECIPIENT):
            current = {}
            result.recipients.append(current)
        target = current if current is not None else result.message
        if name not in target:
            target[name] = decode_header_value(value) if "=?" in value else value
        last_name = name
    result.recipients = [r for r in result.recipients if r]
    return result


def strip_address(value: str) -> str:
    """The address in a recipient field: 'rfc822; <a@b>' -> 'a@b'."""
    typed = _TYPED.match(value)
    if typed and typed.group(1).lower() in ("rfc822", "utf-8", "x400", "x-unknown", "unknown"):
        value = typed.group(2)
    value = value.strip().strip("<>\"' ")
    found = first_address(value)
    return found or value


def draft_from_fields(fields: dict[str, str], per_message: dict[str, str]) -> Draft:
    """A Draft from one recipient block, with per-message fields as defaults."""
    diagnostic, spec = fields.get("diagnostic-code", ""), ""
    typed = _TYPED.match(diagnostic)
    if typed and " " not in typed.group(1):
        spec, diagnostic = typed.group(1).upper(), typed.group(2)
    recipient = strip_address(fields.get("final-recipient", "") or fields.get("original-recipient", ""))
    alias = strip_address(fields.get("original-recipient", "")) if "final-recipient" in fields else ""
    status = fields.get("status", "").strip()
    status_match = _STATUS.match(status)
    return Draft(
        recipient=recipient,
        alias=alias if alias != recipient else "",
        action=fields.get("action", "").strip().lower().split(" ")[0],
        status=status_match.group(1) if status_match else "",
        diagnostic=" ".join(diagnostic.split()),
        spec=spec,
        remote_mta=_mta(fields.get("remote-mta", "")),
        reporting_mta=_mta(per_message.get("reporting-mta", "") or per_message.get("received-from-mta", "")),
        date=fields.get("last-attempt-date", "") or per_message.get("arrival-date", ""),
    )


def _mta(value: str) -> str:
    typed = _TYPED.match(value)
    value = typed.group(2) if typed else value
    return value.strip().split(" ")[0].strip("[]().") if value.strip() else ""
