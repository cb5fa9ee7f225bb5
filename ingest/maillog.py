"""Fill the Message-ID ledger from the MTA's log, and record its delivery failures as bounces.

``maillog`` (pure) reads the lines; this module opens the logs (plain, gzip-rotated, or standard
input that ``tail -F`` keeps feeding), writes the facts with ``storage.add_ledger_entry`` and
commits in batches: every ``batch_size`` facts, and at least every ``commit_seconds`` while facts
wait, so that a log followed for days fills the ledger within a second of each message, even when
the log then goes quiet (standard input is read by a thread, which lets the writer commit while
no line comes).

The same Message-ID twice (a message re-queued through a content filter, a log read again) keeps
its first entry: ``add_ledger_entry`` inserts with ON CONFLICT DO NOTHING, first writer wins.

A delivery failure (``maillog.DeliveryFailure``) is written as the DSN the MTA sent to the sender
(``maillog.dsn.delivery_report``) and handed to the ingest pipeline with source ``maillog`` and
the log's file name (``stdin`` for ``-``) as its reference: its bytes are kept, it is classified
and attributed like a bounce that came back, and the same log lines give the same bytes, stored
once. Each batch commits the ledger's facts first, then the failures in a transaction of their
own, so a failure is attributed through the entry its message's earlier lines wrote, and a
failure the pipeline cannot store never undoes the ledger.
"""

from __future__ import annotations

import gzip
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from ingest.pipeline import Incoming, IngestResult, Pipeline
from maillog import MAX_LINE, DeliveryFailure, Fact, LedgerFact, LogReader, ReadCounts, delivery_report
from storage import LedgerEntry, MessageStatus, add_ledger_entry, normalize_message_id, rows_in

__all__ = ["LedgerFill", "LedgerWriter", "fill_ledger", "follow", "log_lines"]

log = logging.getLogger(__name__)
SOURCE = "maillog"  # raw_messages.source of the DSNs made from log lines

_KNOWN = select(LedgerEntry.message_id).where(
    LedgerEntry.message_id.in_(bindparam("message_ids", expanding=True)))
# A value longer than its column cannot be stored: such a fact is left out, not cut short.
_LIMITS = {name: LedgerEntry.__table__.c[name].type.length  # type: ignore[attr-defined]
           for name in ("message_id", "account", "script", "client", "sender")}
_GZIP_MAGIC = b"\x1f\x8b"
# Bytes of one line read at most: a UTF-8 character is 4 bytes at most (an invalid byte decodes to
# one character), so a line cut here is still longer than MAX_LINE characters, which the reader skips.
_READ_LIMIT = 4 * (MAX_LINE + 1)


@dataclass
class LedgerFill:
    """What ``fill_ledger`` did: the reader's counts and what became of its facts."""

    counts: ReadCounts = field(default_factory=ReadCounts)
    written: int = 0  # new ledger entries
    known: int = 0  # Message-IDs the ledger had already (the first entry stays)
    left_out: int = 0  # not authenticated, with --authenticated-only
    too_long: int = 0  # a value longer than its column
    unreadable: list[str] = field(default_factory=list)  # "path: why", files not read to their end
    source_ref: str = ""  # the file being read ("stdin" for -): the reference of its failures' DSNs
    bounced: int = 0  # failures read, status=bounced or Exim **
    deferred: int = 0  # failures read, status=deferred or Exim ==
    recorded: int = 0  # failures stored as a new bounce with its events
    repeated: int = 0  # the same failure stored before (the same log lines read again)
    no_event: int = 0  # stored, but the pipeline found no bounce in it (quarantined: see the message)
    failures_left_out: int = 0  # not authenticated (--authenticated-only), or --no-bounces
    not_stored: list[str] = field(default_factory=list)  # "queue id: why", failures the database refused

    def lines(self) -> list[str]:
        """The summary the command prints."""
        counts = self.counts
        return [f"read {counts.lines} lines: {counts.used} used, {counts.skipped} skipped",
                f"facts {counts.facts}: {self.written} written, {self.known} already in the ledger, "
                f"{self.left_out} left out (not authenticated), {self.too_long} too long",
                f"messages without a Message-ID: {counts.dropped}",
                f"delivery failures {counts.failures} ({self.bounced} bounced, {self.deferred} deferred): "
                f"{self.recorded} recorded, {self.repeated} already recorded, {self.no_event} without an "
                f"event, {self.failures_left_out} left out, {len(self.not_stored)} not stored",
                *(f"unreadable: {item}" for item in self.unreadable),
                *(f"not stored: {item}" for item in self.not_stored)]


