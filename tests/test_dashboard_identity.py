"""The dashboard's identity page on SQLite and PostgreSQL: what it reads, shows, and lets admins do.

Traffic as in tests/test_evaluate.py (numbers from config/rules.toml and docs/rules.md):
600 sends three hours back and 6 complaints 20 minutes back pause alice's account under
complaint-rate-pause (1.00 % of 600 recipients over 24 h, at or above 0.50 %); one 5.1.1 DSN
10 minutes back is a list-quality bounce (shared/reasons.md: userunknown).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import pytest
from flask import url_for
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from config import load_settings
from jobs.evaluate import Evaluator
from reputation import Identity, IdentityKind, RuleSet
from storage import Event, OverrideRow, VerdictRow, utcnow
from storage.counters import apply_deltas
from storage.reputation import current_decision
from tests.dashboard import Dash, dash, database_url, db_engine, db_session
from tests.reputation_samples import ALICE, bounce, complaint, ingest, send_deltas
from web.dashboard.identity_data import Span, identity_known, identity_page, timeline

__all__ = ["dash", "database_url", "db_engine", "db_session"]

NOW = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_settings(env={}).reputation.rules


def paused_alice(session: Session, rules: RuleSet, now: datetime) -> None:
    """Alice's account paused by complaint-rate-pause at ``now`` (see the module docstring)."""
    apply_deltas(session, send_deltas(ALICE, 600, now - timedelta(hours=3)).drain_deltas(), now)
    ingest(session, [complaint(i, now - timedelta(minutes=20)) for i in range(6)], now)
    ingest(session, [bounce(1, now - timedelta(minutes=10))], now)
    Evaluator(rules).run(session, now)
    session.commit()


# -- the page's data, without HTTP ----------------------------------------------------------------

def test_the_decision_in_force_is_explained_with_its_evidence(db_session: Session, rules: RuleSet) -> None:
    paused_alice(db_session, rules, NOW)
    page = identity_page(db_session, ALICE, rules, NOW)
    assert page is not None and (page.state, page.action) == ("paused", "defer")
    decision = page.decision
    assert decision is not None and decision.rule == "complaint-rate-pause"
    assert "6 complaints / 600 recipients" in decision.explanation
    assert decision.decided_at == "2026-11-30T18:30:00Z" and decision.until == "2026-11-30T19:30:00Z"
    ev = decision.evidence
    assert (ev.window, ev.value, ev.threshold) == ("24h", "1.00 %", "0.50 %")
    assert ("sends", 600) in ev.numbers and ("complaints", 6) in ev.numbers
    assert ("Minutes of the meeting", 6) in ev.subjects
    # Three complaint samples (the evaluation keeps 3), each linked to the message that reported it.
    assert len(ev.complaints) == 3 and {s.reason for s in ev.complaints} == {"feedback"}
    reported = {event_id: message_id for event_id, message_id in db_session.execute(
        select(Event.id, Event.message_id))}
    assert all(s.message_id == reported[s.event_id] for s in (*ev.complaints, *ev.bounces))
    assert [(s.reason, s.status) for s in ev.bounces] == [("userunknown", "5.1.1")]
    # The history holds the same pause, open, with the same evidence.
    assert [(h.state, h.rule, h.outcome, h.ended_at) for h in page.history] == [
        ("paused", "complaint-rate-pause", None, None)]
    assert page.history[0].evidence.value == "1.00 %" and page.history[0].judgeable
    assert page.overrides == ()
    windows = {w["window"]: w for w in page.windows}
    assert windows["24h"]["sends"] == 600 and windows["24h"]["complaints"] == 6


