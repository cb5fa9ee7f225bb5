"""Group commit for the webhook: many requests' messages stored in one transaction, one commit.

A message must be in the database before its request is answered 2xx (DESIGN.md, "Data flow",
step 1), so each POST /v1/ingest waits for a durable commit. One commit per request made that
wait the webhook's limit (SQLite in WAL mode with ``synchronous=FULL`` syncs the log at every
commit). Here the requests hand their bytes to one committer thread, which owns the write
session: it takes what is queued (up to ``max_batch`` messages, waiting at most ``max_wait``
seconds for more after the first), stores them all with ``Pipeline.ingest_many`` (a few
statements for the whole batch), commits once, and only then answers every request of the batch.

- When ``ingest_many`` raises (a bug while processing a message, a message another writer stored
  meanwhile), the batch is rolled back and stored again one message at a time, each inside a
  SAVEPOINT of its own, still with one commit: a message whose own storing fails (its SAVEPOINT
  is rolled back) is answered ``CommitFailed`` and the others go on; a bug while *processing* it
  is the pipeline's business: the message is stored and quarantined, as for any collector.
  PostgreSQL's and SQLite's behaviour is the same: it is plain SAVEPOINT / COMMIT.
- A failed COMMIT answers ``CommitFailed`` to every request of the batch: none was acknowledged,
  the clients send them again (idempotent: the same bytes are stored once).
- The queue is bounded: when it is full, ``submit`` raises ``QueueFull`` at once (the webhook's
  503 with Retry-After) instead of letting requests pile up; nothing is dropped silently.
- The same bytes twice in one batch are stored once: the second gets the first's id, ``created``
  False.
- A request may name the API token it was let in with (``token_sha256``): the committer confirms
  that token is still live in the batch's transaction, with one query for the whole batch, and
  answers ``TokenRevoked`` without storing when it is not. So the webhook can let a request in
  on the policy node's in-memory copy of the tokens (up to a second old) instead of a database
  session of its own, and a revoked token still stores nothing from the moment it is revoked.

The committer is started on the first ``submit`` and stopped by ``stop`` (``Runtime.close``),
which answers what is queued before it returns.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ingest.pipeline import Incoming, IngestResult, Pipeline
from storage import forget_identities, live_token_hashes

__all__ = ["CommitFailed", "Committer", "QueueFull", "TokenRevoked"]

log = logging.getLogger(__name__)

MAX_BATCH = 64  # messages per transaction
MAX_WAIT = 0.005  # seconds the committer waits for more messages after the first of a batch
MAX_QUEUE = 256  # messages waiting for the committer; one more is refused (503)
ANSWER_TIMEOUT = 60.0  # seconds a request waits for its commit before it is refused (503)


class QueueFull(Exception):
    """Too many messages are waiting for the committer: refuse this one, the client retries later."""


class CommitFailed(Exception):
    """The message was not committed (or not in time): it is not acknowledged."""


class TokenRevoked(Exception):
    """The request's API token was revoked (or deleted) before its message was stored: nothing was."""


@dataclass
class _Request:
    raw: bytes
    source: str
    source_ref: str | None
    token_sha256: str | None = None  # confirmed live in the batch's transaction when set
    answer: Future[IngestResult] = field(default_factory=Future)


# Put in the queue by ``stop``: the committer finishes the batch it holds and ends.
_STOP = _Request(b"", "", None)