class LedgerWriter:
    """Buffers facts and failures and writes them, one transaction each per batch; ``tick`` commits a
    batch that waited. Without a ``pipeline`` failures are left out (``--no-bounces``)."""

    def __init__(self, sessions: sessionmaker[Session], fill: LedgerFill, batch_size: int = 500,
                 commit_seconds: float = 1.0, authenticated_only: bool = False,
                 clock: Callable[[], float] = time.monotonic, pipeline: Pipeline | None = None) -> None:
        self._sessions, self._fill, self._clock = sessions, fill, clock
        self._batch_size, self._commit_seconds = batch_size, commit_seconds
        self._authenticated_only = authenticated_only
        self._pipeline = pipeline
        self._batch: list[LedgerFact] = []
        self._failures: list[tuple[DeliveryFailure, Incoming]] = []
        self._since = 0.0

    def add(self, fact: Fact) -> None:
        """Take one fact or failure; write the batch when it is full."""
        if isinstance(fact, DeliveryFailure):
            self._add_failure(fact)
            return
        if self._authenticated_only and not fact.authenticated:
            self._fill.left_out += 1
            return
        if any(len(getattr(fact, name)) > limit for name, limit in _LIMITS.items()):
            self._fill.too_long += 1
            return
        self._hold()
        self._batch.append(fact)
        if len(self._batch) + len(self._failures) >= self._batch_size:
            self.commit()

    def _add_failure(self, failure: DeliveryFailure) -> None:
        if failure.bounced:
            self._fill.bounced += 1
        else:
            self._fill.deferred += 1
        if self._pipeline is None or (self._authenticated_only and not failure.authenticated):
            self._fill.failures_left_out += 1
            return
        self._hold()
        self._failures.append((failure, Incoming(delivery_report(failure), SOURCE, self._fill.source_ref)))
        if len(self._batch) + len(self._failures) >= self._batch_size:
            self.commit()

    def _hold(self) -> None:
        if not self._batch and not self._failures:
            self._since = self._clock()

    def tick(self) -> None:
        """Write the batch if its first fact has waited ``commit_seconds``."""
        if (self._batch or self._failures) and self._clock() - self._since >= self._commit_seconds:
            self.commit()

    def commit(self) -> None:
        """Write and commit the facts held (first writer wins for each Message-ID), then the failures."""
        self._commit_facts()
        self._commit_failures()

    def _commit_failures(self) -> None:
        if not self._failures or self._pipeline is None:
            return
        batch, self._failures = self._failures, []
        try:
            with self._sessions() as session, session.begin():
                results = self._pipeline.ingest_many(session, [incoming for _, incoming in batch])
        except Exception:  # the batch path refuses the unusual: one at a time, each with its savepoint
            log.info("storing %d delivery failures together failed; storing them in turn", len(batch),
                     exc_info=True)
            for failure, incoming in batch:
                self._commit_one(failure, incoming)
            return
        for result in results:
            self._count(result)

    def _commit_one(self, failure: DeliveryFailure, incoming: Incoming) -> None:
        assert self._pipeline is not None
        try:
            with self._sessions() as session, session.begin():
                result = self._pipeline.ingest(session, incoming.raw, source=incoming.source,
                                               source_ref=incoming.source_ref)
        except Exception as error:  # the database refused this one: say so, go on
            log.exception("could not store the delivery failure of %s to %s", failure.queue_id,
                          failure.recipient)
            self._fill.not_stored.append(f"{failure.queue_id} to {failure.recipient}: "
                                         f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}")
            return
        self._count(result)

    def _count(self, result: IngestResult) -> None:
        if not result.created:
            self._fill.repeated += 1
        elif result.status == MessageStatus.PARSED.value and result.events:
            self._fill.recorded += 1
        else:
            self._fill.no_event += 1

    def _commit_facts(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        with self._sessions() as session, session.begin():
            keys = {normalize_message_id(fact.message_id) for fact in batch}
            seen = {row[0] for row in rows_in(session.connection(), _KNOWN, "message_ids", keys)}
            for fact in batch:
                key = normalize_message_id(fact.message_id)
                if key in seen:
                    self._fill.known += 1
                    continue
                seen.add(key)
                add_ledger_entry(session, fact.message_id, account=fact.account or None,
                                 script=fact.script or None, client=fact.client or None,
                                 sender=fact.sender or None)
                self._fill.written += 1


def fill_ledger(sessions: sessionmaker[Session], lines: Iterable[str | None], *, batch_size: int = 500,
                commit_seconds: float = 1.0, authenticated_only: bool = False,
                max_pending: int = 10_000, fill: LedgerFill | None = None,
                pipeline: Pipeline | None = None) -> LedgerFill:
    """Read ``lines`` (None: nothing new for a moment) and write their facts into the ledger, and
    their delivery failures through ``pipeline`` (None: failures are left out).

    Commits every ``batch_size`` facts and failures, within ``commit_seconds`` of one, and at the
    end (also when interrupted: KeyboardInterrupt or SystemExit from SIGTERM still commit what was
    read). A failure's DSN names ``fill.source_ref``, which ``log_lines`` sets to the file it reads.
    """
    fill = fill or LedgerFill()
    reader = LogReader(max_pending=max_pending)
    fill.counts = reader.counts
    writer = LedgerWriter(sessions, fill, batch_size, commit_seconds, authenticated_only, pipeline=pipeline)
    try:
        for line in lines:
            for fact in reader.feed(line) if line is not None else ():
                writer.add(fact)
            writer.tick()
        for fact in reader.flush():
            writer.add(fact)
    finally:
        writer.commit()
    return fill


def log_lines(paths: Iterable[str], stdin: BinaryIO, fill: LedgerFill,
              tick_seconds: float = 0.2) -> Iterator[str | None]:
    """The lines of each path in turn (gzip ones unpacked; ``-`` is ``stdin``, followed until it ends).

    Bytes are read as UTF-8, any invalid byte replaced: a log line is foreign input. A file that
    cannot be read to its end is noted in ``fill.unreadable`` and the next one is read. While a
    file's lines are given, ``fill.source_ref`` names it (``stdin`` for ``-``).
    """
    for path in paths:
        fill.source_ref = "stdin" if path == "-" else path
        if path == "-":
            yield from follow(stdin, tick_seconds)
            continue
        try:
            with _open(Path(path)) as stream:
                for raw in _bounded_lines(stream):
                    yield raw.decode("utf-8", "replace")
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            fill.unreadable.append(f"{path}: {error}")


def _bounded_lines(stream: BinaryIO) -> Iterator[bytes]:
    """The lines of ``stream``, each read into memory up to ``_READ_LIMIT`` bytes only.

    A longer one (a binary file, a line with no end) gives its first ``_READ_LIMIT`` bytes, which
    decode to more than ``MAX_LINE`` characters, so the reader skips it; the rest of it is read
    and dropped piece by piece.
    """
    while True:
        raw = stream.readline(_READ_LIMIT)
        if not raw:
            return
        yield raw
        while len(raw) == _READ_LIMIT and not raw.endswith(b"\n"):
            raw = stream.readline(_READ_LIMIT)


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as probe:
        packed = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if packed else open(path, "rb")  # type: ignore[return-value]


def follow(stream: BinaryIO, tick_seconds: float = 0.2) -> Iterator[str | None]:
    """The lines of ``stream`` as they come, and None every ``tick_seconds`` while none comes.

    A thread reads (a read blocks), so the caller can commit on time while the log is quiet. The
    queue is bounded: a reader that falls behind holds up the thread, not memory.
    """
    lines: queue.Queue[bytes | None] = queue.Queue(maxsize=10_000)

    def read() -> None:
        try:
            for raw in _bounded_lines(stream):
                lines.put(raw)
        finally:
            lines.put(None)

    threading.Thread(target=read, name="maillog-stdin", daemon=True).start()
    while True:
        try:
            raw = lines.get(timeout=tick_seconds)
        except queue.Empty:
            yield None
            continue
        if raw is None:
            return
        yield raw.decode("utf-8", "replace")