def test_the_timeline_counts_sends_bounces_by_group_and_complaints(db_session: Session,
                                                                   rules: RuleSet) -> None:
    paused_alice(db_session, rules, NOW)
    hours = timeline(db_session, ALICE, NOW, Span.HOURS)
    # 48 hourly bars ending with the current hour, 18:00 on 30 November.
    assert len(hours.labels) == 48
    assert (hours.labels[0], hours.labels[-1]) == ("11-28 19h", "11-30 18h")
    sent = {label: n for label, n in zip(hours.labels, hours.sends, strict=True) if n}
    assert sent == {"11-30 15h": 600}  # sent from 15:30 over half an hour
    assert hours.complaints[-1] == 6 and sum(hours.complaints) == 6
    assert [(group, values[-1], sum(values)) for group, values in hours.bounces] == [("list_quality", 1, 1)]
    days = timeline(db_session, ALICE, NOW, Span.DAYS)
    assert (len(days.labels), days.labels[-1]) == (14, "2026-11-30")
    assert (days.sends[-1], days.complaints[-1], sum(days.sends)) == (600, 6, 600)
    # Seen from two days later, the 48-hour range no longer holds any of it.
    later = timeline(db_session, ALICE, NOW + timedelta(days=2), Span.HOURS)
    assert later.empty and later.labels[-1] == "12-02 18h"


def test_an_identity_never_seen_has_no_page(db_session: Session, rules: RuleSet) -> None:
    nobody = Identity(IdentityKind.ACCOUNT, "nobody@example.com")
    assert identity_page(db_session, nobody, rules, NOW) is None
    # Sends counted by a policy node are enough to know it.
    apply_deltas(db_session, send_deltas(nobody, 3, NOW - timedelta(minutes=5)).drain_deltas(), NOW)
    db_session.commit()
    assert identity_known(db_session, nobody)
    page = identity_page(db_session, nobody, rules, NOW)
    assert page is not None and (page.state, page.decision, page.history) == ("ok", None, ())
    assert sum(page.timeline.sends) == 3


# -- the page over HTTP, as an admin and as a viewer ------------------------------------------------

PAGE = "/identities/account/alice@example.com"
LIMIT_SENTENCE = "limit needs limit_per_hour, a whole number of messages an hour (0 to 2147483647)"


def text(response: TestResponse) -> str:
    """The page as a person reads it (entities such as &#39; decoded)."""
    return html.unescape(response.get_data(as_text=True))


def seeded(dash: Dash) -> None:
    """Alice paused now (the page reads the real clock)."""
    with dash.session() as session:  # closed at once: on SQLite an open session holds the write lock
        paused_alice(session, dash.runtime.settings.reputation.rules, utcnow())


def stored(dash: Dash) -> tuple[str, str, int | None]:
    """Alice's decision in force (state, action, open history entry), read from the database."""
    with dash.session() as session:
        row = current_decision(session, ALICE)
        assert row is not None
        return row.state, row.action, row.history_id


def post(dash: Dash, client: FlaskClient, form: dict[str, str], url: str = PAGE) -> TestResponse:
    return client.post(url, data={"csrf_token": dash.csrf(client, PAGE), **form})


def test_a_viewer_reads_the_explanation_but_cannot_act(dash: Dash) -> None:
    seeded(dash)
    viewer = dash.login("viewer")
    response = viewer.get(PAGE)
    assert response.status_code == 200
    body = text(response)
    assert "complaint-rate-pause" in body and "6 complaints / 600 recipients" in body
    assert "1.00 %" in body and "0.50 %" in body and "Minutes of the meeting" in body
    assert 'name="action"' not in body and 'name="verdict"' not in body
    assert "<svg" in body and "Sends per hour (UTC)" in body
    days = text(viewer.get(PAGE + "?range=14d"))
    # Sends are kept [reputation].counter_days (35 by default, config/default.toml) days: more than
    # the 14 shown, so the page has no note about missing days.
    assert "Sends per day (UTC)" in days and "Sends are kept" not in days
    token = dash.csrf(viewer, PAGE)  # the logout form carries one
    refused = viewer.post(PAGE, data={"csrf_token": token, "action": "resume", "reason": "mine"})
    assert refused.status_code == 403
    assert stored(dash)[:2] == ("paused", "defer")