class Committer:
    """The one writer of webhook messages: batches them, commits once per batch, then answers."""

    def __init__(self, sessions: sessionmaker[Session], pipeline: Pipeline, *, max_batch: int = MAX_BATCH,
                 max_wait: float = MAX_WAIT, max_queue: int = MAX_QUEUE,
                 answer_timeout: float = ANSWER_TIMEOUT) -> None:
        """``sessions`` opens the write sessions; the bounds are per batch, queue and request."""
        self.sessions = sessions
        self.pipeline = pipeline
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.answer_timeout = answer_timeout
        self._queue: queue.Queue[_Request] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def waiting(self) -> int:
        """Messages queued and not yet taken into a batch."""
        return self._queue.qsize()

    def submit(self, raw: bytes, *, source: str, source_ref: str | None = None,
               token_sha256: str | None = None) -> IngestResult:
        """Store ``raw`` and what the pipeline learns from it; returns once that is committed.

        Raises QueueFull when too many messages wait already, CommitFailed when it was not
        committed (a database error, the committer stopping, or no commit within
        ``answer_timeout``: then it may still be committed later, and a retry answers 200),
        TokenRevoked when ``token_sha256`` is given and no live token has that hash any more.
        """
        request = _Request(raw, source, source_ref, token_sha256)
        with self._lock:
            if self._stopped:
                raise CommitFailed("the service is stopping")
            self._start()
            try:
                self._queue.put_nowait(request)
            except queue.Full:
                raise QueueFull(f"{self._queue.maxsize} messages are waiting to be stored") from None
        try:
            return request.answer.result(timeout=self.answer_timeout)
        except TimeoutError:
            raise CommitFailed(f"not committed within {self.answer_timeout:g} seconds") from None

    def stop(self, timeout: float = 30.0) -> None:
        """Commit and answer what is queued, then end the committer thread."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        if thread is None:
            return
        try:  # after every accepted request: submit checks _stopped under the lock
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.error("webhook: the committer did not drain its queue in %g seconds", timeout)
            return
        thread.join(timeout)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ingest-committer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            if batch[0] is _STOP:
                return
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    request = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
                if request is _STOP:
                    stopping = True
                    break
                batch.append(request)
            self._commit(batch)

    def _commit(self, batch: list[_Request]) -> None:
        """Store every message of ``batch`` in one transaction, commit once, then answer each request.

        First with ``Pipeline.ingest_many`` (a few statements for the whole batch); when that
        raises, the transaction is rolled back and the batch stored again message by message,
        each in a SAVEPOINT of its own (``_ingest``).
        """
        try:
            with self.sessions() as session:
                live = live_token_hashes(session, {r.token_sha256 for r in batch if r.token_sha256})
                batch = [request for request in batch if _let_in(request, live)]
                if not batch:
                    return
                try:
                    results = self.pipeline.ingest_many(session, [Incoming(r.raw, r.source, r.source_ref)
                                                                  for r in batch])
                    session.commit()
                except Exception as error:
                    log.info("webhook: storing %d messages together failed (%s); storing them one by one",
                             len(batch), _first_line(error), exc_info=not isinstance(error, SQLAlchemyError))
                    session.rollback()
                else:
                    for request, result in zip(batch, results, strict=True):
                        request.answer.set_result(result)
                    return
        except Exception as error:  # the connection (or the token check) failed: nothing was stored
            log.error("webhook: storing %d messages failed, none is acknowledged: %s", len(batch),
                      _first_line(error), exc_info=not isinstance(error, SQLAlchemyError))
            _fail(batch, error)
            return
        self._commit_one_by_one(batch)

    def _commit_one_by_one(self, batch: list[_Request]) -> None:
        """Each message of ``batch`` in a SAVEPOINT of its own, one commit, then the answers."""
        results: list[tuple[_Request, IngestResult]] = []
        try:
            with self.sessions() as session:
                for request in batch:
                    outcome = self._ingest(session, request)
                    if isinstance(outcome, IngestResult):
                        results.append((request, outcome))
                    else:
                        request.answer.set_exception(outcome)
                session.commit()
        except Exception as error:  # the commit (or the connection) failed: nothing was stored
            log.error("webhook: committing %d messages failed, none is acknowledged: %s", len(batch),
                      _first_line(error), exc_info=not isinstance(error, SQLAlchemyError))
            _fail(batch, error)
            return
        for request, result in results:
            request.answer.set_result(result)

    def _ingest(self, session: Session, request: _Request) -> IngestResult | CommitFailed:
        """One message in a SAVEPOINT: if storing it fails, only it is rolled back and refused."""
        savepoint = session.connection().begin_nested()
        try:
            result = self.pipeline.ingest(session, request.raw, source=request.source,
                                          source_ref=request.source_ref)
        except Exception as error:
            log.error("webhook: storing a message of %d bytes failed, not acknowledged: %s", len(request.raw),
                      _first_line(error), exc_info=not isinstance(error, SQLAlchemyError))
            savepoint.rollback()  # if this fails too, the transaction is gone: the batch fails
            forget_identities(session)
            session.expire_all()
            return CommitFailed(f"the message could not be stored: {_first_line(error)}")
        savepoint.commit()
        return result


def _fail(batch: list[_Request], error: Exception) -> None:
    """Answer CommitFailed to every request of ``batch`` not answered yet."""
    for request in batch:
        if not request.answer.done():
            request.answer.set_exception(CommitFailed(f"the commit failed: {_first_line(error)}"))


def _let_in(request: _Request, live: set[str]) -> bool:
    """False (and the request answered TokenRevoked) when its token is no longer live."""
    if request.token_sha256 is not None and request.token_sha256 not in live:
        request.answer.set_exception(TokenRevoked())
        return False
    return True


def _first_line(error: Exception) -> str:
    """The driver's first line: not the statement's parameters (a message's bytes) a str() would add."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    return f"{type(cause).__name__}: {(str(cause).strip().splitlines() or [''])[0]}"
