"""Stored rows -> the JSON objects of the read API (docs/api.md gives every field)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ingest import classify
from storage import BounceEvent, ComplaintEvent, Event, RawMessage

__all__ = ["attribution_json", "event_json", "message_json", "parse_result"]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_json(event: Event) -> dict[str, Any]:
    """One bounce or complaint event with the identities it is attributed to and how each was found."""
    body: dict[str, Any] = {
        "id": event.id,
        "kind": event.kind,
        "message_id": event.message_id,
        "occurred_at": _time(event.occurred_at),
        "recorded_at": _time(event.recorded_at),
        "recipient": event.recipient,
        "recipient_hashed": event.recipient_hashed,
        "recipient_domain": event.recipient_domain,
        "reason": event.reason,
        "original_message_id": event.original_message_id,
    }
    if isinstance(event, BounceEvent):
        body.update(status=event.status, reply_code=event.reply_code, hard=event.hard,
                    diagnostic=event.diagnostic, remote_mta=event.remote_mta)
    elif isinstance(event, ComplaintEvent):
        body.update(feedback_type=event.feedback_type, source_ip=event.source_ip, reporter=event.reporter)
    body["identities"] = [
        {"kind": link.identity.kind, "value": link.identity.value, "source": link.source,
         "detail": link.detail}
        for link in sorted(event.links, key=lambda link: (link.identity.kind, link.identity.value))
    ]
    return body


def parse_result(message: RawMessage) -> tuple[dict[str, Any], str]:
    """The message's parse result and where it came from: ``"stored"`` summary, or ``"raw"`` re-read.

    The pipeline stores the classification in the summary; a message stored without one (received
    but not processed yet, or a bug quarantined it) is classified again from its bytes, which
    never fails.
    """
    summary = message.summary or {}
    stored = summary.get("classification")
    if isinstance(stored, dict):
        return stored, "stored"
    return classify(message.raw).as_dict(), "raw"


def attribution_json(message: RawMessage) -> dict[str, Any] | None:
    """What attribution found in the original (every answer with its rule and evidence, the trust
    boundary, the headers not believed) and the sentences that explain it; None if it did not run.
    """
    summary = message.summary or {}
    found = summary.get("attribution")
    if not isinstance(found, dict):
        return None
    return {**found, "explanation": summary.get("explanation", [])}


def _linked(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every identity the message's events are attributed to, once, with how it was found and the
    ids of those events, in first-seen order."""
    seen: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for event in events:
        for found in event["identities"]:
            key = (found["kind"], found["value"], found["source"], found["detail"])
            seen.setdefault(key, {**found, "events": []})["events"].append(event["id"])
    return list(seen.values())


def message_json(message: RawMessage, events: Iterable[Event]) -> dict[str, Any]:
    """Everything known about one raw message (without its bytes: see ``raw_url``)."""
    rendered = [event_json(event) for event in events]
    parsed, parsed_from = parse_result(message)
    return {
        "id": message.id,
        "sha256": message.sha256,
        "size": message.size,
        "source": message.source,
        "source_ref": message.source_ref,
        "received_at": _time(message.received_at),
        "processed_at": _time(message.processed_at),
        "kind": message.kind,
        "status": message.status,
        "error": message.error,
        "duplicate_of": message.duplicate_of_id,
        "parse": parsed,
        "parse_from": parsed_from,
        "identities": _linked(rendered),
        "attribution": attribution_json(message),
        "events": rendered,
        "raw_url": f"/v1/messages/{message.id}/raw",
    }
