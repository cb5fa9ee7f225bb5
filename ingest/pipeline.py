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

``ingest_many`` does the same for a batch (the webhook's committer, ``app.py import``) with a few
statements for the whole batch instead of some ten per message, and no SAVEPOINT: the rows and
the answers are those of ``ingest`` on each message in turn. It handles the usual batch only; on
anything else (a bug while processing a message, a row another transaction stored meanwhile) it
raises, and the caller rolls back and uses ``ingest`` on each message, which quarantines or
deduplicates one message at a time.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

import attribution
from ingest.classify import Classification, Kind, classify
from ingest.events import (
    clean,
    event_rows,
    insert_batch_events,
    insert_events,
    recipient_redactor,
    reporter_of,
)
from ingest.identities import identity_links, link_identities
from ingest.ledger import PrefetchedLedger, SessionLedger
from rfc822 import first_address, header_fields
from storage import (
    Event,
    Identity,
    MessageStatus,
    RawMessage,
    StoredMessage,
    claim_dedup_key,
    complaint_dedup_key,
    dedup_key_holders,
    forget_identities,
    insert_event_identities,
    insert_messages,
    preload_identities,
    sha256_hex,
    store_message,
    stored_messages,
    utcnow,
    write_message_outcome,
)

if TYPE_CHECKING:
    from config import Settings

__all__ = ["Incoming", "IngestResult", "Pipeline", "envelope_recipient"]

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
# A surrogate code point in a str (text decoded with errors="surrogateescape", or two halves of a
# pair): the one thing besides NUL that the JSON of json.dumps(ensure_ascii=False) can hold and
# PostgreSQL may refuse. Searching that text for it is much cheaper than _UNSAFE_JSON everywhere.
_SURROGATE = re.compile("[\ud800-\udfff]")


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


@dataclass(frozen=True)
class Incoming:
    """A message handed to ``Pipeline.ingest_many``: its bytes and where it came from."""

    raw: bytes
    source: str
    source_ref: str | None = None


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


@dataclass(frozen=True)
class _Prepared:
    """What processing found in one message before writing anything: the pure part of ``_process``."""

    result: Classification
    problem: str | None  # why it must be quarantined, or None
    found: attribution.AttributionResult | None
    redact: Callable[[str], str] | None  # hides the complainants' addresses (hash_recipients)
    summary: dict[str, Any]


@dataclass
class _Decided:
    """What ``ingest_many`` decided for a new message, and the complaint key its row holds (or None)."""

    outcome: _Outcome
    key: str | None = None


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

    def ingest_many(self, session: Session, messages: Sequence[Incoming]) -> list[IngestResult]:
        """``ingest`` of each message in turn, with a few statements for all of them; the caller commits.

        The same rows and results as ``ingest`` (module docstring). Raises, leaving the caller's
        transaction to be rolled back, on what it does not handle: an exception while processing
        a message (``ingest`` would quarantine that one with its traceback) and a message or
        complaint key another transaction stored since this one looked (IntegrityError).
        """
        now = utcnow()
        digests = [sha256_hex(message.raw) for message in messages]
        before = stored_messages(session, set(digests))
        first: dict[str, int] = {}  # SHA-256 -> the position of its first copy in this batch
        for position, digest in enumerate(digests):
            if digest not in before:
                first.setdefault(digest, position)
        new = sorted(first.values())
        cut = {position: self._cut(messages[position].raw) for position in new}
        classified = {position: self.classifier(cut[position][0]) for position in new}
        ledger = PrefetchedLedger(session, [result.original.message_id for result in classified.values()
                                            if result.original is not None])
        prepared = {position: self._prepare(*cut[position], classified[position], ledger) for position in new}
        outcomes, repeats = self._decide(session, new, prepared)
        rows = [_message_row(messages[at], digests[at], outcomes[at], now) for at in new]
        ids = dict(zip(new, insert_messages(session, rows), strict=True))
        for position, claimant in repeats.items():  # now that the earlier complaint has a row
            outcome = replace(outcomes[position].outcome, duplicate_of=ids[claimant])
            outcomes[position].outcome = outcome
            write_message_outcome(session, ids[position], {
                "status": outcome.status.value, "kind": outcome.kind, "error": outcome.error,
                "duplicate_of_id": outcome.duplicate_of, "summary": outcome.summary, "processed_at": now})
        self._write_events(session, new, prepared, outcomes, ids, now)
        results: list[IngestResult] = []
        for position, digest in enumerate(digests):
            if digest in before:
                earlier = before[digest]
                results.append(IngestResult(earlier.duplicate_of or earlier.id, False,
                                            MessageStatus.DUPLICATE.value, earlier.kind))
                continue
            origin = first[digest]
            outcome = outcomes[origin].outcome
            target = outcome.duplicate_of
            if origin != position:  # the same bytes again in this batch: the first copy's row
                results.append(IngestResult(target or ids[origin], False, MessageStatus.DUPLICATE.value,
                                            outcome.kind))
            elif target is not None:
                results.append(IngestResult(target, False, outcome.status.value, outcome.kind,
                                            stored_id=ids[origin]))
            else:
                results.append(IngestResult(ids[origin], True, outcome.status.value, outcome.kind,
                                            outcome.events, outcome.error))
        return results

    def _decide(self, session: Session, new: list[int],
                prepared: dict[int, _Prepared]) -> tuple[dict[int, _Decided], dict[int, int]]:
        """What is decided for each new message, in batch order; and the repeated complaints.

        A complaint whose key an earlier message of the batch claimed is a duplicate of that one:
        the repeats map its position to the earlier one's, whose row has no id yet.
        """
        keys = {position: self._complaint_key(prepared[position].result) for position in new
                if prepared[position].problem is None and prepared[position].result.kind is Kind.COMPLAINT}
        holders = dedup_key_holders(session, {key for key in keys.values() if key is not None})
        claimed: dict[str, int] = {}
        repeats: dict[int, int] = {}
        decided: dict[int, _Decided] = {}
        for position in new:
            ready = prepared[position]
            kind, summary, key = ready.result.kind.value, ready.summary, keys.get(position)
            if ready.problem is not None:
                error = clean(ready.problem)
                outcome = _Outcome(MessageStatus.QUARANTINED, kind, error=error, summary=summary)
            elif ready.result.kind not in (Kind.BOUNCE, Kind.COMPLAINT):
                outcome = _Outcome(MessageStatus.IGNORED, kind, summary=summary)
            elif key is not None and key in holders:
                outcome = _Outcome(MessageStatus.DUPLICATE, kind, duplicate_of=holders[key], summary=summary)
            elif key is not None and key in claimed:
                repeats[position] = claimed[key]
                outcome = _Outcome(MessageStatus.DUPLICATE, kind, summary=summary)
            else:
                if key is not None:
                    claimed[key] = position
                events = len(ready.result.records)  # one per record (ingest.events.event_rows)
                outcome = _Outcome(MessageStatus.PARSED, kind, events=events, summary=summary)
            # Only the message that claims a complaint key holds it.
            decided[position] = _Decided(outcome, key if outcome.status is MessageStatus.PARSED else None)
        return decided, repeats

    def _write_events(self, session: Session, new: list[int], prepared: dict[int, _Prepared],
                      outcomes: dict[int, _Decided], ids: dict[int, int], now: datetime) -> None:
        """The events of every parsed message in one insert, then their identity links in another."""
        parsed = [position for position in new if outcomes[position].outcome.status is MessageStatus.PARSED]
        rows = {position: event_rows(ids[position], prepared[position].result, now, self.recipient_salt)
                for position in parsed}
        event_ids = iter(insert_batch_events(session, [row for position in parsed for row in rows[position]]))
        preload_identities(session, [(kind.value, clean(best.value).strip()) for position in parsed
                                     if (found := prepared[position].found) is not None and rows[position]
                                     for kind in attribution.IdentityKind if (best := found.best(kind))])
        links: list[dict[str, Any]] = []
        for position in parsed:
            mine = [next(event_ids) for _ in rows[position]]
            found = prepared[position].found
            if found is not None and mine:
                seen_at = min(row["occurred_at"] for row in rows[position])
                links += identity_links(session, mine, found, seen_at, prepared[position].redact or str)
        insert_event_identities(session, links)

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
        raw, notes = self._cut(raw)
        result = self.classifier(raw)
        progress.kind = result.kind.value
        prepared = self._prepare(raw, notes, result, SessionLedger(session))
        kind = result.kind.value
        if prepared.problem is not None:
            return _Outcome(MessageStatus.QUARANTINED, kind, error=clean(prepared.problem),
                            summary=prepared.summary)
        if result.kind not in (Kind.BOUNCE, Kind.COMPLAINT):
            return _Outcome(MessageStatus.IGNORED, kind, summary=prepared.summary)
        if result.kind is Kind.COMPLAINT:
            holder = self._claim_complaint(session, stored.id, result)
            if holder is not None:
                return _Outcome(MessageStatus.DUPLICATE, kind, duplicate_of=holder, summary=prepared.summary)
        rows = event_rows(stored.id, result, stored.received_at, self.recipient_salt)
        # Inside the savepoint: a row the database refuses is a bug of this message, not of the batch.
        event_ids = insert_events(session, rows)
        if prepared.found is not None and rows:
            link_identities(session, event_ids, prepared.found, min(row["occurred_at"] for row in rows),
                            prepared.redact or str)
        return _Outcome(MessageStatus.PARSED, kind, events=len(rows), summary=prepared.summary)

    def _cut(self, raw: bytes) -> tuple[bytes, list[str]]:
        """The part of ``raw`` that is parsed ([parse].max_message_bytes), and a note when it was cut."""
        if self.max_message_bytes is None or len(raw) <= self.max_message_bytes:
            return raw, []
        return raw[:self.max_message_bytes], [
            f"the message has {len(raw)} bytes; only the first {self.max_message_bytes} were "
            f"parsed (raise [parse].max_message_bytes to parse more)"]

    def _prepare(self, raw: bytes, notes: list[str], result: Classification,
                 ledger: attribution.Ledger) -> _Prepared:
        """Attribute the classified message and make its summary; no row is written."""
        problem = self._problem(raw, result)
        found = self._attribute(ledger, raw, result) if problem is None else None
        hide = self.recipient_salt is not None and result.kind is Kind.COMPLAINT
        redact = recipient_redactor(result, self.recipient_salt) if hide and self.recipient_salt else None
        summary = _summary(result, found, [*notes, *result.errors], redact)
        return _Prepared(result, problem, found, redact, summary)

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

    def _attribute(self, ledger: attribution.Ledger, raw: bytes,
                   result: Classification) -> attribution.AttributionResult | None:
        if result.kind not in (Kind.BOUNCE, Kind.COMPLAINT):
            return None
        if result.kind is Kind.COMPLAINT and result.feedback is not None:
            envelope = attribution.Envelope(mail_from=result.feedback.original_mail_from,
                                            source_ip=result.feedback.source_ip)
        else:
            envelope = attribution.Envelope(bounce_rcpt=envelope_recipient(raw))
        return attribution.attribute(result.original, envelope, self.rules, ledger)

    def _complaint_key(self, result: Classification) -> str | None:
        """The complaint's dedup key (same reporter, original Message-ID and recipients), or None."""
        original_id = result.original.message_id if result.original is not None else ""
        recipients = ",".join(sorted({r.recipient.strip().lower() for r in result.records if r.recipient}))
        return complaint_dedup_key(reporter_of(result), original_id, recipients, self.recipient_salt)

    def _claim_complaint(self, session: Session, message_id: int, result: Classification) -> int | None:
        """Give the message its complaint key; the first copy's id when another message holds it."""
        key = self._complaint_key(result)
        if key is None:
            return None
        message = session.get(RawMessage, message_id)
        if message is None:  # stored a moment ago in this transaction: a bug if missing
            raise RuntimeError(f"raw message {message_id} vanished")
        holder = claim_dedup_key(session, message, key)
        if holder is None:
            return None
        return holder.duplicate_of_id or holder.id


def _message_row(message: Incoming, digest: str, decided: _Decided, now: datetime) -> dict[str, Any]:
    """The whole ``raw_messages`` row of a new message of ``ingest_many``: stored and processed at once."""
    outcome = decided.outcome
    return {"sha256": digest, "source": clean(message.source, 255),
            "source_ref": None if message.source_ref is None else clean(message.source_ref),
            "received_at": now, "size": len(message.raw), "compressed": RawMessage.compress(message.raw),
            "kind": outcome.kind, "status": outcome.status.value, "error": outcome.error,
            "dedup_key": decided.key,
            "duplicate_of_id": outcome.duplicate_of, "summary": outcome.summary, "processed_at": now}


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
    if redact is None and _json_is_safe(summary):
        return summary
    cleaned: dict[str, Any] = _json_safe(summary, redact or str)
    return cleaned


def _json_is_safe(summary: dict[str, Any]) -> bool:
    """True when ``summary``'s JSON has no NUL and no lone surrogate (checked in its text, cheaply)."""
    text = json.dumps(summary, ensure_ascii=False)
    if "\\u0000" in text:
        return False
    # Only a surrogate needs the exact look: a pair of halves is a character, a lone one is not.
    return not _SURROGATE.search(text) or not _UNSAFE_JSON.search(json.dumps(summary))


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
