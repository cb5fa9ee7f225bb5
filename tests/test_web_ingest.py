"""POST /v1/ingest on both backends: every documented status code, and the database after each.

Expected values come from the issue (202/200/401/403/413/415/400/503, JSON errors), RFC 6750
(the WWW-Authenticate challenge) and the corpus's expected.jsonl (how many events a message gives).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from storage import RawMessage, hash_token, revoke_token
from tests.webclient import (
    SESSION_SECRET,
    Api,
    api,
    body_of,
    corpus_bytes,
    counts,
    database_url,
    db_engine,
    db_session,
    expected_rows,
    make_api,
    post_message,
)

__all__ = ["api", "database_url", "db_engine", "db_session"]

MIB = 1024 * 1024
NOTHING = {"raw_messages": 0, "events": 0, "event_identities": 0}


def stored(engine: Engine) -> dict[str, int]:
    """Row counts without the tokens (which every test has)."""
    found = counts(engine)
    found.pop("api_tokens")
    return found


def assert_json_error(response: TestResponse, status: int, error: str) -> None:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert body_of(response)["error"] == error
    assert isinstance(body_of(response)["detail"], str) and body_of(response)["detail"].endswith(".")


class LazyBody:
    """A request body of ``size`` bytes made on demand; counts what the server read of it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.read_bytes
        n = left if n is None or n < 0 else min(n, left)
        self.read_bytes += n
        return b"x" * n

    def readline(self, limit: int = -1) -> bytes:
        return self.read(limit if limit and limit > 0 else 65536)


# 202 and 200


def test_a_new_message_is_stored_and_answered_202(api: Api, db_engine: Engine, db_session: Session) -> None:
    raw = corpus_bytes("lhost-exim-02.eml")
    response = post_message(api, raw)
    assert response.status_code == 202
    body = body_of(response)
    assert body["kind"] == "bounce" and body["status"] == "parsed" and body["created"] is True
    assert body["events"] == len(expected_rows("lhost-exim-02.eml")) == 2
    assert response.headers["Location"] == f"/v1/messages/{body['id']}"
    row = db_session.get(RawMessage, body["id"])
    assert row is not None
    assert row.sha256 == hashlib.sha256(raw).hexdigest()
    assert (row.source, row.source_ref, row.size, row.raw) == ("webhook", "ingest", len(raw), raw)
    assert stored(db_engine)["raw_messages"] == 1 and stored(db_engine)["events"] == 2


def test_the_same_bytes_again_are_200_with_the_same_id(api: Api, db_engine: Engine) -> None:
    raw = corpus_bytes("lhost-postfix-02.eml")
    first = post_message(api, raw)
    before = stored(db_engine)
    again = post_message(api, raw)
    assert (first.status_code, again.status_code) == (202, 200)
    assert body_of(again)["id"] == body_of(first)["id"]
    assert body_of(again)["created"] is False and body_of(again)["status"] == "duplicate"
    assert stored(db_engine) == before


def test_the_same_complaint_in_other_bytes_is_200_with_the_first_id(api: Api, db_engine: Engine) -> None:
    raw = corpus_bytes("arf-22.eml")  # a Hotmail complaint that quotes the original's Message-ID
    first = post_message(api, raw)
    assert first.status_code == 202 and body_of(first)["kind"] == "complaint"
    events = stored(db_engine)["events"]
    assert events == len(expected_rows("arf-22.eml")) == 1
    # A relay added a header: other bytes, the same report (reporter, original Message-ID, recipient).
    resent = b"Received: from relay.example.net by mx.example.com; Mon, 1 Jan 2024 00:00:00 +0000\r\n" + raw
    again = post_message(api, resent)
    assert again.status_code == 200
    assert body_of(again)["id"] == body_of(first)["id"] and body_of(again)["created"] is False
    assert body_of(again)["stored_id"] not in (None, body_of(first)["id"])
    assert stored(db_engine)["raw_messages"] == 2
    assert stored(db_engine)["events"] == events


def test_admin_may_post_and_octet_stream_is_accepted(api: Api) -> None:
    response = post_message(api, corpus_bytes("lhost-exim-01.eml"), role="admin",
                            content_type="application/octet-stream")
    assert response.status_code == 202
    assert body_of(response)["kind"] == "bounce"


