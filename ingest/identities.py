"""Link events to the identities attribution found, with how each was found.

Only the best answer per kind is linked, so that an event counts once against each kind; the
identities themselves are read or created by ``storage.identity_id`` (once per transaction, seen
times widened before the commit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

import attribution
from ingest.events import clean
from storage import identity_id, insert_event_identities

__all__ = ["identity_links", "link_identities"]


def link_identities(session: Session, event_ids: Sequence[int], found: attribution.AttributionResult,
                    seen_at: datetime, redact: Callable[[str], str] = str) -> int:
    """Link every event to the best identity of each kind ``found`` names, with how it was found.

    The other answers stay in the message's summary for explanations. ``redact`` is applied to
    the details (``ingest.events.recipient_redactor``). Returns the links written.
    """
    rows = identity_links(session, event_ids, found, seen_at, redact)
    insert_event_identities(session, rows)
    return len(rows)


def identity_links(session: Session, event_ids: Sequence[int], found: attribution.AttributionResult,
                   seen_at: datetime, redact: Callable[[str], str] = str) -> list[dict[str, Any]]:
    """The ``event_identities`` rows ``link_identities`` writes, not written: for a batch's one insert."""
    if not event_ids:
        return []
    links: list[tuple[int, attribution.Attribution]] = []
    for kind in attribution.IdentityKind:
        best = found.best(kind)
        value = clean(best.value).strip() if best is not None else ""
        if best is None or not value:
            continue
        links.append((identity_id(session, kind.value, value, seen_at), best))
    return [{"event_id": event_id, "identity_id": identity, "source": clean(best.source.value, 64),
             "detail": redact(clean(best.detail))} for event_id in event_ids for identity, best in links]
