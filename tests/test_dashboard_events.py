"""The dashboard's Events, Quarantine and Message pages (web/dashboard/events.py), on both backends.

Events come from corpus messages run through the real pipeline. Expected values come from the
corpus (expected.jsonl's recipients and reasons) and from the files' own text: the Return-Path of
the originals, the dates the reports give, the "User Unknown" of their diagnostics.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from ingest.pipeline import Pipeline
from storage import Event, RawMessage
from tests.dashboard import Dash, dash
from tests.db import database_url, db_engine, db_session
from web.dashboard.events_data import (
    EventFilters,
    event_page,
    event_query,
    message_view,
    quarantine_page,
    raw_text,
)
from web.errors import ApiError

__all__ = ["dash", "database_url", "db_engine", "db_session"]

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
BSD = CORPUS / "emails" / "maildir" / "bsd"
# File -> when it was received (as an import of an old mailbox would say): a report's own date
# counts only within a year of that (ingest/events.py), so these put the events on known days.
RECEIVED = {
    "lhost-exim-01.eml": datetime(2026, 1, 10, 12, tzinfo=UTC),
    "lhost-exim-02.eml": datetime(2026, 1, 11, 12, tzinfo=UTC),
    # Its records say "Arrival-Date/Last-Attempt-Date: Sat, 21 Jun 2014 18:34:34 +0000".
    "lhost-postfix-02.eml": datetime(2014, 6, 22, 9, tzinfo=UTC),
    # Its report is dated "Thu, 29 Apr 2016 23:34:45 +0000".
    "arf-22.eml": datetime(2016, 4, 30, 9, tzinfo=UTC),
}
BOUNCES = ("lhost-exim-01.eml", "lhost-exim-02.eml", "lhost-postfix-02.eml")
COMPLAINT = "arf-22.eml"
GARBAGE = b"\x00\xff\xfe garbage \x00" * 10  # no header, no body: no parser can read it


def expected_rows(name: str) -> list[dict[str, Any]]:
    """The corpus's expected answers for ``name`` (one row per recipient)."""
    with (CORPUS / "expected.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [row for row in rows if row["file"] == f"maildir/bsd/{name}"]


def recipients(*names: str) -> list[str]:
    """The recipients the corpus expects of these files, sorted."""
    return sorted(row["recipient"] for name in names for row in expected_rows(name))


def seed(session: Session, pipeline: Pipeline) -> dict[str, int]:
    """Ingest the corpus files of RECEIVED (and commit): file name -> message id."""
    ids = {}
    for name, received in RECEIVED.items():
        result = pipeline.ingest(session, (BSD / name).read_bytes(), source="test", received_at=received)
        assert result.status == "parsed", result
        ids[name] = result.message_id
    session.commit()
    return ids


@pytest.fixture
def seeded(db_session: Session) -> dict[str, int]:
    return seed(db_session, Pipeline())


def search(session: Session, limit: int = 50, **filters: str) -> list[dict[str, Any]]:
    """Every event matching ``filters``, following the older-page cursors: id, recipient, message."""
    found: list[dict[str, Any]] = []
    before = ""
    while True:
        page = event_page(session, event_query(EventFilters(**filters), before_id=before, limit=str(limit)))
        found += [{"id": row.id, "recipient": row.recipient, "message": row.message_id,
                   "reason": row.reason, "status": row.status} for row in page.rows]
        if page.older is None:
            return found
        before = str(page.older)


# The event search (web.dashboard.events_data, on both backends without HTTP)


def test_every_event_newest_first(db_session: Session, seeded: dict[str, int]) -> None:
    found = search(db_session)
    assert sorted(event["recipient"] for event in found) == recipients(*RECEIVED)
    assert [event["id"] for event in found] == sorted((event["id"] for event in found), reverse=True)


def test_filter_by_kind_and_reason(db_session: Session, seeded: dict[str, int]) -> None:
    (complaint,) = expected_rows(COMPLAINT)
    assert [(e["recipient"], e["reason"], e["status"]) for e in search(db_session, kind="complaint")] == [
        (complaint["recipient"], complaint["reason"], complaint["feedbacktype"])]
    assert sorted(e["recipient"] for e in search(db_session, kind="bounce")) == recipients(*BOUNCES)
    unknown = sorted(row["recipient"] for name in RECEIVED for row in expected_rows(name)
                     if row["reason"] == "userunknown")
    assert sorted(e["recipient"] for e in search(db_session, reason="userunknown")) == unknown
    assert search(db_session, kind="complaint", reason="userunknown") == []


def test_filter_by_identity(db_session: Session, seeded: dict[str, int]) -> None:
    # Every bounce's original says "Return-path: <...@example.jp>"; the complaint's original has
    # no Return-Path but "From: Neko <sironeko@example.com>".
    found = search(db_session, identity="domain:example.jp")
    assert sorted(e["recipient"] for e in found) == recipients(*BOUNCES)
    complaint = search(db_session, identity="domain:example.com")
    assert [e["recipient"] for e in complaint] == recipients(COMPLAINT)
    assert search(db_session, identity="account:nobody@example.invalid") == []


def test_filter_by_recipient_domain_in_any_case(db_session: Session, seeded: dict[str, int]) -> None:
    assert sorted(e["recipient"] for e in search(db_session, domain="EXAMPLE.co.jp")) == recipients(
        "lhost-postfix-02.eml")
    assert search(db_session, domain="co.jp") == []  # a domain, not a suffix


def test_filter_by_diagnostic_text(db_session: Session, seeded: dict[str, int]) -> None:
    # lhost-exim-02 and lhost-postfix-02 say "... User Unknown"; lhost-exim-01 is a block.
    found = search(db_session, text="user UNKNOWN")
    assert sorted(e["recipient"] for e in found) == recipients("lhost-exim-02.eml", "lhost-postfix-02.eml")
    # LIKE's wildcards are searched for as themselves: no diagnostic has a "%" or a "_".
    assert search(db_session, text="%") == search(db_session, text="_") == []


def test_filter_by_days_including_the_last(db_session: Session, seeded: dict[str, int]) -> None:
    june_21 = search(db_session, since="2014-06-21", until="2014-06-21")
    assert sorted(e["recipient"] for e in june_21) == recipients("lhost-postfix-02.eml")
    assert search(db_session, until="2014-06-20") == []
    assert [e["recipient"] for e in search(db_session, since="2016-04-29", until="2016-04-29")] == recipients(
        COMPLAINT)
    january = search(db_session, since="2026-01-01", kind="bounce")
    assert sorted(e["recipient"] for e in january) == recipients("lhost-exim-01.eml", "lhost-exim-02.eml")
    assert len(search(db_session, until="9999-12-31")) == len(recipients(*RECEIVED))  # no day after it
    # An ISO time is taken as it is: the report's own second.
    assert search(db_session, since="2016-04-29T23:34:45Z", until="2016-04-29T23:34:46Z") != []


def test_pages_both_ways(db_session: Session, seeded: dict[str, int]) -> None:
    everything = [e["id"] for e in search(db_session)]
    assert [e["id"] for e in search(db_session, limit=2)] == everything
    first = event_page(db_session, event_query(EventFilters(), limit="2"))
    assert ([row.id for row in first.rows], first.newer, first.older) == (everything[:2], None, everything[1])
    second = event_page(db_session, event_query(EventFilters(), before_id=str(first.older), limit="2"))
    assert [row.id for row in second.rows] == everything[2:4]
    assert (second.newer, second.older) == (everything[2], everything[3])
    back = event_page(db_session, event_query(EventFilters(), after_id=str(second.newer), limit="2"))
    assert [row.id for row in back.rows] == everything[:2]
    assert (back.newer, back.older) == (None, everything[1])  # the newest page again
    last = event_page(db_session, event_query(EventFilters(), before_id=str(everything[-2]), limit="2"))
    assert ([row.id for row in last.rows], last.older) == (everything[-1:], None)


@pytest.mark.parametrize(("filters", "words"), [
    ({"kind": "spam"}, "kind must be one of bounce, complaint, got 'spam'."),
    ({"reason": "unknownuser"}, "reason must be one of"),
    ({"identity": "alice"}, "identity must be <kind>:<value>"),
    ({"since": "yesterday"}, "since must be an ISO 8601 time"),
    ({"until": "2026-13-01"}, "until must be an ISO 8601 time"),
    ({"since": "2026-02-02", "until": "2026-02-01"}, "since must be earlier than until."),
])
def test_a_wrong_filter_is_refused_with_the_apis_sentence(filters: dict[str, str], words: str) -> None:
    with pytest.raises(ApiError) as refused:
        event_query(EventFilters(**filters))
    assert words in refused.value.detail


# The quarantine and one message


def test_the_quarantine_lists_garbage_with_its_error(db_session: Session, seeded: dict[str, int]) -> None:
    garbage = Pipeline().ingest(db_session, GARBAGE, source="test").message_id
    db_session.commit()
    page = quarantine_page(db_session)
    assert [(row.id, row.source, row.size) for row in page.rows] == [(garbage, "test", len(GARBAGE))]
    # ingest/pipeline.py: what no parser reads is quarantined as "not readable as a bounce or a complaint".
    assert page.rows[0].error.startswith("not readable as a bounce or a complaint")
    assert (page.total, page.older) == (1, None)


def test_the_quarantine_pages_and_shows_a_tracebacks_last_line(db_session: Session,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import attribution

    monkeypatch.setattr(attribution, "attribute", lambda *args, **kwargs: 1 / 0)
    ids = [Pipeline().ingest(db_session, (BSD / name).read_bytes(), source="test").message_id
           for name in BOUNCES]
    db_session.commit()
    first = quarantine_page(db_session, limit=2)
    assert [row.id for row in first.rows] == sorted(ids, reverse=True)[:2] and first.total == 3
    assert {row.error for row in first.rows} == {"ZeroDivisionError: division by zero"}
    rest = quarantine_page(db_session, before_id=first.older, limit=2)
    assert ([row.id for row in rest.rows], rest.older) == ([min(ids)], None)


def test_a_message_with_its_parse_and_events(db_session: Session, seeded: dict[str, int]) -> None:
    name = "lhost-exim-02.eml"
    view = message_view(db_session, seeded[name])
    assert view is not None and not view.cut
    assert view.text == (BSD / name).read_bytes().decode("utf-8")
    detail = view.detail
    assert sorted(r["recipient"] for r in detail["parse"]["records"]) == recipients(name)
    assert sorted(e["recipient"] for e in detail["events"]) == recipients(name)
    assert [(i["kind"], i["value"]) for i in detail["identities"]] == [("domain", "example.jp")]
    assert message_view(db_session, 999_999) is None
    assert message_view(db_session, 2**64) is None


def test_raw_text_replaces_bad_bytes_and_stops_at_the_limit() -> None:
    assert raw_text(b"Subject: caf\xe9\r\n\r\nok") == ("Subject: caf\ufffd\r\n\r\nok", False)
    assert raw_text("é".encode() * 3, limit=3) == ("é\ufffd", True)  # a character cut in two
    assert raw_text(b"abc", limit=3) == ("abc", False)
    # Tabs and line ends are text; other C0 controls and DEL are not allowed in HTML.
    assert raw_text(b"a\x00b\tc\r\n\x1b\x7f") == ("a\u2400b\tc\r\n\u241b\u2421", False)


# The pages, through HTTP (tests/dashboard.py: a logged-in test client per role)


@pytest.fixture
def pages(dash: Dash) -> dict[str, int]:
    """The corpus files of RECEIVED, ingested by the app's own pipeline: file name -> message id."""
    with dash.session() as session:
        return seed(session, dash.runtime.pipeline)


def html(response: TestResponse) -> str:
    assert response.status_code == 200, response.status
    return response.get_data(as_text=True)


def linked_messages(page: str) -> list[int]:
    """The message each row of the event list links to, in the page's order."""
    return [int(number) for number in re.findall(r'href="/messages/(\d+)#event-\d+"', page)]


def test_the_events_page_filters(dash: Dash, pages: dict[str, int]) -> None:
    viewer = dash.login("viewer")
    everything = linked_messages(html(viewer.get("/events")))
    assert sorted(everything) == sorted(pages[name] for name in RECEIVED for _ in expected_rows(name))
    page = html(viewer.get("/events?kind=bounce&domain=example.co.jp&text=unknown&since=2014-06-21"))
    postfix = "lhost-postfix-02.eml"
    assert linked_messages(page) == [pages[postfix]] * len(expected_rows(postfix))
    for recipient in recipients("lhost-postfix-02.eml"):
        assert recipient in page
    # The form shows the filters it was given, and each row links to the identities.
    assert 'value="example.co.jp"' in page and 'value="2014-06-21"' in page
    with dash.app.test_request_context():
        identity = url_for("identity_page.show", kind="domain", value="example.jp")
    assert f'href="{identity}"' in page
    assert linked_messages(html(viewer.get("/events?kind=complaint&until=2016-04-28"))) == []
    # The complaint's report is dated "Thu, 29 Apr 2016 23:34:45 +0000": shown in UTC to the minute,
    # as on every page (web/dashboard/times.py).
    complaint = html(viewer.get("/events?kind=complaint"))
    assert '<time datetime="2016-04-29T23:34:45Z">2016-04-29T23:34Z</time>' in complaint
    assert "+00:00" not in complaint


def test_the_events_page_says_what_is_wrong_with_a_filter(dash: Dash, pages: dict[str, int]) -> None:
    page = html(dash.login("viewer").get("/events?kind=spam"))
    assert "kind must be one of bounce, complaint" in page and linked_messages(page) == []


def test_the_events_page_pages(dash: Dash, pages: dict[str, int]) -> None:
    viewer = dash.login("viewer")
    first = html(viewer.get("/events?kind=bounce&limit=4"))
    older = re.search(r'href="(/events\?[^"]*before=\d+[^"]*)"', first)
    assert older is not None and "kind=bounce" in older.group(1) and "limit=4" in older.group(1)
    second = html(viewer.get(older.group(1).replace("&amp;", "&")))
    bounces = sum(len(expected_rows(name)) for name in BOUNCES)
    assert len(linked_messages(first)) == 4 and len(linked_messages(second)) == bounces - 4
    assert "Newer" in second and "Older" not in second


def test_pages_need_a_login(dash: Dash, pages: dict[str, int]) -> None:
    anonymous = dash.app.test_client()
    message = pages[COMPLAINT]
    for url in ("/events", "/quarantine", f"/messages/{message}", f"/messages/{message}/raw"):
        response = anonymous.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    assert anonymous.post("/quarantine/reprocess").status_code in (302, 400)


def test_the_quarantine_shows_garbage_and_its_error(dash: Dash) -> None:
    with dash.session() as session:
        garbage = dash.runtime.pipeline.ingest(session, GARBAGE, source="webhook").message_id
        session.commit()
    viewer = dash.login("viewer")
    viewer_page = html(viewer.get("/quarantine"))
    assert f'href="/messages/{garbage}"' in viewer_page
    assert "not readable as a bounce or a complaint" in viewer_page
    assert "Re-process" not in viewer_page  # viewers read, admins act
    for odd in ("9" * 5000, "-1", "x"):  # a cursor not from our links starts at the newest
        assert f'href="/messages/{garbage}"' in html(viewer.get(f"/quarantine?before={odd}"))
    admin_page = html(dash.login("admin").get("/quarantine"))
    assert f'action="/messages/{garbage}/reprocess"' in admin_page
    assert 'action="/quarantine/reprocess"' in admin_page


@pytest.fixture
def broken(dash: Dash, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bounces of BOUNCES quarantined by a bug in attribution, which is fixed afterwards."""
    import attribution

    with monkeypatch.context() as patch, dash.session() as session:
        patch.setattr(attribution, "attribute", lambda *args, **kwargs: 1 / 0)
        ids = [dash.runtime.pipeline.ingest(session, (BSD / name).read_bytes(), source="test").message_id
               for name in BOUNCES]
        session.commit()
    return ids


def statuses(dash: Dash) -> dict[int, str]:
    with dash.session() as session:
        rows = session.execute(select(RawMessage.id, RawMessage.status))
        return {number: status for number, status in rows}


def event_count(dash: Dash) -> int:
    with dash.session() as session:
        return session.scalar(select(func.count()).select_from(Event)) or 0


def test_an_admin_reprocesses_the_quarantine_after_the_fix(dash: Dash, broken: list[int]) -> None:
    admin = dash.login("admin")
    page = html(admin.get("/quarantine"))
    assert "ZeroDivisionError: division by zero" in page  # a traceback's last line
    assert statuses(dash) == dict.fromkeys(broken, "quarantined") and event_count(dash) == 0
    response = admin.post("/quarantine/reprocess", data={"csrf_token": dash.csrf(admin, "/quarantine")})
    assert response.status_code == 302 and response.headers["Location"].endswith("/quarantine")
    assert statuses(dash) == dict.fromkeys(broken, "parsed")
    assert event_count(dash) == len(recipients(*BOUNCES))
    after = html(admin.get("/quarantine"))
    # The outcome, as `python app.py reprocess` prints it.
    assert f"reprocessed {len(BOUNCES)} messages: parsed {len(BOUNCES)}" in after
    assert f"events written: {len(recipients(*BOUNCES))}" in after
    assert "The quarantine is empty." in after


def test_an_admin_reprocesses_one_message(dash: Dash, broken: list[int]) -> None:
    admin = dash.login("admin")
    token = dash.csrf(admin, "/quarantine")
    response = admin.post(f"/messages/{broken[0]}/reprocess",
                          data={"csrf_token": token, "back": "quarantine"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/quarantine")
    assert statuses(dash) == {broken[0]: "parsed", **dict.fromkeys(broken[1:], "quarantined")}
    response = admin.post(f"/messages/{broken[1]}/reprocess", data={"csrf_token": token})
    assert response.headers["Location"].endswith(f"/messages/{broken[1]}")
    assert "reprocessed 1 messages: parsed 1" in html(admin.get(f"/messages/{broken[1]}"))


def test_a_viewer_cannot_reprocess(dash: Dash, broken: list[int]) -> None:
    viewer = dash.login("viewer")
    token = dash.csrf(viewer, "/quarantine")  # the log-out form's: a valid token of this session
    assert viewer.post("/quarantine/reprocess", data={"csrf_token": token}).status_code == 403
    assert viewer.post(f"/messages/{broken[0]}/reprocess", data={"csrf_token": token}).status_code == 403
    assert statuses(dash) == dict.fromkeys(broken, "quarantined")


def test_a_post_without_the_csrf_token_is_refused(dash: Dash, broken: list[int]) -> None:
    admin = dash.login("admin")
    assert admin.post("/quarantine/reprocess").status_code == 400
    assert admin.post(f"/messages/{broken[0]}/reprocess", data={"csrf_token": "forged"}).status_code == 400
    assert statuses(dash) == dict.fromkeys(broken, "quarantined")


def test_the_message_page_shows_parse_attribution_and_events(dash: Dash, pages: dict[str, int]) -> None:
    name = "lhost-exim-02.eml"
    page = html(dash.login("viewer").get(f"/messages/{pages[name]}"))
    for row in expected_rows(name):
        assert page.count(row["recipient"]) >= 2  # a parse record and an event
        assert row["status"] in page
    # The original's "Return-path: <shironeko@example.jp>" is how its domain was found.
    with dash.app.test_request_context():
        identity = url_for("identity_page.show", kind="domain", value="example.jp")
    assert f'href="{identity}"' in page and "shironeko@example.jp" in page
    assert f'href="/messages/{pages[name]}/raw"' in page
    assert "Re-process" not in page


def test_the_raw_bytes_download(dash: Dash, pages: dict[str, int]) -> None:
    viewer = dash.login("viewer")
    response = viewer.get(f"/messages/{pages[COMPLAINT]}/raw")
    assert response.status_code == 200 and response.data == (BSD / COMPLAINT).read_bytes()
    assert response.mimetype == "message/rfc822"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    missing = viewer.get("/messages/999999")
    assert missing.status_code == 404 and "There is no message 999999" in missing.get_data(as_text=True)
    assert viewer.get("/messages/999999/raw").status_code == 404
    assert viewer.get(f"/messages/{2**64}").status_code == 404


def test_html_in_a_message_is_shown_as_text(dash: Dash) -> None:
    # A bounce whose diagnostic, original subject and body carry markup: a receiver writes what it
    # likes there, and a spammer's message is returned whole.
    raw = (BSD / "lhost-postfix-02.eml").read_bytes().replace(
        b"User Unknown", b"<script>alert('diag')</script>").replace(
        b"Subject: ", b"Subject: <img src=x onerror=alert(1)> ", 1) + b"\n<script>alert('body')</script>\n"
    with dash.session() as session:
        result = dash.runtime.pipeline.ingest(session, raw, source="test")
        session.commit()
    assert result.status == "parsed"
    viewer = dash.login("viewer")
    for url in (f"/messages/{result.message_id}", "/events"):
        page = html(viewer.get(url))
        assert "<script>alert" not in page and "<img src=x" not in page, url
        assert "&lt;script&gt;alert(" in page, url
    message = html(viewer.get(f"/messages/{result.message_id}"))
    assert "&lt;script&gt;alert(&#39;body&#39;)&lt;/script&gt;" in message
