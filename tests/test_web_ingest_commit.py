"""The webhook's group commit (ingest/committer.py) over real HTTP, on both backends.

What must hold (issue 3, DESIGN.md "Data flow" step 1): a 202 is sent only once its message is
committed; requests posted together share one commit; the same bytes twice in one batch are
stored once (the second gets 200 and the first's id); a message that breaks the pipeline is
quarantined without failing its batch; a full queue and a failed commit are 503 and nothing is
acknowledged. Expected values come from the inputs: the SHA-256 of each body, the corpus's
expected.jsonl, the bounds the test sets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from app import create_app
from ingest.classify import Classification, classify
from ingest.committer import CommitFailed, Committer
from ingest.pipeline import Pipeline
from storage import RawMessage, create_token, hash_token, revoke_token, session_factory
from tests.httpserver import serving
from tests.webclient import Api, api, corpus_bytes, database_url, db_engine, db_session, expected_rows

__all__ = ["api", "database_url", "db_engine", "db_session"]

BOUNCE = "lhost-exim-02.eml"
POISON = b"X-Test-Poison: yes\n"


def numbered(number: int, name: str = BOUNCE) -> bytes:
    """Corpus file ``name`` with a header of its own first, so that no two copies have the same bytes."""
    return b"X-Test-Number: %d\n" % number + corpus_bytes(name)


def poisoned(raw: bytes) -> Classification:
    """``ingest.classify``, except that it crashes on a message carrying POISON: a parser bug."""
    if raw.startswith(POISON):
        raise RuntimeError("the parser choked on the poison message")
    return classify(raw)


Answer = tuple[int, dict[str, str], dict[str, Any]]  # status, headers (lower-case names), JSON body


def post(port: int, token: str, body: bytes) -> Answer:
    """POST ``body`` to /v1/ingest: status, headers (lower-case names), JSON body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/v1/ingest", body=body,
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"})
        response = connection.getresponse()
        return (response.status, {k.lower(): v for k, v in response.getheaders()},
                json.loads(response.read()))
    finally:
        connection.close()


def post_together(port: int, token: str, bodies: list[bytes]) -> list[Answer]:
    """POST every body from a thread of its own, all released at the same moment; answers in order."""
    answers: list[Any] = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def send(index: int) -> None:
        start.wait()
        answers[index] = post(port, token, bodies[index])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer is not None for answer in answers)
    return answers


def counting_sessions(engine: Engine) -> tuple[sessionmaker[Session], list[int]]:
    """Sessions on ``engine`` and a list that gets one item per COMMIT of theirs."""
    sessions = session_factory(engine)
    commits: list[int] = []
    event.listen(sessions, "after_commit", lambda _session: commits.append(1))
    return sessions, commits


@contextmanager
def serving_with(api: Api, committer: Committer) -> Iterator[int]:
    """The API of ``api`` with ``committer`` as the webhook's committer, served over HTTP; the port."""
    runtime = dataclasses.replace(api.runtime, committer=committer)
    try:
        with serving(create_app(api.runtime.settings, runtime), threads=16) as port:
            yield port
    finally:
        committer.stop()


def rows_by_id(engine: Engine) -> dict[int, RawMessage]:
    with session_factory(engine)() as session:
        return {row.id: row for row in session.scalars(select(RawMessage))}


def test_concurrent_posts_share_commits_and_every_202_is_stored(api: Api, db_engine: Engine) -> None:
    sessions, commits = counting_sessions(api.runtime.engine)
    # A generous wait, so that requests released together surely meet in a batch on a busy machine.
    committer = Committer(sessions, Pipeline(classifier=poisoned), max_batch=64, max_wait=0.5)
    distinct = [numbered(n) for n in range(8)]
    twice = numbered(100)
    poison = POISON + numbered(200)
    bodies = [*distinct, twice, twice, twice, poison]
    with serving_with(api, committer) as port:
        answers = post_together(port, api.tokens["ingest"], bodies)

    assert len(commits) < len(bodies)  # grouped: fewer commits than requests
    stored = rows_by_id(db_engine)
    events = len(expected_rows(BOUNCE))
    for body, (status, headers, answer) in zip(distinct, answers, strict=False):
        assert status == 202 and answer["status"] == "parsed" and answer["events"] == events
        assert headers["location"] == f"/v1/messages/{answer['id']}"
        assert stored[answer["id"]].sha256 == hashlib.sha256(body).hexdigest()
    assert len({answer["id"] for _, _, answer in answers[:len(distinct)]}) == len(distinct)

    repeats = answers[len(distinct):len(distinct) + 3]
    assert sorted(status for status, _, _ in repeats) == [200, 200, 202]
    first = next(answer for status, _, answer in repeats if status == 202)
    assert all(answer["id"] == first["id"] for _, _, answer in repeats)
    assert stored[first["id"]].sha256 == hashlib.sha256(twice).hexdigest()

    status, _, answer = answers[-1]
    assert status == 202 and answer["status"] == "quarantined" and answer["events"] == 0
    assert "the parser choked on the poison message" in answer["error"]
    row = stored[answer["id"]]
    assert row.status == "quarantined" and row.raw == poison
    assert len(stored) == len(distinct) + 2  # each distinct body, the repeated one once, the poison


