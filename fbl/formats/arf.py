"""RFC 5965 Abuse Reporting Format (ARF): ``multipart/report; report-type=feedback-report``.

Heuristics after Sisimai::ARF (BSD-2-Clause): a message is a feedback report
when its Content-Type says ``report-type=feedback-report``; the source IP
falls back on the human-readable part's "received from IP address ..."
sentence. Added here, from reports seen in the wild: a ``message/feedback-report``
part under another multipart type counts too (the type parameter is
sometimes missing or misspelt), the fields are found in the text when that
part is missing, and the reported message is looked for in an attached
copy, attached headers, or a copy pasted into the text part.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field, replace
from email.message import Message

from fbl.fields import find_ip, report_from_fields
from fbl.model import FeedbackReport
from fbl.original import ORIGINAL_TYPES, decode_part, decode_text, inline_original, original_of_part
from rfc822 import Mail, OriginalMessage, decode_header_value, first_address, header_fields

__all__ = ["NAME", "ArfParts", "build", "find_report", "parse"]

NAME = "arf"

# Content-Type: multipart/report; report-type="feedback-report" (RFC 5965
# section 2), tolerating quotes, case and "feedback_report".
_DECLARED = re.compile(r"report-type\s*=\s*[\"']?\s*feedback[-_ ]?report", re.I)
_OTHER_REPORT = re.compile(r"report-type\s*=\s*[\"']?\s*(?!feedback)[a-z]", re.I)
_FEEDBACK_PART = re.compile(r"^(?:message|text)/(?:x-)?feedback[-_]?report$")
_FEEDBACK_LINE = re.compile(r"^\s*Feedback[-_ ]?Type\s*:", re.I | re.M)
# The human-readable part is a few lines; a copy pasted into it ends well before this.
_MAX_TEXT = 64 * 1024
# "This is an email abuse report for an email message received from IP
# address 192.0.2.1 on ..." (RFC 5965 appendix B; AOL, Yahoo, Abusix and
# OpenDMARC write variants of it: arf-01.eml, arf-18.eml, arf-20.eml).
_RECEIVED_FROM_IP = re.compile(r"received\s+from\s+IP(?:\s+address)?:?\s+\[?([0-9A-Fa-f:.]+)", re.I)


@dataclass
class ArfParts:
    """The three parts of a feedback report as found, before interpretation."""

    fields: list[tuple[str, str]]
    text: str
    original: OriginalMessage | None
    errors: list[str] = field(default_factory=list)


def parse(mail: Mail) -> FeedbackReport | None:
    """Any RFC 5965 feedback report; None when the message is not one."""
    parts = find_report(mail)
    return build(mail, parts, NAME) if parts is not None else None


def find_report(mail: Mail) -> ArfParts | None:
    """The parts of an ARF report, or None when ``mail`` is not one."""
    content_type = mail.header("Content-Type")
    declared = bool(_DECLARED.search(content_type))
    if not declared and _OTHER_REPORT.search(content_type):
        # A delivery-status (or disposition) report is a bounce even if it
        # carries a feedback part: it is about a message that failed.
        return None
    report_part: Message | None = None
    original_parts: list[Message] = []
    text_parts: list[Message] = []
    for part in mail.parts():
        ctype = mail.type_of(part)
        if report_part is None and _FEEDBACK_PART.match(ctype):
            report_part = part
        elif ctype in ORIGINAL_TYPES:
            original_parts.append(part)
        elif ctype.startswith("text/") and not part.is_multipart():
            text_parts.append(part)
    if report_part is None and not declared:
        return None
    # Only now that the message is a report: reading the returned messages is the costly part.
    originals = (original_of_part(part) for part in original_parts)
    original = next((found for found in originals if found is not None), None)
    errors: list[str] = []
    text = "\n".join(decode_part(p)[:_MAX_TEXT] for p in text_parts[:3])
    if report_part is not None:
        pairs = report_fields(report_part)
        if not any(_FEEDBACK_LINE.match(f"{name}:") for name, _ in pairs):
            # The email package drops field lines it cannot read as a header
            # (indented ones, for instance): look for them in the raw text.
            pairs = _fields_in_text(_raw_body(mail)) or pairs
    else:
        errors.append("feedback report: no message/feedback-report part; fields read from the text")
        text = text or _raw_body(mail)
        pairs = _fields_in_text(text)
    if original is None:
        original = inline_original(text)
        if original is None:
            errors.append("feedback report: the reported message is missing or unreadable")
    return ArfParts(fields=pairs, text=text, original=original, errors=errors)


def build(mail: Mail, parts: ArfParts, name: str) -> FeedbackReport:
    """The FeedbackReport of an ARF message, with format ``name``."""
    report = report_from_fields(parts.fields)
    errors = [*report.errors, *parts.errors]
    feedback_type = report.feedback_type
    if not feedback_type:
        # RFC 5965 section 3.1 requires the field; a feedback loop that leaves
        # it out reports spam, as every FBL does by default.
        feedback_type = "abuse"
        errors.append("feedback report: no Feedback-Type; taken as abuse")
    rcpt_to = report.original_rcpt_to
    if not rcpt_to and parts.original is not None:
        # Hotmail's ARF-wrapped reports name the recipient only in the copy
        # (Sisimai::ARF reads X-HmXmrOriginalRecipient wherever it appears).
        rcpt_to = tuple(parts.original.get_all("X-HmXmrOriginalRecipient"))
    source_ip = report.source_ip
    if not source_ip:
        match = _RECEIVED_FROM_IP.search(parts.text)
        source_ip = find_ip(match.group(1)) if match else ""
    return replace(
        report,
        format=name,
        feedback_type=feedback_type,
        original_rcpt_to=rcpt_to,
        source_ip=source_ip,
        reporter=first_address(mail.header("From")),
        date=mail.header("Date"),
        original=parts.original,
        errors=tuple(errors),
    )


def report_fields(part: Message) -> list[tuple[str, str]]:
    """The fields of a ``message/feedback-report`` part, whatever way the email package read it."""
    payload = part.get_payload()
    encoded = str(part.get("Content-Transfer-Encoding", "")).strip().lower() in ("base64", "quoted-printable")
    if not isinstance(payload, list):
        return _field_block(decode_part(part))
    pairs: list[tuple[str, str]] = []
    for block in payload:
        if not isinstance(block, Message):
            continue
        if not encoded:
            pairs.extend((name, decode_header_value(value)) for name, value in block.items())
        body = block.get_payload()
        if isinstance(body, str) and body.strip():
            # Fields after a stray blank line, or the whole report when the
            # part is transfer-encoded (the email package does not decode it).
            text = decode_text(body, part) if encoded else body
            pairs.extend(_field_block(text))
    return pairs


def _fields_in_text(text: str) -> list[tuple[str, str]]:
    """The field block that holds a Feedback-Type line, when there is no report part."""
    match = _FEEDBACK_LINE.search(text)
    if match is None:
        return []
    start = text.rfind("\n\n", 0, match.start())
    end = text.find("\n\n", match.start())
    block = text[start + 2 if start >= 0 else 0 : end if end >= 0 else len(text)]
    return _field_block(block)


def _field_block(text: str) -> list[tuple[str, str]]:
    # Dedented first: a generator that indents every field line would
    # otherwise have them all read as continuation lines.
    return header_fields(textwrap.dedent(text.replace("\r\n", "\n")))


def _raw_body(mail: Mail) -> str:
    """The undecoded body, for a multipart message whose parts could not be split."""
    raw = mail.raw[: _MAX_TEXT * 4].replace(b"\r\n", b"\n")
    cut = raw.find(b"\n\n")
    return raw[cut + 2 :].decode("utf-8", "replace") if cut >= 0 else ""
