"""Import an archive (maildir, mbox, directories of .eml files) through the pipeline, in batches.

Messages are committed ``batch_size`` at a time: one commit per message would make SQLite sync the
disk for each. A batch is stored with ``Pipeline.ingest_many`` (a few statements for all of it);
when that raises, it is stored again with ``Pipeline.ingest`` on each message, which quarantines a
message whose processing fails. A message that the pipeline cannot even store (a database error)
must not take its batch down with it, so a batch that still fails is rolled back and replayed one
message per transaction: the failing message is reported, the others are kept. Re-running an
import is safe: every message already stored is a duplicate and changes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from ingest.pipeline import Incoming, IngestResult, Pipeline
from ingest.sources import SourceMessage, iter_messages

__all__ = ["ImportSummary", "import_messages", "import_paths", "source_ref"]

log = logging.getLogger(__name__)

# Called after each message is committed: the message, its result (None when it failed), the error.
Progress = Callable[[SourceMessage, IngestResult | None, str | None], None]


@dataclass
class ImportSummary:
    """What an import did: counts by outcome and kind, and the messages that could not be stored."""

    read: int = 0
    new: int = 0  # stored for the first time (parsed, ignored or quarantined)
    duplicates: int = 0  # the same bytes, or the same complaint, were stored before
    parsed: int = 0
    quarantined: int = 0
    ignored: int = 0
    events: int = 0  # bounce and complaint events written
    kinds: Counter[str] = field(default_factory=Counter)
    unreadable: list[str] = field(default_factory=list)  # "path: why", the file gave no bytes
    failed: list[str] = field(default_factory=list)  # "path: error", the database refused the message

    def add(self, result: IngestResult) -> None:
        """Count one message's result."""
        self.kinds[result.kind] += 1
        self.events += result.events
        if not result.created:
            self.duplicates += 1
            return
        self.new += 1
        if result.status == "parsed":
            self.parsed += 1
        elif result.status == "quarantined":
            self.quarantined += 1
        elif result.status == "ignored":
            self.ignored += 1

    def lines(self) -> list[str]:
        """The summary as a person reads it at the end of an import."""
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.kinds.items())) or "none"
        out = [f"read {self.read} messages: {self.new} new, {self.duplicates} duplicates, "
               f"{len(self.unreadable)} unreadable, {len(self.failed)} failed",
               f"new: {self.parsed} parsed, {self.ignored} ignored, {self.quarantined} quarantined",
               f"events written: {self.events}",
               f"by kind: {kinds}"]
        out += [f"unreadable: {item}" for item in self.unreadable]
        out += [f"failed: {item}" for item in self.failed]
        return out

    def as_dict(self) -> dict[str, object]:
        """The summary as JSON-able data."""
        return {"read": self.read, "new": self.new, "duplicates": self.duplicates, "parsed": self.parsed,
                "ignored": self.ignored, "quarantined": self.quarantined, "events": self.events,
                "kinds": dict(self.kinds), "unreadable": list(self.unreadable), "failed": list(self.failed)}


def source_ref(message: SourceMessage) -> str:
    """Where an imported message can be found again: its path, and its position in an mbox file."""
    return message.path if message.mbox_index is None else f"{message.path}#{message.mbox_index}"


def import_paths(sessions: sessionmaker[Session], pipeline: Pipeline, paths: Sequence[str], *,
                 batch_size: int = 200, progress: Progress | None = None) -> ImportSummary:
    """Import every message under ``paths`` (ingest.iter_messages); raises SourceError for a bad path."""
    # Read whole: the raw message is kept as it is; the pipeline cuts what it parses.
    return import_messages(sessions, pipeline, iter_messages(paths), batch_size=batch_size, progress=progress)


def import_messages(sessions: sessionmaker[Session], pipeline: Pipeline, messages: Iterable[SourceMessage], *,
                    batch_size: int = 200, progress: Progress | None = None,
                    source: str = "import") -> ImportSummary:
    """Ingest ``messages``, committing every ``batch_size``; see the module docstring."""
    summary = ImportSummary()
    for batch in _batches(messages, max(1, batch_size)):
        summary.read += len(batch)
        readable = []
        for message in batch:
            if not message.raw and message.errors:
                summary.unreadable.append(f"{source_ref(message)}: {'; '.join(message.errors)}")
                if progress is not None:
                    progress(message, None, "; ".join(message.errors))
            else:
                readable.append(message)
        for message, result, error in _ingest_batch(sessions, pipeline, readable, source):
            if result is not None:
                summary.add(result)
            else:
                summary.failed.append(f"{source_ref(message)}: {error}")
            if progress is not None:
                progress(message, result, error)
    return summary


def _batches(messages: Iterable[SourceMessage], size: int) -> Iterator[list[SourceMessage]]:
    batch: list[SourceMessage] = []
    for message in messages:
        batch.append(message)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


Outcome = tuple[SourceMessage, IngestResult | None, str | None]


def _ingest_batch(sessions: sessionmaker[Session], pipeline: Pipeline, batch: list[SourceMessage],
                  source: str) -> list[Outcome]:
    if not batch:
        return []
    try:
        return _commit_many(sessions, pipeline, batch, source)
    except Exception as error:
        log.info("storing a batch of %d messages together failed (%s); storing them in turn", len(batch),
                 _first_line(error), exc_info=True)
    if len(batch) == 1:
        return [_ingest_one(sessions, pipeline, batch[0], source)]
    try:
        return _commit(sessions, pipeline, batch, source)
    except Exception:
        log.warning("a batch of %d messages failed; storing them one by one", len(batch), exc_info=True)
    return [_ingest_one(sessions, pipeline, message, source) for message in batch]


def _ingest_one(sessions: sessionmaker[Session], pipeline: Pipeline, message: SourceMessage,
                source: str) -> Outcome:
    try:
        return _commit(sessions, pipeline, [message], source)[0]
    except Exception as error:  # the database refused this one message: report it, go on
        log.exception("could not store %s", source_ref(message))
        return message, None, f"{type(error).__name__}: {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    # SQLAlchemy's messages go on with the SQL and its parameters: the first line says what failed.
    return (str(error).strip().splitlines() or [""])[0]


def _commit_many(sessions: sessionmaker[Session], pipeline: Pipeline, batch: list[SourceMessage],
                 source: str) -> list[Outcome]:
    """``Pipeline.ingest_many`` on ``batch`` in one transaction, committed; raises when it cannot."""
    with sessions() as session, session.begin():
        results = pipeline.ingest_many(session, [Incoming(message.raw, source, source_ref(message))
                                                 for message in batch])
    return [(message, result, None) for message, result in zip(batch, results, strict=True)]


def _commit(sessions: sessionmaker[Session], pipeline: Pipeline, batch: list[SourceMessage],
            source: str) -> list[Outcome]:
    """Ingest ``batch`` in one transaction and commit it; any error rolls the whole batch back."""
    with sessions() as session, session.begin():
        return [(message, pipeline.ingest(session, message.raw, source=source,
                                          source_ref=source_ref(message)), None) for message in batch]
