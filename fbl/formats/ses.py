"""Amazon SES complaint notifications: JSON, bare or in an Amazon SNS envelope.

SES tells the sender about a complaint with a JSON object whose
``notificationType`` (``eventType`` for configuration-set event publishing)
is ``Complaint`` ("Amazon SES notification contents", SES Developer Guide).
It arrives as the text body of an SNS e-mail notification (lhost-amazonses-11.eml),
as an SNS HTTP(S) envelope whose ``Message`` holds the JSON as a string, or
as the bare JSON posted to a webhook. SNS e-mail folds long lines by ending
them with '!' and starting the next with a space, and adds a signature after
a '--' line. Bounce and Delivery notifications are not complaints: they are
left to the bounce parser.
Heuristics after Sisimai::Lhost::AmazonSES (BSD-2-Clause), its JSON branch.
"""

from __future__ import annotations

import json

from fbl.fields import feedback_type, find_ip
from fbl.model import FeedbackReport
from rfc822 import Mail, OriginalMessage, decode_header_value, first_address

__all__ = ["NAME", "parse", "payload"]

NAME = "ses"

# A notification is a few kilobytes; a body this long is not one.
_MAX_JSON = 1024 * 1024


def parse(mail: Mail) -> FeedbackReport | None:
    """An SES complaint notification; None for any other message."""
    found = payload(mail)
    if found is None:
        return None
    kind = _text(found.get("notificationType")) or _text(found.get("eventType"))
    complaint = found.get("complaint")
    if kind != "Complaint" or not isinstance(complaint, dict):
        return None
    sent = found.get("mail")
    sent = sent if isinstance(sent, dict) else {}
    recipients = []
    for entry in _list(complaint.get("complainedRecipients")):
        address = first_address(_text(entry.get("emailAddress"))) if isinstance(entry, dict) else ""
        if address and address not in recipients:
            recipients.append(address)
    errors: list[str] = []
    if not recipients:
        errors.append("ses: the complaint names no complainedRecipients")
    # complaintFeedbackType is the Feedback-Type of the ISP's ARF report; SES
    # leaves it out when the ISP sent none (Outlook.com's JMRP), and then it
    # is the plain "this is spam" click: abuse.
    kind_of_feedback = feedback_type(_text(complaint.get("complaintFeedbackType"))) or "abuse"
    return FeedbackReport(
        format=NAME,
        feedback_type=kind_of_feedback,
        user_agent=_text(complaint.get("userAgent")),
        # The IP that submitted the message to SES: for a hosting provider
        # relaying through SES, its own outbound address.
        source_ip=find_ip(_text(sent.get("sourceIp"))),
        original_mail_from=first_address(_text(sent.get("source"))) or _text(sent.get("source")),
        original_rcpt_to=tuple(recipients),
        arrival_date=_text(complaint.get("arrivalDate")) or _text(complaint.get("timestamp")),
        reporter=first_address(mail.header("From")),
        date=mail.header("Date") or _text(complaint.get("timestamp")),
        fields=_fields(complaint, sent),
        original=_original(sent),
        errors=tuple(errors),
    )


def payload(mail: Mail) -> dict[str, object] | None:
    """The SES notification object in ``mail`` (SNS envelope removed), or None."""
    raw = mail.raw.lstrip()
    if raw.startswith(b"{"):
        # Bare JSON, as a webhook receives it: the email parser would take
        # its first line for a header, so read the bytes themselves.
        text = raw[:_MAX_JSON].decode("utf-8", "replace")
    elif mail.content_type in ("text/plain", "application/json"):
        text = mail.body.lstrip()[:_MAX_JSON]
    else:
        return None
    if not text.startswith("{"):
        return None
    found = _loads(text) or _loads(_unfold_sns(text))
    if found is None:
        return None
    message = found.get("Message")
    if isinstance(message, str) and message.lstrip().startswith("{"):
        # SNS envelope: {"Type": "Notification", "Message": "{\"notificationType\": ...}"}
        return _loads(message)
    if isinstance(message, dict):
        return message
    return found


def _loads(text: str) -> dict[str, object] | None:
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return found if isinstance(found, dict) else None


def _unfold_sns(text: str) -> str:
    """Undo SNS e-mail folding ('!' at the end, ' ' at the start) and drop the signature."""
    out: list[str] = []
    folded = False
    for line in text.split("\n"):
        if line.rstrip() == "--":
            break
        if folded and line[:1] == " ":
            line = line[1:]
        folded = line.endswith("!")
        out.append(line[:-1] if folded else line)
    return "".join(out)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _fields(complaint: dict[str, object], sent: dict[str, object]) -> tuple[tuple[str, str], ...]:
    """The identifiers SES gives, kept for explanations and for matching our own send log."""
    pairs = [
        ("feedbackId", _text(complaint.get("feedbackId"))),
        ("complaintSubType", _text(complaint.get("complaintSubType"))),
        ("messageId", _text(sent.get("messageId"))),
        ("sourceArn", _text(sent.get("sourceArn"))),
        ("sendingAccountId", _text(sent.get("sendingAccountId"))),
    ]
    return tuple((name, value) for name, value in pairs if value)


def _original(sent: dict[str, object]) -> OriginalMessage | None:
    """The sent message's headers from ``mail.headers`` (all of them unless headersTruncated)."""
    headers: list[tuple[str, str]] = []
    for entry in _list(sent.get("headers")):
        if isinstance(entry, dict):
            name, value = _text(entry.get("name")), entry.get("value")
            if name and isinstance(value, str):
                headers.append((name, decode_header_value(value)))
    return OriginalMessage(tuple(headers)) if headers else None
