"""``Pipeline.ingest_many`` against ``Pipeline.ingest``: the same rows and answers, in a few statements.

The expected rows and answers are those of ``ingest`` on each message in turn, on the same
database (cleared in between): ``ingest`` is the path tests/test_pipeline.py checks against the
corpus's expected answers. The batch mixes every case ``ingest_many`` decides itself: bounces,
complaints, auto-replies, garbage, an empty message, the same bytes twice, bytes and a complaint
stored before the batch, the same complaint in other bytes within the batch, a ledger entry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from ingest.committer import Committer
from ingest.pipeline import Incoming, IngestResult, Pipeline
from storage import Event, EventIdentity, Identity, RawMessage, add_ledger_entry, make_engine, session_factory
from storage.migrate import upgrade
from tests import db
from tests.test_pipeline import RULES, SALT, SAMPLES

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

CORPUS = Path(__file__).resolve().parent / "data" / "corpus" / "emails"
# A spread of the corpus, every 8th file: bounces of many MTAs, ARF and non-ARF complaints,
# auto-replies, delivery notices.
CORPUS_FILES = sorted(CORPUS.rglob("*.eml"))[::8]
COMPLAINT = SAMPLES / "arf-postfix-01.eml"
# The columns of one kind of event or the other (the others are compared directly).
EVENT_COLUMNS = ("status", "diagnostic", "reporter", "feedback_type", "source_ip")


def the_batch() -> tuple[list[bytes], list[bytes]]:
    """(stored before the batch, the batch): the corpus spread plus every special case."""
    corpus = [path.read_bytes() for path in CORPUS_FILES]
    samples = [path.read_bytes() for path in sorted(SAMPLES.glob("*.eml"))]
    complaint = COMPLAINT.read_bytes()
    # The same complaint about another original message (its Message-ID, line 50 of the sample).
    other = complaint.replace(b"<3f1c2a9e-7b4d-4e11-9c2a-1d5e8f0a6b7c@example.com>",
                              b"<another-original-0001@example.com>")
    assert other != complaint
    before = [corpus[0], b"X-Stored-Before: 1\n" + complaint]
    batch = [*samples, *corpus,
             corpus[3], corpus[0],  # the same bytes again: in this batch, and stored before it
             b"X-Copy: 2\n" + complaint,  # the complaint stored before, in other bytes
             b"X-Copy: 3\n" + other, b"X-Copy: 4\n" + other,  # one complaint twice in this batch
             b"", b"\x00\xff garbage \xfe" * 40, b"Subject: hello\n\nnot a report\n"]
    return before, batch


def ledger_message_id() -> str:
    """The original Message-ID of the VERP sample (tests/test_pipeline.py's ledger test uses it too)."""
    raw = (SAMPLES / "dsn-verp-01.eml").read_bytes()
    line = next(line for line in raw.decode().splitlines()[40:] if line.lower().startswith("message-id:"))
    return line.split(":", 1)[1].strip()


def snapshot(session: Session) -> dict[str, Any]:
    """Every row the pipeline writes, keyed by content (message SHA-256s, identity names), not by id."""
    messages = {m.id: m for m in session.scalars(select(RawMessage))}
    sha = {id_: m.sha256 for id_, m in messages.items()}
    rows = {m.sha256: (m.source, m.source_ref, m.size, m.kind, m.status, m.error, m.dedup_key,
                       sha.get(m.duplicate_of_id) if m.duplicate_of_id else None, m.summary, m.raw)
            for m in messages.values()}
    identities = {i.id: (i.kind, i.value) for i in session.scalars(select(Identity))}
    events: dict[int, tuple[Any, ...]] = {}
    for e in session.scalars(select(Event)):
        received = messages[e.message_id].received_at
        occurred = "received" if e.occurred_at == received else e.occurred_at
        events[e.id] = (sha[e.message_id], e.kind, e.recipient, e.recipient_hashed, e.recipient_domain,
                        e.reason, e.original_message_id, occurred,
                        *(getattr(e, name, None) for name in EVENT_COLUMNS))
    links = sorted((events[link.event_id], identities[link.identity_id], link.source, link.detail)
                   for link in session.scalars(select(EventIdentity)))
    return {"messages": rows, "events": sorted(events.values(), key=repr), "links": links,
            "identities": sorted(identities.values())}


def answers(session: Session, results: list[IngestResult]) -> list[tuple[Any, ...]]:
    """The results with ids replaced by the SHA-256 of the row they name."""
    sha = {id_: digest for id_, digest in session.execute(select(RawMessage.id, RawMessage.sha256))}
    return [(sha[r.message_id], r.created, r.status, r.kind, r.events, r.error,
             sha[r.stored_id] if r.stored_id is not None else None) for r in results]


def ingest_both_ways(engine: Engine, pipeline: Pipeline) -> tuple[Any, Any]:
    """(answers, rows) of ``ingest`` on each message, then of ``ingest_many``, from the same start."""
    before, batch = the_batch()
    seen = []
    for many in (False, True):
        db.clear(engine)
        with session_factory(engine)() as session:
            add_ledger_entry(session, ledger_message_id(), script="10001:/home/shop/mailer.php",
                             customer="C1001")
            for raw in before:
                pipeline.ingest(session, raw, source="test")
            session.commit()
            if many:
                results = pipeline.ingest_many(session, [Incoming(raw, "webhook", f"ref {n}")
                                                         for n, raw in enumerate(batch)])
            else:
                results = [pipeline.ingest(session, raw, source="webhook", source_ref=f"ref {n}")
                           for n, raw in enumerate(batch)]
            session.commit()
            seen.append((answers(session, results), snapshot(session)))
    db.clear(engine)
    return seen[0], seen[1]


@pytest.mark.parametrize("salt", [None, SALT], ids=["clear", "hashed"])
def test_a_batch_gives_the_rows_and_answers_of_one_message_at_a_time(db_engine: Engine, salt: bytes | None):
    one_by_one, together = ingest_both_ways(db_engine, Pipeline(RULES, recipient_salt=salt))
    assert together[0] == one_by_one[0]
    assert together[1] == one_by_one[1]
    # The batch holds every case the comparison is meant to cover.
    statuses = {status for _, _, status, *_ in one_by_one[0]}
    assert statuses == {"parsed", "ignored", "quarantined", "duplicate"}
    # Complaints in other bytes: the sample itself and its X-Copy 2 (stored before the batch in
    # other bytes), and X-Copy 4 (of X-Copy 3, earlier in the batch).
    assert sum(stored is not None for *_, stored in one_by_one[0]) == 3
    assert len(one_by_one[1]["links"]) > 0 and len(one_by_one[1]["events"]) > 40
    assert any(source == "ledger" for *_, source, _ in one_by_one[1]["links"])


def test_a_batch_takes_a_few_statements_whatever_its_size(db_engine: Engine):
    _, batch = the_batch()
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    pipeline = Pipeline(RULES)
    event.listen(db_engine, "before_cursor_execute", count)
    try:
        for size in (10, len(batch)):
            db.clear(db_engine)
            statements.clear()
            with session_factory(db_engine)() as session:
                pipeline.ingest_many(session, [Incoming(raw, "webhook") for raw in batch[:size]])
                session.commit()
            # Reads (bytes stored, ledger, complaint keys, event ids, identities), three inserts, and
            # per identity met the first time a read, an insert, a read and two updates of its seen
            # times: not some ten statements per message.
            with session_factory(db_engine)() as session:
                identities = session.scalar(select(func.count()).select_from(Identity))
            assert len(statements) <= 10 + 5 * (identities or 0), (size, statements)
            assert size < 10 + 5 * (identities or 0) < 10 * size
    finally:
        event.remove(db_engine, "before_cursor_execute", count)
        db.clear(db_engine)


@pytest.fixture
def pg_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated PostgreSQL database of its own: SQLite's writers take the write lock at BEGIN
    (storage.engine), so there no other writer can store a row while a batch is being parsed."""
    with db.temporary_database("postgresql", tmp_path) as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


def test_a_message_another_writer_stored_meanwhile_is_answered_as_a_duplicate(pg_engine: Engine):
    """The batch's insert fails on the other writer's row; the committer stores the batch one by one."""
    db_engine = pg_engine
    raws = [path.read_bytes() for path in CORPUS_FILES[:4]]
    racing = raws[2]
    other_writer_done = threading.Event()
    pipeline = Pipeline()
    classify: Callable[[bytes], Any] = pipeline.classifier

    def classifier(raw: bytes) -> Any:  # another node commits the same bytes while the batch is parsed
        if raw == racing and not other_writer_done.is_set():
            other_writer_done.set()
            with session_factory(db_engine)() as other:
                Pipeline().ingest(other, racing, source="imap:other node")
                other.commit()
        return classify(raw)

    pipeline.classifier = classifier
    committer = Committer(session_factory(db_engine), pipeline, max_wait=0.5)
    try:
        results: dict[int, IngestResult] = {}
        threads = [threading.Thread(target=lambda n=n: results.__setitem__(
            n, committer.submit(raws[n], source="webhook"))) for n in range(len(raws))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        committer.stop()
    assert other_writer_done.is_set()
    assert (results[2].created, results[2].status) == (False, "duplicate")
    assert [results[n].created for n in (0, 1, 3)] == [True, True, True]
    with session_factory(db_engine)() as session:
        rows = session.execute(select(RawMessage.sha256, RawMessage.source))
        sources = {digest: source for digest, source in rows}
    assert len(sources) == 4
    assert sorted(sources.values()) == ["imap:other node", "webhook", "webhook", "webhook"]