def test_the_same_bytes_twice_in_one_batch_are_stored_once(db_engine: Engine, db_session: Session) -> None:
    sessions, commits = counting_sessions(db_engine)
    # The batch closes when its second message arrives: both are surely in it.
    committer = Committer(sessions, Pipeline(), max_batch=2, max_wait=30)
    raw = numbered(1)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(committer.submit(raw, source="webhook")))
               for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        committer.stop()
    assert len(commits) == 1
    assert sorted(result.created for result in results) == [False, True]
    assert results[0].message_id == results[1].message_id
    assert list(rows_by_id(db_engine)) == [results[0].message_id]


class Gate:
    """A classifier that holds the committer inside the pipeline until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, raw: bytes) -> Classification:
        self.entered.set()
        assert self.opened.wait(timeout=30), "the test never opened the gate"
        return classify(raw)


def test_a_full_queue_answers_503_with_retry_after(api: Api, db_engine: Engine) -> None:
    gate = Gate()
    committer = Committer(api.runtime.sessions, Pipeline(classifier=gate), max_batch=1, max_wait=0,
                          max_queue=1)
    token = api.tokens["ingest"]
    answers: dict[str, Any] = {}
    with serving_with(api, committer) as port:
        held = threading.Thread(target=lambda: answers.update(held=post(port, token, numbered(1))))
        held.start()
        assert gate.entered.wait(timeout=30)  # the committer holds message 1
        queued = threading.Thread(target=lambda: answers.update(queued=post(port, token, numbered(2))))
        queued.start()
        wait_until(lambda: committer.waiting == 1)  # message 2 fills the queue
        status, headers, refused = post(port, token, numbered(3))
        gate.opened.set()
        held.join(timeout=30)
        queued.join(timeout=30)
    assert status == 503 and refused["error"] == "service_unavailable"
    assert headers["retry-after"] == "1"
    assert answers["held"][0] == 202 and answers["queued"][0] == 202
    stored = {row.sha256 for row in rows_by_id(db_engine).values()}
    assert stored == {hashlib.sha256(numbered(n)).hexdigest() for n in (1, 2)}


def test_a_failed_commit_answers_503_to_the_whole_batch(api: Api, db_engine: Engine) -> None:
    sessions = session_factory(api.runtime.engine)

    def refuse(_session: Session) -> None:
        raise OSError("the disk is full")

    event.listen(sessions, "before_commit", refuse)
    committer = Committer(sessions, Pipeline(), max_batch=3, max_wait=30)
    with serving_with(api, committer) as port:
        answers = post_together(port, api.tokens["ingest"], [numbered(n) for n in range(3)])
    assert [(status, answer["error"]) for status, _, answer in answers] == [(503, "service_unavailable")] * 3
    assert all(headers["retry-after"] == "30" for _, headers, _ in answers)
    assert rows_by_id(db_engine) == {}


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        done.wait(0.01)
    pytest.fail("the condition never held")


def test_stop_commits_and_answers_what_is_queued(db_engine: Engine, db_session: Session) -> None:
    gate = Gate()
    committer = Committer(session_factory(db_engine), Pipeline(classifier=gate), max_batch=1, max_wait=0)
    results: dict[int, Any] = {}

    def submit(number: int) -> None:
        results[number] = committer.submit(numbered(number), source="webhook")

    first = threading.Thread(target=submit, args=(1,))
    first.start()
    assert gate.entered.wait(timeout=30)
    second = threading.Thread(target=submit, args=(2,))
    second.start()
    wait_until(lambda: committer.waiting == 1)
    stopping = threading.Thread(target=committer.stop)
    stopping.start()
    gate.opened.set()
    for thread in (first, second, stopping):
        thread.join(timeout=30)
    assert sorted(results) == [1, 2] and all(result.created for result in results.values())
    stored = {row.sha256 for row in rows_by_id(db_engine).values()}
    assert stored == {hashlib.sha256(numbered(n)).hexdigest() for n in (1, 2)}
    with pytest.raises(CommitFailed):  # stopped: nothing more is taken
        committer.submit(numbered(3), source="webhook")


def test_a_token_revoked_after_the_policy_node_loaded_it_stores_nothing(api: Api, db_engine: Engine,
                                                                         db_session: Session) -> None:
    token = api.tokens["ingest"]
    wait_until(lambda: hash_token(token) in api.runtime.policy.tokens)
    api.runtime.policy.stop()  # its copy of the tokens stays as loaded: the token still in it
    assert revoke_token(db_session, "ingest")
    db_session.commit()
    with serving(api.app) as port:
        status, headers, answer = post(port, token, numbered(1))
    assert status == 401 and answer["error"] == "unauthorized"
    assert headers["www-authenticate"].startswith("Bearer ")
    assert rows_by_id(db_engine) == {}


def test_a_token_created_a_moment_ago_is_let_in(api: Api, db_engine: Engine, db_session: Session) -> None:
    api.runtime.policy.stop()  # its copy of the tokens will not have the new one
    token = create_token(db_session, "new relay", "ingest")[1]
    db_session.commit()
    assert hash_token(token) not in api.runtime.policy.tokens  # so it is looked up in the database
    with serving(api.app) as port:
        status, _, answer = post(port, token, numbered(1))
    assert status == 202
    assert rows_by_id(db_engine)[answer["id"]].source_ref == "new relay"
