"""The ingest pipeline: keep the raw bytes, classify, parse, attribute, record the events.

One call, one message, inside the caller's transaction (the caller commits):

1. The bytes are stored first (``storage.store_message``, deduplicated by SHA-256): whatever
   happens next, nothing is lost
   (STYLE.md, habit 7).
2. The rest runs inside a SAVEPOINT. An exception there (a bug) rolls back to it and leaves the
   message ``quarantined`` with the traceback; ``app.py reprocess`` runs it again after a fix.
3. ``ingest.classify`` tells what it is. A complaint gets one ComplaintEvent per complained-about
   recipient; a bounce one BounceEvent per failed recipient. Auto-replies, success DSNs and other
   mail that parsed cleanly are kept with status ``ignored`` and no event (their parse result is in
   the summary). What no parser could read (kind other with errors, an empty message, a bounce
   with no failed recipient, a parser that crashed) is ``quarantined`` with the reason.
4. ``attribution.attribute`` names who sent the original; each event is linked to the best identity
   of each kind, with the rule that found it and the evidence (``EventIdentity.source/detail``).

The same complaint in other bytes (same reporter, original Message-ID and recipients) is stored
with status ``duplicate`` pointing at the first copy, and writes no event.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

import attribution
from ingest.classify import Classification, Kind, classify
from ingest.events import clean, event_rows, insert_events, recipient_redactor, reporter_of
from ingest.identities import link_identities
from ingest.ledger import SessionLedger
from rfc822 import first_address, header_fields
from storage import (
    Event,
    Identity,
    MessageStatus,
    RawMessage,
    StoredMessage,
    claim_dedup_key,
    complaint_dedup_key,
    forget_identities,
    store_message,
    utcnow,
    write_message_outcome,
)

if TYPE_CHECKING:
    from config import Settings

__all__ = ["IngestResult", "Pipeline", "envelope_recipient"]

log = logging.getLogger(__name__)

# Classification errors that mean a parser crashed (ingest/classify.py writes them): its answer
# cannot be trusted, so the message is quarantined until a fix and a reprocess.
_CRASHES = ("classify failed:", "fbl.parse failed:", "bounces.parse failed:")
# Where the bounce's own envelope recipient (our VERP return path) is recorded by the MTA that
# delivered the bounce to us: Postfix's Delivered-To and X-Original-To; Return-Path last.
_ENVELOPE_RECIPIENT_FIELDS = ("delivered-to", "x-original-to", "envelope-to", "return-path")
_HEADER_SCAN_BYTES = 65536
# In json.dumps output (ensure_ascii): NUL, and a surrogate that is not half of a pair (an emoji is a
# pair, and fine). PostgreSQL refuses both in JSON.
_UNSAFE_JSON = re.compile(r"\\u0000"
                          r"|\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])"  # a high surrogate alone
                          r"|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}",  # a low one alone
                          re.IGNORECASE)


@dataclass(frozen=True)
class IngestResult:
    """What happened to one raw message."""

    message_id: int  # the RawMessage id: the new one, or the earlier copy's for a duplicate
    created: bool  # False when the same bytes (or the same complaint) were stored before
    status: str  # parsed | quarantined | ignored | duplicate (storage.MessageStatus values)
    kind: str  # complaint | bounce | autoreply | delivery | other
    events: int = 0  # bounce and complaint events written for it
    error: str | None = None  # why it was quarantined
    # The row these bytes were kept under, when it is not ``message_id``: a complaint already
    # recorded from other bytes is stored too (status duplicate), pointing at the first copy.
    stored_id: int | None = None


@dataclass
class _Progress:
    kind: str  # what the message was found to be, for the quarantine record of a bug


@dataclass(frozen=True)
class _Outcome:
    status: MessageStatus
    kind: str
    events: int = 0
    error: str | None = None
    duplicate_of: int | None = None
    summary: dict[str, Any] | None = None


class Pipeline:
    """Turns raw messages into stored facts; built once from the settings, used by every collector."""

    def __init__(self, rules: attribution.AttributionRules | None = None, *,
                 recipient_salt: bytes | None = None, max_message_bytes: int | None = None,
                 classifier: Callable[[bytes], Classification] = classify) -> None:
        """``rules``: attribution's (default: no host trusted). ``recipient_salt`` set: complainants'
        addresses are stored as HMACs. A message over ``max_message_bytes`` is parsed cut (and stored
        whole). ``classifier`` is ``ingest.classify``, replaceable for tests.
        """
        self.rules = rules or attribution.AttributionRules()
        self.recipient_salt = recipient_salt
        self.max_message_bytes = max_message_bytes
        self.classifier = classifier

    @classmethod
    def from_settings(cls, settings: Settings) -> Pipeline:
        """The pipeline of [attribution], [ingest] and [parse]."""
        salt = settings.ingest.recipient_salt if settings.ingest.hash_recipients else None
        return cls(settings.attribution.rules, recipient_salt=salt,
                   max_message_bytes=settings.parse.max_message_bytes)

    def ingest(self, session: Session, raw: bytes, *, source: str, source_ref: str | None = None,
               received_at: datetime | None = None) -> IngestResult:
        """Store ``raw`` and everything learnt from it in ``session``; the caller commits.

        Never raises for a bad message: it is quarantined with its error (a bug with its
        traceback). Idempotent: the same bytes, or the same complaint (same reporter, original
        Message-ID and recipient), give ``created=False`` and the first copy's id. Database
        errors while storing the bytes themselves do propagate: then nothing was kept.
        """
        stored = store_message(session, raw, clean(source, 255),
                               source_ref=None if source_ref is None else clean(source_ref),
                               received_at=received_at)
        if not stored.created:
            return IngestResult(stored.duplicate_of or stored.id, False, MessageStatus.DUPLICATE.value,
                                stored.kind)
        return self._run(session, stored, raw)

    def reprocess(self, session: Session, message: RawMessage) -> IngestResult:
        """Run the pipeline again on a stored message, replacing its events; the caller commits.

        For quarantined messages after a fix, or for every message after a parser improved.
        """
        session.execute(delete(Event).where(Event.message_id == message.id),
                        execution_options={"synchronize_session": False})
        session.expire(message, ["events"])
        message.dedup_key = None
        message.duplicate_of_id = None
        message.error = None
        message.status = MessageStatus.RECEIVED.value
        stored = StoredMessage(message.id, message.received_at, message.kind, True)
        return self._run(session, stored, message.raw)

    def _run(self, session: Session, stored: StoredMessage, raw: bytes) -> IngestResult:
        progress = _Progress(stored.kind)
        session.flush()  # the caller's pending changes are not ours to roll back
        # A savepoint of the connection, not of the session: the pipeline writes with Core
        # statements, and the session's nested transaction cost more than the work it guarded.
        savepoint = session.connection().begin_nested()
        try:
            outcome = self._process(session, stored, raw, progress)
            savepoint.commit()
        except Exception:  # a bug: keep the message, say where it broke
            trace = traceback.format_exc()
            savepoint.rollback()
            log.exception("processing raw message %s failed; quarantined", stored.id)
            _forget_rolled_back(session)
            outcome = _Outcome(MessageStatus.QUARANTINED, progress.kind, error=clean(trace))
        write_message_outcome(session, stored.id, {
            "status": outcome.status.value, "kind": outcome.kind, "error": outcome.error,
            "duplicate_of_id": outcome.duplicate_of, "summary": outcome.summary, "processed_at": utcnow()})
        if outcome.duplicate_of is not None:
            return IngestResult(outcome.duplicate_of, False, outcome.status.value, outcome.kind,
                                stored_id=stored.id)
        return IngestResult(stored.id, True, outcome.status.value, outcome.kind, outcome.events,
                            outcome.error)

    def _process(self, session: Session, stored: StoredMessage, raw: bytes, progress: _Progress) -> _Outcome:
        notes: list[str] = []
        if self.max_message_bytes is not None and len(raw) > self.max_message_bytes:
            notes.append(f"the message has {len(raw)} bytes; only the first {self.max_message_bytes} were "
                         f"parsed (raise [parse].max_message_bytes to parse more)")
            raw = raw[:self.max_message_bytes]
        result = self.classifier(raw)
        kind = progress.kind = result.kind.value
        problem = self._problem(raw, result)
        found = self._attribute(session, raw, result) if problem is None else None
        hide = self.recipient_salt is not None and result.kind is Kind.COMPLAINT
        redact = recipient_redactor(result, self.recipient_salt) if hide and self.recipient_salt else None
        summary = _summary(result, found, [*notes, *result.errors], redact)
        if problem is not None:
            return _Outcome(MessageStatus.QUARANTINED, kind, error=clean(problem), summary=summary)
        if result.kind not in (Kind.BOUNCE, Kind.COMPLAINT):
            return _Outcome(MessageStatus.IGNORED, kind, summary=summary)
        if result.kind is Kind.COMPLAINT:
            holder = self._claim_complaint(session, stored.id, result)
            if holder is not None:
                return _Outcome(MessageStatus.DUPLICATE, kind, duplicate_of=holder, summary=summary)
        rows = event_rows(stored.id, result, stored.received_at, self.recipient_salt)
        # Inside the savepoint: a row the database refuses is a bug of this message, not of the batch.
        event_ids = insert_events(session, rows)
        if found is not None and rows:
            link_identities(session, event_ids, found, min(row["occurred_at"] for row in rows), redact or str)
        return _Outcome(MessageStatus.PARSED, kind, events=len(rows), summary=summary)

    @staticmethod
    def _problem(raw: bytes, result: Classification) -> str | None:
        """Why the message must be quarantined, or None."""
        if not raw.strip():
            return "the message is empty"
        crashes = [error for error in result.errors if error.startswith(_CRASHES)]
        if crashes:
            return "a parser failed (a bug; reprocess after the fix): " + "; ".join(crashes)
        if result.kind is Kind.OTHER and result.errors:
            return "not readable as a bounce or a complaint: " + "; ".join(result.errors)
        if result.kind is Kind.BOUNCE and not result.records:
            return "recognised as a bounce, but no failed recipient was found in it"
        return None

    def _attribute(self, session: Session, raw: bytes,
                   result: Classification) -> attribution.AttributionResult | None:
        if result.kind not in (Kind.BOUNCE, Kind.COMPLAINT):
            return None
        if result.kind is Kind.COMPLAINT and result.feedback is not None:
            envelope = attribution.Envelope(mail_from=result.feedback.original_mail_from,
                                            source_ip=result.feedback.source_ip)
        else:
            envelope = attribution.Envelope(bounce_rcpt=envelope_recipient(raw))
        return attribution.attribute(result.original, envelope, self.rules, SessionLedger(session))

    def _claim_complaint(self, session: Session, message_id: int, result: Classification) -> int | None:
        """Give the message its complaint key; the first copy's id when another message holds it."""
        original_id = result.original.message_id if result.original is not None else ""
        recipients = ",".join(sorted({r.recipient.strip().lower() for r in result.records if r.recipient}))
        key = complaint_dedup_key(reporter_of(result), original_id, recipients, self.recipient_salt)
        if key is None:
            return None
        message = session.get(RawMessage, message_id)
        if message is None:  # stored a moment ago in this transaction: a bug if missing
            raise RuntimeError(f"raw message {message_id} vanished")
        holder = claim_dedup_key(session, message, key)
        if holder is None:
            return None
        return holder.duplicate_of_id or holder.id