def test_binary_garbage_is_kept_and_answered_202(api: Api, db_engine: Engine, db_session: Session) -> None:
    garbage = bytes(range(256)) * 64 + b"\x00\xff" * 1000
    response = post_message(api, garbage, content_type="application/octet-stream")
    assert response.status_code == 202
    assert body_of(response)["status"] in ("quarantined", "ignored")
    assert body_of(response)["events"] == 0
    row = db_session.get(RawMessage, body_of(response)["id"])
    assert row is not None and row.raw == garbage
    assert stored(db_engine) == {**NOTHING, "raw_messages": 1}


# 401 and 403


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer rct_unknown", "Bearer two words",
])
def test_no_valid_token_is_401_with_a_challenge(api: Api, db_engine: Engine,
                                                authorization: str | None) -> None:
    headers = {"Content-Type": "message/rfc822"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = api.client.post("/v1/ingest", data=corpus_bytes("lhost-exim-01.eml"), headers=headers)
    assert_json_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="ricochet"')
    assert stored(db_engine) == NOTHING


def test_an_unknown_token_is_named_invalid(api: Api) -> None:
    response = api.client.post("/v1/ingest", data=b"x", headers={"Authorization": "Bearer rct_nope"})
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_revoked_token_is_401(api: Api, db_engine: Engine, db_session: Session) -> None:
    assert revoke_token(db_session, "ingest")
    db_session.commit()
    assert_json_error(post_message(api, corpus_bytes("lhost-exim-01.eml")), 401, "unauthorized")
    assert stored(db_engine) == NOTHING


@pytest.mark.parametrize("role", ["viewer", "mta"])
def test_a_token_of_another_role_is_403(api: Api, db_engine: Engine, role: str) -> None:
    response = post_message(api, corpus_bytes("lhost-exim-01.eml"), role=role)
    assert_json_error(response, 403, "forbidden")
    assert f"role {role!r}" in body_of(response)["detail"]
    assert stored(db_engine) == NOTHING


def test_the_token_is_checked_before_anything_else(api: Api) -> None:
    # No token and everything else wrong too: the answer is about the token.
    response = api.client.post("/v1/ingest", data=b"", headers={"Content-Type": "text/plain"})
    assert response.status_code == 401


# 415, 400, 413


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json",
                                          "application/x-www-form-urlencoded", "multipart/form-data"])
def test_another_content_type_is_415(api: Api, db_engine: Engine, content_type: str | None) -> None:
    headers = api.auth("ingest") | ({"Content-Type": content_type} if content_type else {})
    response = api.client.post("/v1/ingest", data=corpus_bytes("lhost-exim-01.eml"), headers=headers)
    assert_json_error(response, 415, "unsupported_media_type")
    assert stored(db_engine) == NOTHING


def test_content_type_parameters_and_case_do_not_matter(api: Api) -> None:
    response = post_message(api, corpus_bytes("lhost-exim-01.eml"),
                            content_type="Message/RFC822; charset=utf-8")
    assert response.status_code == 202


def test_an_empty_body_is_400(api: Api, db_engine: Engine) -> None:
    assert_json_error(post_message(api, b""), 400, "bad_request")
    assert stored(db_engine) == NOTHING


def test_a_20_mib_body_is_refused_by_its_length_before_it_is_read(api: Api, db_engine: Engine) -> None:
    body = LazyBody(20 * MIB)
    response = api.client.post("/v1/ingest", headers={**api.auth("ingest"), "Content-Type": "message/rfc822"},
                               environ_overrides={"wsgi.input": body, "CONTENT_LENGTH": str(body.size)})
    assert_json_error(response, 413, "payload_too_large")
    assert body.read_bytes == 0
    assert stored(db_engine) == NOTHING


def test_a_20_mib_chunked_body_is_refused_once_past_the_limit(api: Api, db_engine: Engine) -> None:
    # Chunked transfer coding: no Content-Length, the server sees the end only when it comes.
    body = LazyBody(20 * MIB)
    response = api.client.post("/v1/ingest", headers={**api.auth("ingest"), "Content-Type": "message/rfc822"},
                               environ_overrides={"wsgi.input": body, "wsgi.input_terminated": True})
    assert_json_error(response, 413, "payload_too_large")
    limit = api.runtime.settings.api.max_body_bytes
    assert limit == 10 * MIB  # the documented default
    assert limit < body.read_bytes <= limit + 64 * 1024
    assert stored(db_engine) == NOTHING


def test_the_limit_is_inclusive_and_configurable(database_url: str, db_session: Session,
                                                 db_engine: Engine) -> None:
    made = make_api(database_url, db_session, RICOCHET_API_MAX_BODY_BYTES="4096")
    try:
        raw = corpus_bytes("lhost-exim-01.eml")
        assert len(raw) < 4096
        exact = raw + b"\n" * (4096 - len(raw))
        assert post_message(made, exact).status_code == 202
        assert_json_error(post_message(made, exact + b"\n"), 413, "payload_too_large")
        assert stored(db_engine)["raw_messages"] == 1
    finally:
        made.runtime.close()


