"""Reading it back on both backends: GET /v1/messages/<id> (and its raw bytes) and GET /v1/events.

The events are seeded through the real pipeline by POSTing corpus messages to /v1/ingest.
Expected values come from the corpus (expected.jsonl's reasons, recipients and feedback types)
and from the messages' own text (the originals' Return-Path domains), never from our output.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import pytest
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from storage import store_raw_message
from tests.webclient import (
    Api,
    api,
    body_of,
    corpus_bytes,
    database_url,
    db_engine,
    db_session,
    expected_rows,
    post_message,
)

__all__ = ["api", "database_url", "db_engine", "db_session"]

# Three bounces whose originals all have "Return-path: <...@example.jp>", and one complaint.
BOUNCES = ("lhost-exim-01.eml", "lhost-exim-02.eml", "lhost-postfix-02.eml")
COMPLAINT = "arf-22.eml"
FILES = (*BOUNCES, COMPLAINT)


@pytest.fixture
def seeded(api: Api) -> dict[str, int]:
    """The corpus files above, posted to the webhook: file name -> message id."""
    ids = {}
    for name in FILES:
        response = post_message(api, corpus_bytes(name))
        assert response.status_code == 202, body_of(response)
        ids[name] = body_of(response)["id"]
    return ids


def get(api: Api, url: str, role: str = "viewer") -> TestResponse:
    return api.client.get(url, headers=api.auth(role))


def all_events(api: Api, query: str = "") -> list[dict]:
    """Every event matching ``query``, following the ``next`` links."""
    found: list[dict] = []
    url: str | None = f"/v1/events?{query}"
    while url:
        page = get(api, url)
        assert page.status_code == 200, body_of(page)
        found += body_of(page)["events"]
        assert body_of(page)["count"] == len(body_of(page)["events"])
        url = body_of(page)["next"]
    return found


# GET /v1/messages/<id>


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_a_message_reads_back_with_its_parse_result_events_and_attribution(
        api: Api, seeded: dict[str, int], role: str) -> None:
    name = "lhost-exim-02.eml"
    raw = corpus_bytes(name)
    expected = sorted((row["recipient"], row["reason"]) for row in expected_rows(name))
    response = get(api, f"/v1/messages/{seeded[name]}", role)
    assert response.status_code == 200
    body = body_of(response)
    assert body["id"] == seeded[name]
    assert (body["sha256"], body["size"]) == (hashlib.sha256(raw).hexdigest(), len(raw))
    assert (body["source"], body["source_ref"]) == ("webhook", "ingest")
    assert (body["kind"], body["status"]) == ("bounce", "parsed")
    assert datetime.fromisoformat(body["received_at"]).tzinfo is not None
    assert body["parse_from"] == "stored"
    assert sorted((r["recipient"], r["reason"]) for r in body["parse"]["records"]) == expected
    assert sorted((e["recipient"], e["reason"]) for e in body["events"]) == expected
    assert {e["message_id"] for e in body["events"]} == {seeded[name]}
    # The original says "Return-path: <shironeko@example.jp>": the sending domain, and how it was found.
    domain = next(i for i in body["identities"] if i["kind"] == "domain")
    assert domain["value"] == "example.jp" and domain["source"] and "example.jp" in domain["detail"]
    assert sorted(domain["events"]) == sorted(e["id"] for e in body["events"])
    assert body["attribution"]["identities"]["domain"] == "example.jp"
    assert body["attribution"]["explanation"]
    assert body["raw_url"] == f"/v1/messages/{seeded[name]}/raw"


def test_a_complaint_reads_back_with_its_feedback_type(api: Api, seeded: dict[str, int]) -> None:
    body = body_of(get(api, f"/v1/messages/{seeded[COMPLAINT]}"))
    (row,) = expected_rows(COMPLAINT)
    assert body["kind"] == "complaint"
    assert [(e["kind"], e["reason"], e["feedback_type"]) for e in body["events"]] == [
        ("complaint", row["reason"], row["feedbacktype"])]
    assert body["parse"]["complaint"]["feedback_type"] == row["feedbacktype"]


def test_the_raw_bytes_come_back_exactly(api: Api, seeded: dict[str, int]) -> None:
    name = "lhost-postfix-02.eml"
    for url in (f"/v1/messages/{seeded[name]}?raw=1", f"/v1/messages/{seeded[name]}/raw"):
        response = get(api, url)
        assert response.status_code == 200
        assert response.mimetype == "message/rfc822"
        assert response.data == corpus_bytes(name)
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_message_without_a_summary_is_parsed_again_from_its_bytes(api: Api, db_session: Session) -> None:
    # Stored but never processed (a crash between storing and processing, or an older version).
    name = "lhost-exim-01.eml"
    message, created = store_raw_message(db_session, corpus_bytes(name), "import")
    db_session.commit()
    body = body_of(get(api, f"/v1/messages/{message.id}"))
    assert created and body["status"] == "received" and body["parse_from"] == "raw"
    assert [r["reason"] for r in body["parse"]["records"]] == [row["reason"] for row in expected_rows(name)]
    assert body["events"] == [] and body["attribution"] is None


@pytest.mark.parametrize("url", ["/v1/messages/999999", "/v1/messages/99999999999999999999999",
                                 "/v1/messages/999999/raw", "/v1/messages/abc"])
def test_an_unknown_message_is_404(api: Api, url: str) -> None:
    response = get(api, url)
    assert response.status_code == 404
    assert body_of(response)["error"] == "not_found"


@pytest.mark.parametrize("url", ["/v1/messages/1", "/v1/messages/1/raw", "/v1/messages/1?raw=1",
                                 "/v1/events"])
def test_reading_needs_a_viewer_or_admin_token(api: Api, seeded: dict[str, int], url: str) -> None:
    assert api.client.get(url).status_code == 401
    assert api.client.get(url, headers={"Authorization": "Bearer rct_wrong"}).status_code == 401
    for role in ("ingest", "mta"):
        response = get(api, url, role)
        assert response.status_code == 403 and body_of(response)["error"] == "forbidden"


# GET /v1/events


def test_events_filter_by_kind_and_reason(api: Api, seeded: dict[str, int]) -> None:
    rows = [row for name in FILES for row in expected_rows(name)]
    complaints = all_events(api, "kind=complaint")
    assert [(e["reason"], e["feedback_type"]) for e in complaints] == [
        (row["reason"], row["feedbacktype"]) for row in expected_rows(COMPLAINT)]
    bounces = all_events(api, "kind=bounce")
    assert sorted(e["recipient"] for e in bounces) == sorted(
        row["recipient"] for name in BOUNCES for row in expected_rows(name))
    unknown = all_events(api, "reason=userunknown")
    assert len(unknown) == sum(row["reason"] == "userunknown" for row in rows) == 4
    assert {e["reason"] for e in unknown} == {"userunknown"}
    assert all_events(api, "kind=complaint&reason=userunknown") == []
    assert len(all_events(api)) == len(rows)


def test_events_filter_by_identity(api: Api, seeded: dict[str, int]) -> None:
    # Each bounce's original has "Return-path: <...@example.jp>"; the complaint's is example.org.
    found = all_events(api, "identity=domain:example.jp")
    assert sorted(e["message_id"] for e in found) == sorted(
        seeded[name] for name in BOUNCES for _ in expected_rows(name))
    assert all({"kind": "domain", "value": "example.jp"}.items() <= i.items()
               for e in found for i in e["identities"] if i["kind"] == "domain")
    assert all_events(api, "identity=account:nobody@example.invalid") == []


def test_events_page_by_id_both_ways(api: Api, seeded: dict[str, int]) -> None:
    everything = all_events(api, "limit=1000")
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids)) == 6
    first = body_of(get(api, "/v1/events?limit=2&kind=bounce"))
    assert first["count"] == 2 and "kind=bounce" in first["next"] and "before_id=" in first["next"]
    assert [e["id"] for e in all_events(api, "limit=2")] == ids
    assert [e["id"] for e in all_events(api, "limit=4&after_id=0")] == ids[::-1]
    assert [e["id"] for e in all_events(api, f"before_id={ids[1]}")] == ids[2:]
    assert [e["id"] for e in all_events(api, f"after_id={ids[1]}")] == ids[:1]
    last = body_of(get(api, "/v1/events?limit=6"))
    assert last["count"] == 6 and last["next"] is None


def test_events_filter_by_time(api: Api, seeded: dict[str, int]) -> None:
    everything = all_events(api)
    times = sorted(datetime.fromisoformat(e["occurred_at"]) for e in everything)
    middle = times[len(times) // 2]
    since = middle.isoformat().replace("+00:00", "Z")
    later = all_events(api, f"since={since}".replace("+", "%2B"))
    assert len(later) == sum(t >= middle for t in times) and later
    earlier = all_events(api, f"until={since}")
    assert len(earlier) + len(later) == len(everything)
    assert all_events(api, "since=2999-01-01") == []
    assert all_events(api, "until=1970-01-02T00:00:00%2B01:00") == []


@pytest.mark.parametrize(("query", "words"), [
    ("limit=0", "limit must be a whole number from 1 to 1000"),
    ("limit=1001", "limit must be a whole number from 1 to 1000"),
    ("limit=ten", "limit must be a whole number"),
    ("limit=-5", "limit must be a whole number"),
    ("after_id=1e3", "after_id must be a whole number"),
    ("before_id=" + "9" * 40, "before_id must be a whole number"),
    ("after_id=1&before_id=9", "Give after_id or before_id, not both."),
    ("kind=spam", "kind must be one of bounce, complaint, got 'spam'."),
    ("reason=unknownuser", "reason must be one of"),
    ("identity=alice", "identity must be <kind>:<value>"),
    ("identity=account:", "identity must be <kind>:<value>"),
    ("identity=user:alice", "identity must be <kind>:<value>"),
    ("since=yesterday", "since must be an ISO 8601 time"),
    ("until=2026-13-01", "until must be an ISO 8601 time"),
    ("since=2026-02-01&until=2026-01-01", "since must be earlier than until."),
    ("identiy=account:alice", "Unknown parameter 'identiy'"),
    ("kind=bounce&kind=complaint", "Give 'kind' once"),
])
def test_bad_event_parameters_are_400_with_a_sentence(api: Api, query: str, words: str) -> None:
    response = get(api, f"/v1/events?{query}")
    assert response.status_code == 400
    assert body_of(response)["error"] == "bad_request"
    assert words in body_of(response)["detail"]