def test_an_admin_resume_changes_the_decision_in_force(dash: Dash) -> None:
    seeded(dash)
    admin = dash.login("admin", name="dave")
    body = text(admin.get(PAGE))
    assert 'value="resume"' in body and 'value="confirmed"' in body
    response = post(dash, admin, {"action": "resume", "reason": "password reset"})
    assert response.status_code == 302 and response.headers["Location"].endswith(PAGE + "?range=48h")
    # Resumed on probation: watch, and the MTA is told allow (docs/rules.md).
    assert stored(dash)[:2] == ("watch", "allow")
    page = text(admin.get(PAGE))
    assert "Resume recorded by dave" in page and "password reset" in page and "admin resumed" in page
    with dash.session() as session:
        assert [(o.kind, o.author) for o in session.scalars(select(OverrideRow))] == [("resume", "dave")]


def test_a_bad_limit_is_refused_with_the_sentence(dash: Dash) -> None:
    seeded(dash)
    admin = dash.login("admin")
    response = post(dash, admin, {"action": "limit", "limit_per_hour": "ten", "reason": "watching"})
    assert response.status_code == 302
    assert LIMIT_SENTENCE in text(admin.get(PAGE))
    assert stored(dash)[:2] == ("paused", "defer")
    post(dash, admin, {"action": "allow", "reason": "x", "expires": "soon"})
    assert "the expiry must be a duration such as 90m, 24h or 7d" in text(admin.get(PAGE))
    post(dash, admin, {"action": "allow", "reason": "x", "expires": "2000-01-01T00:00:00Z"})
    assert "is in the past" in text(admin.get(PAGE))
    # A good one is recorded (the pause itself stays: docs/rules.md, a limit does not lift a pause).
    post(dash, admin, {"action": "limit", "limit_per_hour": "20", "reason": "watching", "expires": "24h"})
    with dash.session() as session:
        rows = session.scalars(select(OverrideRow)).all()
        assert [(o.kind, o.limit_per_hour, o.reason) for o in rows] == [("limit", 20, "watching")]
        assert rows[0].expires_at is not None and rows[0].expires_at > utcnow() + timedelta(hours=23)
    assert stored(dash)[:2] == ("paused", "defer")


def test_a_verdict_is_recorded_with_the_users_name(dash: Dash) -> None:
    seeded(dash)
    _, _, history_id = stored(dash)
    assert history_id is not None
    admin = dash.login("admin", name="carol")
    response = post(dash, admin, {"action": "verdict", "verdict": "confirmed", "decision_id": str(history_id),
                                  "reason": "phished password"})
    assert response.status_code == 302
    with dash.session() as session:
        verdicts = session.scalars(select(VerdictRow)).all()
        names = session.scalars(select(OverrideRow.author)).all()
    assert [(v.kind, v.decision_id, v.note, v.rule) for v in verdicts] == [
        ("confirmed", history_id, "phished password", "complaint-rate-pause")]
    assert names == [] and verdicts[0].author == "carol"
    body = text(admin.get(PAGE))
    assert "Verdict confirmed recorded by carol" in body and "phished password" in body


def test_a_script_path_round_trips_through_the_url(dash: Dash) -> None:
    seeded(dash)
    admin = dash.login("admin")
    script = "/home/alice/public_html/mailer.php"
    with dash.app.test_request_context():
        url = url_for("identity_page.show", kind="script", value=script)
    assert admin.get(url).status_code == 404  # never seen yet
    response = post(dash, admin, {"action": "block", "reason": "a mailer script"}, url=url)
    assert response.status_code == 302
    body = text(admin.get(url))
    assert 'class="badge state-blocked"' in body and script in body and "a mailer script" in body


def test_unknown_identities_and_kinds_get_a_friendly_404(dash: Dash) -> None:
    viewer = dash.login("viewer")
    nobody = viewer.get("/identities/account/nobody@example.com")
    assert nobody.status_code == 404 and "nobody@example.com" in text(nobody)
    kind = viewer.get("/identities/user/alice")
    assert kind.status_code == 404 and "unknown identity kind 'user'" in text(kind)
