"""Decide what a raw message is, and hand it to the parser that reads it.

A complaint (ARF or a known non-ARF feedback format) is the most specific answer, so ``fbl`` is
asked first; anything it does not claim goes to ``bounces``, which tells a bounce from an
auto-reply (RFC 3834) or a success DSN. What neither claims is ``other``. The parsers never
raise on bad input by contract; a bug in one must still not lose the message, so any exception is
logged with its traceback and recorded in ``errors`` (STYLE.md, habit 7: never lose input).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

import bounces
import fbl
from bounces.model import BounceReport
from fbl.model import FeedbackReport
from ingest.sources import SourceMessage
from rfc822 import Mail, OriginalMessage, load

__all__ = ["Classification", "Kind", "Record", "classify", "classify_source"]

log = logging.getLogger(__name__)


class Kind(StrEnum):
    """What a raw message is."""

    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    AUTOREPLY = "autoreply"
    DELIVERY = "delivery"
    OTHER = "other"


@dataclass(frozen=True)
class Record:
    """One recipient the message is about: a failed delivery, an auto-reply or a complaint."""

    recipient: str
    action: str
    status: str
    reply_code: str
    reason: str
    hard_bounce: bool
    diagnostic: str
    remote_mta: str
    reporting_mta: str
    command: str
    date: str
    feedback_type: str | None

    def as_dict(self) -> dict[str, object]:
        """The record as printed by ``app.py parse`` (issue 2, section 4)."""
        return {
            "recipient": self.recipient, "action": self.action, "status": self.status,
            "reply_code": self.reply_code, "reason": self.reason, "hard_bounce": self.hard_bounce,
            "diagnostic": self.diagnostic, "remote_mta": self.remote_mta,
            "reporting_mta": self.reporting_mta, "command": self.command, "date": self.date,
            "feedback_type": self.feedback_type,
        }


@dataclass(frozen=True)
class Classification:
    """What ``classify`` found; the parsers' full reports are kept for the later stages."""

    kind: Kind
    records: tuple[Record, ...] = ()
    original: OriginalMessage | None = None
    errors: tuple[str, ...] = ()
    feedback: FeedbackReport | None = None
    bounce: BounceReport | None = None

    def as_dict(self) -> dict[str, object]:
        """kind, records, complaint, original, errors: the JSON of issue 2 section 4 without "file"."""
        complaint = self.feedback.as_dict() if self.kind is Kind.COMPLAINT and self.feedback else None
        return {
            "kind": self.kind.value,
            "records": [record.as_dict() for record in self.records],
            "complaint": complaint,
            "original": self.original.as_dict() if self.original is not None else None,
            "errors": list(self.errors),
        }


def classify(raw: bytes) -> Classification:
    """Tell what ``raw`` is (complaint, bounce, auto-reply, delivery notice or other) and parse it.

    Never raises: a parser's exception becomes an entry in ``errors``.
    """
    try:
        return _classify(raw)
    except Exception as exc:  # last resort: a report the parsers built wrongly
        log.exception("classifying a %d-byte message failed", len(raw))
        return Classification(kind=Kind.OTHER, errors=(f"classify failed: {type(exc).__name__}: {exc}",))


def classify_source(message: SourceMessage) -> dict[str, object]:
    """The JSON object ``app.py parse`` prints for one message: "file" first, then ``as_dict()``.

    Errors met while reading the message (a cut, an unreadable file) come before the parsers'.
    """
    unreadable = not message.raw and message.errors
    result = Classification(kind=Kind.OTHER) if unreadable else classify(message.raw)
    position = {} if message.mbox_index is None else {"mbox_index": message.mbox_index}
    return {"file": message.path, **position, **result.as_dict(),
            "errors": [*message.errors, *result.errors]}


def _classify(raw: bytes) -> Classification:
    errors: list[str] = []
    # Read the MIME structure once for both parsers: it is most of the time a message costs.
    mail = load(raw)
    feedback = _run_fbl(mail, errors)
    if feedback is not None and feedback.is_complaint:
        return Classification(
            kind=Kind.COMPLAINT, records=_complaint_records(feedback), original=feedback.original,
            errors=_unique([*feedback.errors, *errors]), feedback=feedback,
        )
    bounce = _run_bounces(mail, errors)
    parser_errors = [*(feedback.errors if feedback else ()), *(bounce.errors if bounce else ())]
    if bounce is None:
        return Classification(kind=Kind.OTHER, errors=_unique([*parser_errors, *errors]),
                              feedback=feedback)
    return Classification(
        kind=Kind(bounce.kind),
        records=tuple(_delivery_record(delivery) for delivery in bounce.deliveries),
        original=bounce.original, errors=_unique([*parser_errors, *errors]),
        feedback=feedback, bounce=bounce,
    )


def _run_fbl(mail: Mail, errors: list[str]) -> FeedbackReport | None:
    try:
        return fbl.parse_mail(mail)
    except Exception as exc:  # a parser bug must not lose the message
        log.exception("fbl.parse failed on a %d-byte message", len(mail.raw))
        errors.append(f"fbl.parse failed: {type(exc).__name__}: {exc}")
        return None


def _run_bounces(mail: Mail, errors: list[str]) -> BounceReport | None:
    try:
        return bounces.parse_mail(mail)
    except Exception as exc:  # a parser bug must not lose the message
        log.exception("bounces.parse failed on a %d-byte message", len(mail.raw))
        errors.append(f"bounces.parse failed: {type(exc).__name__}: {exc}")
        return None


def _delivery_record(delivery: bounces.Delivery) -> Record:
    return Record(
        recipient=delivery.recipient, action=delivery.action, status=delivery.status,
        reply_code=delivery.reply_code, reason=delivery.reason.value, hard_bounce=delivery.hard_bounce,
        diagnostic=delivery.diagnostic, remote_mta=delivery.remote_mta,
        reporting_mta=delivery.reporting_mta, command=delivery.command, date=delivery.date,
        feedback_type=None,
    )


def _complaint_records(report: FeedbackReport) -> tuple[Record, ...]:
    """One ``feedback`` record per complained-about recipient.

    A report that redacts every recipient (RFC 6590 allows it) still gets one record with an
    empty recipient, so that the complaint and its feedback type are counted.
    """
    recipients = report.recipients or ("",)
    return tuple(
        Record(recipient=recipient, action="", status="", reply_code="", reason="feedback",
               hard_bounce=False, diagnostic="", remote_mta="", reporting_mta=report.reporting_mta,
               command="", date=report.arrival_date, feedback_type=report.feedback_type)
        for recipient in recipients
    )


def _unique(items: list[str]) -> tuple[str, ...]:
    """The items without repeats, in first-seen order (both parsers report the same MIME defects)."""
    return tuple(dict.fromkeys(items))