def _forget_rolled_back(session: Session) -> None:
    """After a rollback to the savepoint: what the session read or wrote inside it may be gone."""
    forget_identities(session)
    for loaded in list(session.identity_map.values()):
        if isinstance(loaded, Identity | RawMessage):
            session.expire(loaded)


def _summary(result: Classification, found: attribution.AttributionResult | None, errors: list[str],
             redact: Callable[[str], str] | None) -> dict[str, Any]:
    """The parse result, the attribution and its explanation, as JSON-able data for the message's row."""
    summary: dict[str, Any] = {"classification": {**result.as_dict(), "errors": errors},
                               "attribution": found.as_dict() if found is not None else None}
    if found is not None:
        summary["explanation"] = found.explain()
    # Walk it only when needed: a NUL (PostgreSQL refuses it in text) or a lone surrogate (it
    # refuses that in JSON) somewhere, or recipients to hide. Checking the JSON text is cheap.
    if redact is None and not _UNSAFE_JSON.search(json.dumps(summary)):
        return summary
    cleaned: dict[str, Any] = _json_safe(summary, redact or str)
    return cleaned


def envelope_recipient(raw: bytes) -> str:
    """The address the bounce was delivered to (our return path, a VERP address), or ''.

    The bounce is addressed to the original's envelope sender (RFC 3464 section 2, RFC 5321
    section 4.5.5); the MTA that delivered it to us recorded that address in Delivered-To /
    X-Original-To (Postfix local(8)), Envelope-To (Exim) or, failing those, Return-Path.
    """
    head = raw[:_HEADER_SCAN_BYTES].replace(b"\r\n", b"\n")
    end = head.find(b"\n\n")
    fields = header_fields(head[:end if end >= 0 else len(head)].decode("latin-1"))
    by_name: dict[str, str] = {}
    for name, value in fields:
        by_name.setdefault(name.lower(), value)  # the topmost: added by the last hop, ours
    for name in _ENVELOPE_RECIPIENT_FIELDS:
        address = first_address(by_name.get(name, ""))
        if address:
            return address
    return ""


def _json_safe(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` with every string cleaned for a JSON column (no NUL, no lone surrogate) and redacted."""
    if isinstance(value, str):
        return redact(clean(value))
    if isinstance(value, dict):
        return {redact(clean(key)): _json_safe(item, redact) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item, redact) for item in value]
    return value
