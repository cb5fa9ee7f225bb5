"""From raw bytes to a BounceReport: run the format registry, then finish each draft."""

from __future__ import annotations

import logging
import re
from email.message import Message

from bounces.classify import classify, find_reply_code, find_status, is_hard_bounce
from bounces.formats import REGISTRY
from bounces.model import BounceReport, Delivery, Draft, FormatResult, Reason
from rfc822 import Mail, OriginalMessage, load, original_from_message, original_from_text

__all__ = ["parse", "parse_mail"]

log = logging.getLogger(__name__)

_ORIGINAL_PART_TYPES = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers",
                        "message/global", "message/global-headers")
_SPECIFIC_STATUS = re.compile(r"^[245]\.[1-9]\d{0,2}\.[1-9]\d{0,2}$")
_COMMANDS = frozenset({"EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT", "CONN", "STARTTLS", "AUTH", "BDAT"})


def parse(raw: bytes | str) -> BounceReport:
    """Parse a raw message; deliveries is empty when it is not a bounce, auto-reply or DSN."""
    return parse_mail(load(raw))


def parse_mail(mail: Mail) -> BounceReport:
    """Parse an already loaded message (see ``parse``)."""
    for module in REGISTRY:
        try:
            result = module.parse(mail)
        except Exception:
            log.exception("bounce format %s failed on a message", module.NAME)
            raise
        if result is None or not result.drafts:
            continue
        deliveries = tuple(d for d in (_finish(draft) for draft in result.drafts) if d is not None)
        if not deliveries:
            continue
        return BounceReport(
            deliveries=deliveries,
            format=module.NAME,
            original=_original(mail, result),
            errors=tuple(mail.errors),
        )
    return BounceReport(errors=tuple(mail.errors))


def _finish(draft: Draft) -> Delivery | None:
    """Fill what the format left empty (status, reply code, reason) and freeze it."""
    recipient = draft.recipient.strip().strip("<>").strip()
    if "@" not in recipient:
        return None
    draft.recipient = recipient
    draft.diagnostic = " ".join(draft.diagnostic.split())
    if draft.diagnostic:
        found = find_status(draft.diagnostic)
        # A specific code in the server's own reply beats a generic one in the
        # Status field (Sisimai::Data->make does the same).
        if not draft.reply_code:
            draft.reply_code = find_reply_code(draft.diagnostic)
        # The remote reply's own class wins when the Status field disagrees with
        # it ("Status: 4.5.0" over "550 5.5.0", rhost-franceptt samples).
        if found and (not draft.status or draft.status.endswith(".0.0")
                      or (_SPECIFIC_STATUS.match(found) and found[:1] == draft.status[:1])
                      or (found[:1] != draft.status[:1] and found[:1] == draft.reply_code[:1])):
            draft.status = found
    draft.command = draft.command.upper() if draft.command.upper() in _COMMANDS else ""
    reason = classify(draft)
    action = draft.action
    if not action:
        if reason is Reason.EXPIRED:
            action = "delayed"
        elif draft.status[:1] in ("4", "5"):
            action = "failed"
        elif reason is Reason.DELIVERED:
            action = "delivered"
    hard = draft.hard_bounce if draft.hard_bounce is not None else is_hard_bounce(
        reason, draft.status, draft.reply_code)
    return Delivery(
        recipient=recipient,
        action=action,
        status=draft.status,
        reply_code=draft.reply_code,
        reason=reason,
        hard_bounce=hard,
        diagnostic=draft.diagnostic,
        remote_mta=draft.remote_mta,
        reporting_mta=draft.reporting_mta,
        command=draft.command,
        date=draft.date,
    )


def _original(mail: Mail, result: FormatResult) -> OriginalMessage | None:
    """Headers of the returned message: the MIME part first, then the format's text."""
    part = mail.find_part(*_ORIGINAL_PART_TYPES)
    if part is not None:
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            original = original_from_message(payload[0])
            if original.headers:
                return original
        elif isinstance(payload, str):
            found = original_from_text(payload)
            if found is not None:
                return found
    if result.original:
        return original_from_text(result.original)
    return None