def test_other_methods_and_urls_answer_json(api: Api) -> None:
    wrong_method = api.client.get("/v1/ingest", headers=api.auth("ingest"))
    assert_json_error(wrong_method, 405, "method_not_allowed")
    assert "POST" in wrong_method.headers["Allow"]
    assert_json_error(api.client.get("/v1/nowhere"), 404, "not_found")


# 503 and failures inside the pipeline


@contextmanager
def refusing_inserts(engine: Engine, table: str) -> Iterator[None]:
    """A trigger that makes the database refuse every INSERT into ``table``, as a full disk would."""
    if engine.dialect.name == "sqlite":
        create = [f"CREATE TRIGGER web_test_refuse BEFORE INSERT ON {table} "
                  "BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"]
        drop = ["DROP TRIGGER IF EXISTS web_test_refuse"]
    else:
        create = ["CREATE FUNCTION web_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$ BEGIN RAISE EXCEPTION 'the disk is full'; END $$",
                  f"CREATE TRIGGER web_test_refuse BEFORE INSERT ON {table} "
                  "FOR EACH ROW EXECUTE FUNCTION web_test_refuse()"]
        drop = [f"DROP TRIGGER IF EXISTS web_test_refuse ON {table}",
                "DROP FUNCTION IF EXISTS web_test_refuse()"]
    with engine.begin() as connection:
        for statement in create:
            connection.exec_driver_sql(statement)
    try:
        yield
    finally:
        with engine.begin() as connection:
            for statement in drop:
                connection.exec_driver_sql(statement)


def test_a_database_that_refuses_the_message_is_503_and_nothing_is_written(api: Api,
                                                                           db_engine: Engine) -> None:
    with refusing_inserts(db_engine, "raw_messages"):
        response = post_message(api, corpus_bytes("lhost-exim-02.eml"))
    assert_json_error(response, 503, "service_unavailable")
    assert response.headers["Retry-After"]
    assert stored(db_engine) == NOTHING
    # And the service goes on once the database does.
    assert post_message(api, corpus_bytes("lhost-exim-02.eml")).status_code == 202


def test_a_failure_while_processing_is_quarantined_not_lost(api: Api, db_engine: Engine,
                                                            db_session: Session) -> None:
    with refusing_inserts(db_engine, "events"):
        response = post_message(api, corpus_bytes("lhost-exim-02.eml"))
    assert response.status_code == 202
    assert body_of(response)["status"] == "quarantined" and body_of(response)["events"] == 0
    assert "the disk is full" in body_of(response)["error"]
    assert stored(db_engine) == {**NOTHING, "raw_messages": 1}
    row = db_session.scalars(select(RawMessage)).one()
    assert row.status == "quarantined" and row.raw == corpus_bytes("lhost-exim-02.eml")


def test_an_unreachable_database_is_503() -> None:
    # Nothing listens on port 1: every connection attempt is refused at once.
    from app import create_app
    from config import load_settings
    from ingest.runtime import Runtime

    settings = load_settings(env={"RICOCHET_DATABASE_URL": "postgresql+psycopg://ricochet@127.0.0.1:1/ricochet",
                                  "RICOCHET_WEB_SECRET_KEY": SESSION_SECRET})
    with Runtime.from_settings(settings) as runtime:
        client = create_app(settings, runtime).test_client()
        response = client.post("/v1/ingest", data=b"Subject: x\r\n\r\nx\r\n",
                               headers={"Authorization": "Bearer rct_x", "Content-Type": "message/rfc822"})
        assert_json_error(response, 503, "service_unavailable")
        assert_json_error(client.get("/v1/events", headers={"Authorization": "Bearer rct_x"}), 503,
                          "service_unavailable")


def test_tokens_never_reach_the_log(api: Api, db_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    post_message(api, corpus_bytes("lhost-exim-01.eml"))
    post_message(api, corpus_bytes("lhost-exim-01.eml"), role="viewer")
    with refusing_inserts(db_engine, "raw_messages"):
        assert post_message(api, corpus_bytes("lhost-exim-02.eml")).status_code == 503
    assert "the disk is full" in caplog.text  # the failure is logged ...
    for token in api.tokens.values():  # ... but no token, nor its stored hash
        assert token not in caplog.text and hash_token(token) not in caplog.text
