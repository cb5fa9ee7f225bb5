"""Run the pipeline again on stored raw messages: after a fix, the quarantine empties itself.

``python app.py reprocess --all-quarantined`` (or given ids) reads each message's stored bytes and
replaces whatever was learnt from them (status, summary, events and their links). Batches commit
together; a batch the database refuses is replayed one message at a time, as imports do.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ingest.pipeline import IngestResult, Pipeline
from storage import MessageStatus, RawMessage

__all__ = ["ReprocessSummary", "quarantined_ids", "reprocess_ids"]

log = logging.getLogger(__name__)

# Called after each message is committed: its id, its new result (None when it failed), the error.
Progress = Callable[[int, IngestResult | None, str | None], None]


@dataclass
class ReprocessSummary:
    """What a reprocess run did: new statuses, events written, ids not found or refused."""

    statuses: Counter[str] = field(default_factory=Counter)
    events: int = 0
    missing: list[int] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The summary as a person reads it."""
        statuses = ", ".join(f"{status} {count}" for status, count in sorted(self.statuses.items())) or "none"
        out = [f"reprocessed {sum(self.statuses.values())} messages: {statuses}",
               f"events written: {self.events}"]
        if self.missing:
            out.append("no such message: " + ", ".join(str(number) for number in self.missing))
        out += [f"failed: {item}" for item in self.failed]
        return out


def quarantined_ids(session: Session) -> list[int]:
    """The ids of every quarantined message, oldest first."""
    statement = (select(RawMessage.id).where(RawMessage.status == MessageStatus.QUARANTINED.value)
                 .order_by(RawMessage.id))
    return list(session.scalars(statement))


def reprocess_ids(sessions: sessionmaker[Session], pipeline: Pipeline, ids: Sequence[int], *,
                  batch_size: int = 200, progress: Progress | None = None) -> ReprocessSummary:
    """Reprocess the messages ``ids``, committing every ``batch_size``."""
    summary = ReprocessSummary()
    for batch in _chunks(list(ids), max(1, batch_size)):
        try:
            outcomes = _commit(sessions, pipeline, batch)
        except Exception:
            log.warning("a batch of %d messages failed; reprocessing them one by one", len(batch),
                        exc_info=True)
            outcomes = [_one(sessions, pipeline, number) for number in batch]
        for number, result, error in outcomes:
            if result is not None:
                summary.statuses[result.status] += 1
                summary.events += result.events
            elif error is None:
                summary.missing.append(number)
            else:
                summary.failed.append(f"message {number}: {error}")
            if progress is not None:
                progress(number, result, error)
    return summary


Outcome = tuple[int, IngestResult | None, str | None]


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _commit(sessions: sessionmaker[Session], pipeline: Pipeline, batch: list[int]) -> list[Outcome]:
    with sessions() as session, session.begin():
        outcomes: list[Outcome] = []
        for number in batch:
            message = session.get(RawMessage, number)
            outcomes.append((number, None if message is None else pipeline.reprocess(session, message), None))
        return outcomes


def _one(sessions: sessionmaker[Session], pipeline: Pipeline, number: int) -> Outcome:
    try:
        return _commit(sessions, pipeline, [number])[0]
    except Exception as error:  # the database refused this message: report it, go on
        log.exception("could not reprocess message %s", number)
        return number, None, f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
