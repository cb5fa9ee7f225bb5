"""The dashboard's Overview: its figures (web/dashboard/overview_data.py) and the page itself.

Events, decisions and counters are seeded directly with known numbers on both backends (through
the storage functions the pipeline and the policy nodes use); every expected value below is
worked out by hand from the seed, in the comments next to it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import url_for
from sqlalchemy import text
from sqlalchemy.orm import Session

from config import load_settings
from reports.build import Thresholds
from storage.reputation_models import DecisionHistory, DecisionRow
from storage.types import utcnow
from tests.dashboard import Dash, dash, database_url, db_engine, db_session
from tests.seeding import add_events, add_sends
from web.dashboard.overview import rate_charts, threshold_lines
from web.dashboard.overview_data import (
    StoppedSender,
    daily_figures,
    outbound_ips,
    overview,
    stopped_senders,
    top_identities,
)

__all__ = ["dash", "database_url", "db_engine", "db_session"]  # the fixtures

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
SPAMHAUS = "550 5.7.1 Service unavailable; client [192.0.2.10] blocked using zen.spamhaus.org"
BARRACUDA = "554 Service unavailable; Client host [192.0.2.10] blocked using Barracuda Reputation"
MICROSOFT = "550 5.7.1 Unfortunately, messages from [198.51.100.7] weren't sent. (S3150)"
SPAMCOP = "554 5.7.1 Blocked - see https://www.spamcop.net/bl.shtml?192.0.2.99"
ALICE, BOB = ("account", "alice@one.example"), ("account", "bob@two.example")
ONE, TWO = ("customer", "one"), ("customer", "two")
IP1, IP2 = ("ip", "192.0.2.10"), ("ip", "198.51.100.7")
_sends, _events = add_sends, add_events


def _decision(session: Session, who: tuple[str, str], state: str, decided: datetime,
              entered: datetime | None = None, until: datetime | None = None,
              rule: str | None = "complaint-rate-pause", limit: int | None = None) -> None:
    """A decision in force; ``entered``: when its decision_history entry began (None: no entry)."""
    history = None
    reason = f"{state}: rule '{rule}': complaint_rate over 24h is 0.62 % (31 of 5000), at or above 0.50 %"
    if entered is not None:
        history = DecisionHistory(identity_kind=who[0], identity_value=who[1], state=state, action="defer",
                                  rule=rule, reason=reason, evidence={}, decided_at=entered, until=until)
        session.add(history)
        session.flush()
    session.add(DecisionRow(identity_kind=who[0], identity_value=who[1], state=state, action="defer",
                            rule=rule, reason=reason, limit_per_hour=limit, until=until, evidence={},
                            decided_at=decided, history_id=history.id if history is not None else None))


# -- stopped senders -------------------------------------------------------------------------------

def seed_decisions(session: Session, now: datetime = NOW) -> None:
    """Four stopped senders, and three that must not be listed."""
    _decision(session, ALICE, "paused", now - timedelta(minutes=10), entered=now - timedelta(hours=3),
              until=now + timedelta(hours=1))
    _decision(session, BOB, "throttled", now - timedelta(hours=1), rule="complaint-rate-throttle", limit=100)
    _decision(session, ONE, "blocked", now - timedelta(days=2), entered=now - timedelta(days=2))
    _decision(session, ("script", "/home/two/form.php"), "held", now - timedelta(minutes=30),
              entered=now - timedelta(minutes=30))
    _decision(session, TWO, "watch", now - timedelta(minutes=5))
    _decision(session, ("domain", "ok.example"), "ok", now - timedelta(minutes=5), rule=None)
    _decision(session, ("account", "cooled@one.example"), "paused", now - timedelta(hours=2),
              entered=now - timedelta(hours=2), until=now)  # its cool-down ends at now: no longer applies
    session.commit()


def test_stopped_senders_most_severe_first_with_why_and_since(db_session: Session) -> None:
    seed_decisions(db_session)
    senders, total = stopped_senders(db_session, NOW)
    # blocked > held > paused > throttled; watch and ok are not stopped; the pause whose cool-down
    # ended at NOW no longer applies (the policy nodes ignore it already).
    assert [(s.kind, s.value, s.state) for s in senders] == [
        ("customer", "one", "blocked"), ("script", "/home/two/form.php", "held"),
        ("account", "alice@one.example", "paused"), ("account", "bob@two.example", "throttled")]
    assert total == 4
    alice = senders[2]
    # Since: the start of the history entry (3 h ago), not the row's last update (10 min ago).
    assert alice.since == NOW - timedelta(hours=3)
    assert alice.until == NOW + timedelta(hours=1)
    assert alice.rule == "complaint-rate-pause"
    assert "0.62 % (31 of 5000)" in alice.why
    bob = senders[3]
    assert bob.since == NOW - timedelta(hours=1)  # no history entry: the row's own time
    assert (bob.limit_per_hour, bob.until, bob.rule) == (100, None, "complaint-rate-throttle")


def test_why_shows_the_numbers_the_other_columns_do_not() -> None:
    until = datetime(2026, 11, 30, 5, 38, tzinfo=UTC)
    # reputation.explain.decision_reason's sentence for a first pause (the browser test's scenario).
    why = ("paused: rule 'block-bounce-rate-pause': block_bounce_rate over 1h is 25.00 % (20 block bounces "
           "/ 80 recipients), at or above 20.00 % - paused until 2026-11-30 05:38 UTC, pause number 1 (1h "
           "cool-down)")
    paused = StoppedSender(kind="account", value="a@b.example", state="paused", action="defer",
                           rule="block-bounce-rate-pause", why=why, limit_per_hour=None, since=NOW,
                           until=until)
    assert paused.numbers == ("block_bounce_rate over 1h is 25.00 % (20 block bounces / 80 recipients), "
                              "at or above 20.00 % - pause number 1 (1h cool-down)")
    # An admin's block names no rule and no numbers: its sentence is all there is.
    blocked = replace(paused, state="blocked", rule=None, until=None, why="blocked by ops: spam run")
    assert blocked.numbers == "blocked by ops: spam run"


def test_stopped_senders_limit_keeps_the_total(db_session: Session) -> None:
    seed_decisions(db_session)
    senders, total = stopped_senders(db_session, NOW, limit=2)
    assert [s.state for s in senders] == ["blocked", "held"]
    assert total == 4


# -- top identities ------------------------------------------------------------------------------

def seed_top(session: Session) -> None:
    """Complaints, bounces and sends inside and outside [NOW - 24 h, NOW)."""
    _events(session, 5, "complaint", "feedback", NOW - timedelta(hours=2), [ALICE, ONE, IP1])
    _events(session, 2, "complaint", "feedback", NOW - timedelta(hours=24), [BOB, TWO])  # first instant: in
    _events(session, 9, "complaint", "feedback", NOW - timedelta(hours=24, seconds=1), [BOB])  # out
    _events(session, 9, "complaint", "feedback", NOW, [BOB])  # the end is excluded
    _events(session, 4, "bounce", "blocked", NOW - HOUR, [BOB, IP1], hard=False, diagnostic=SPAMHAUS)
    _events(session, 3, "bounce", "spamdetected", NOW - 5 * HOUR, [ALICE], hard=False)
    _events(session, 10, "bounce", "userunknown", NOW - 5 * HOUR, [ALICE, ONE], hard=True)  # list quality
    _sends(session, ALICE, NOW - timedelta(hours=2), 1000)
    _sends(session, ONE, NOW - timedelta(hours=2), 1000)
    _sends(session, BOB, NOW - timedelta(hours=23), 150)
    _sends(session, BOB, NOW - timedelta(hours=3), 50)
    _sends(session, IP1, NOW - timedelta(hours=2), 1200)  # outbound IPs have their own section
    _sends(session, ALICE, NOW - timedelta(hours=25), 500)  # before the window
    session.commit()


def test_top_identities_over_24_hours(db_session: Session) -> None:
    seed_top(db_session)
    top = top_identities(db_session, NOW)
    assert top.since == NOW - timedelta(hours=24)
    # Complaints: alice and customer one 5 each; bob and customer two 2 each (the event exactly
    # 24 h ago is in, the one a second earlier and the one at NOW are not). Ties: by kind, value.
    assert [(t.kind, t.value, t.count) for t in top.complaints] == [
        ("account", "alice@one.example", 5), ("customer", "one", 5),
        ("account", "bob@two.example", 2), ("customer", "two", 2)]
    # Block bounces: bob's 4 "blocked", alice's 3 "spamdetected"; userunknown is list quality.
    assert [(t.kind, t.value, t.count) for t in top.block_bounces] == [
        ("account", "bob@two.example", 4), ("account", "alice@one.example", 3)]
    # Sends: alice 1000 (her 500 of 25 h ago are out), customer one 1000, bob 150 + 50.
    assert [(t.kind, t.value, t.count) for t in top.sends] == [
        ("account", "alice@one.example", 1000), ("customer", "one", 1000),
        ("account", "bob@two.example", 200)]


def test_top_identities_are_limited(db_session: Session) -> None:
    seed_top(db_session)
    top = top_identities(db_session, NOW, top=1)
    assert [(t.value, t.count) for t in top.complaints] == [("alice@one.example", 5)]
    assert [(t.value, t.count) for t in top.block_bounces] == [("bob@two.example", 4)]
    assert [(t.value, t.count) for t in top.sends] == [("alice@one.example", 1000)]


# -- provider-wide rates per day -----------------------------------------------------------------

def seed_days(session: Session) -> None:
    """Today (2026-11-30, up to NOW), yesterday, the first of the 30 days, and outside them."""
    today = datetime(2026, 11, 30, tzinfo=UTC)
    _sends(session, ALICE, today + timedelta(hours=8), 1000)
    _sends(session, BOB, today + timedelta(hours=9), 500)
    _sends(session, ONE, today + timedelta(hours=8), 1000)
    _sends(session, ALICE, today - timedelta(minutes=1), 200)  # 2026-11-29 23:59
    _sends(session, ALICE, NOW + timedelta(hours=1), 7000)  # after NOW: not counted
    _events(session, 3, "complaint", "feedback", today + timedelta(hours=8, minutes=30), [ALICE, ONE])
    _events(session, 1, "complaint", "feedback", today + timedelta(hours=9), [])  # unattributed: counted
    _events(session, 1, "complaint", "feedback", today, [ALICE])  # midnight: today
    _events(session, 1, "complaint", "feedback", today - timedelta(seconds=1), [ALICE])  # yesterday
    _events(session, 30, "bounce", "userunknown", today + timedelta(hours=10), [ALICE], hard=True)
    _events(session, 5, "bounce", "blocked", today + timedelta(hours=10), [BOB], hard=False)
    _events(session, 2, "bounce", "onhold", today + timedelta(hours=10), [BOB])  # hard unknown: soft
    _events(session, 1, "complaint", "feedback", datetime(2026, 11, 1, tzinfo=UTC), [ALICE])  # first day
    _events(session, 1, "complaint", "feedback", datetime(2026, 11, 1, tzinfo=UTC) - timedelta(seconds=1),
            [ALICE])  # the day before the first: out
    _events(session, 1, "complaint", "feedback", NOW + timedelta(minutes=1), [ALICE])  # after NOW: out
    session.commit()


def test_daily_figures_per_utc_day(db_session: Session) -> None:
    seed_days(db_session)
    if db_session.get_bind().dialect.name == "postgresql":
        # Days are UTC days whatever the session's time zone (here UTC+13 in November).
        db_session.execute(text("SET TIME ZONE 'Pacific/Auckland'"))
    days = daily_figures(db_session, NOW)
    assert [d.day for d in days] == [date(2026, 11, 1) + timedelta(days=i) for i in range(30)]
    today, yesterday, first = days[-1].figures, days[-2].figures, days[0].figures
    # Today: accounts 1000 + 500 = 1500 sends, customers 1000: the provider sent 1500.
    # Complaints 3 + 1 (unattributed) + 1 (at midnight) = 5; bounces 30 + 5 + 2 = 37, 30 hard.
    assert (today.sends, today.complaints, today.bounces, today.hard_bounces) == (1500, 5, 37, 30)
    assert today.complaint_rate == pytest.approx(5 / 1500)
    assert today.bounce_rate == pytest.approx(30 / 1500)
    assert (yesterday.sends, yesterday.complaints, yesterday.hard_bounces) == (200, 1, 0)
    assert yesterday.complaint_rate == pytest.approx(1 / 200)
    assert yesterday.bounce_rate == 0
    # The first day: one complaint and no counted sends: no rate.
    assert (first.sends, first.complaints, first.complaint_rate, first.bounce_rate) == (0, 1, None, None)
    assert sum(d.figures.complaints for d in days) == 7  # 5 + 1 + 1; the three outside are not counted
    assert all(d.figures.sends == 0 for d in days[1:-2])


# -- outbound IP health --------------------------------------------------------------------------

def seed_ips(session: Session, now: datetime = NOW) -> None:
    """Block bounces on two outbound IPs in the last 7 days, one before, one unattributed."""
    _events(session, 4, "bounce", "blocked", now - HOUR, [BOB, IP1], hard=False, diagnostic=SPAMHAUS)
    _events(session, 1, "bounce", "badreputation", now - 6 * DAY, [IP1], hard=False, diagnostic=BARRACUDA)
    _events(session, 3, "bounce", "blocked", now - 8 * DAY, [IP1], hard=False, diagnostic=SPAMHAUS)
    _events(session, 2, "bounce", "policyviolation", now - timedelta(days=1), [IP2], hard=False,
            diagnostic=MICROSOFT)
    _events(session, 1, "bounce", "userunknown", now - timedelta(days=1), [IP2], hard=True)
    _events(session, 1, "bounce", "blocked", now - timedelta(days=2), [], hard=False, diagnostic=SPAMCOP)
    session.commit()


def test_outbound_ips_over_7_days_worst_first(db_session: Session) -> None:
    seed_ips(db_session)
    ips, total, named = outbound_ips(db_session, NOW)
    # 192.0.2.10: 4 + 1 block bounces (the 3 of 8 days ago are out); 198.51.100.7: 2 (userunknown
    # is not a block).
    assert [(ip.ip, ip.block_bounces, ip.blocklists) for ip in ips] == [
        ("192.0.2.10", 5, {"Barracuda": 1, "Spamhaus": 4}), ("198.51.100.7", 2, {"Microsoft": 2})]
    assert total == 2
    # Every bounce's text counts, attributed to an IP or not.
    assert named == {"Spamhaus": 4, "Microsoft": 2, "Barracuda": 1, "SpamCop": 1}
    first, total, _ = outbound_ips(db_session, NOW, limit=1)
    assert ([ip.ip for ip in first], total) == (["192.0.2.10"], 2)


# -- the whole page's data and the thresholds ----------------------------------------------------

def test_overview_takes_the_thresholds_of_the_rules_in_force(db_session: Session) -> None:
    seed_decisions(db_session)
    rules = load_settings(env={}).reputation.rules
    data = overview(db_session, NOW, rules)
    # config/rules.toml: complaint-rate-throttle at 0.003, hard-bounce-rate-watch 0.05 and -pause 0.10.
    assert data.thresholds == Thresholds(complaint_rate=0.003, bounce_review=0.05, bounce_pause=0.10)
    assert data.stopped_total == 4 and len(data.days) == 30 and data.now == NOW
    complaint, bounce = threshold_lines(data.thresholds)
    assert complaint == (("Gmail/Yahoo 0.3 %", 0.003),)
    assert bounce == (("SES review 5 %", 0.05), ("SES pause 10 %", 0.10))


SVG = "{http://www.w3.org/2000/svg}"


def _thresholds_drawn(chart: ET.Element) -> list[tuple[str, float]]:
    """(name, value) of each dashed threshold line of a web.dashboard.charts line chart."""
    return [("".join(title.itertext()), float(group.get("data-value", "nan")))
            for group in chart.iter(f"{SVG}g") if group.get("class") == "threshold"
            for title in group.iter(f"{SVG}title")]


def test_rate_charts_draw_the_days_with_sends_and_the_thresholds(db_session: Session) -> None:
    seed_days(db_session)
    data = overview(db_session, NOW, load_settings(env={}).reputation.rules)
    complaint, bounce = (ET.fromstring(str(chart)) for chart in rate_charts(data))
    assert _thresholds_drawn(complaint) == [("Gmail/Yahoo 0.3 %", 0.003)]
    assert _thresholds_drawn(bounce) == [("SES review 5 %", 0.05), ("SES pause 10 %", 0.10)]
    # One dot per day with counted sends (yesterday, today); the 28 days without sends leave gaps.
    assert [float(c.get("data-value", "nan")) for c in complaint.iter(f"{SVG}circle")] == pytest.approx(
        [1 / 200, 5 / 1500])
    assert [float(c.get("data-value", "nan")) for c in bounce.iter(f"{SVG}circle")] == pytest.approx(
        [0, 30 / 1500])


# -- the page ------------------------------------------------------------------------------------

def _link(dash: Dash, kind: str, value: str) -> str:
    """The href of an identity's page (the dashboard contract's identity_page.show)."""
    with dash.app.test_request_context():
        return url_for("identity_page.show", kind=kind, value=value)


def test_page_shows_who_is_stopped_and_why_to_a_viewer(dash: Dash) -> None:
    now = utcnow()
    session = dash.session()
    seed_decisions(session, now)
    seed_ips(session, now)
    viewer = dash.login("viewer")
    response = viewer.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    alice = _link(dash, "account", "alice@one.example")
    assert alice.startswith("/identities/account/")
    assert f'<a href="{alice}">alice@one.example</a>' in html
    page = viewer.get(alice)  # the link opens her page
    assert page.status_code == 200 and "complaint-rate-pause" in page.get_data(as_text=True)
    assert "complaint-rate-pause" in html and "complaint-rate-throttle" in html
    # The Why column shows the numbers; the State and Rule columns say the rest of the sentence,
    # which stays whole in the cell's title (escaped: its quotes are HTML entities).
    assert ('title="paused: rule &#39;complaint-rate-pause&#39;: complaint_rate over 24h is 0.62 % '
            '(31 of 5000), at or above 0.50 %">complaint_rate over 24h is 0.62 % (31 of 5000), '
            'at or above 0.50 %</td>') in html
    # Most severe first: the blocked customer, the held script, alice (paused), bob (throttled).
    stopped = html[html.index('id="stopped"'):html.index("</table>", html.index('id="stopped"'))]
    order = [stopped.index(f">{value}</a>") for value in ("one", "/home/two/form.php", "alice@one.example",
                                                             "bob@two.example")]
    assert order == sorted(order)
    assert "cooled@one.example" not in stopped and ">two</a>" not in stopped  # cooled down, only watched
    assert (now - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%MZ") in stopped  # alice's since
    # The thresholds are named on the charts and under them.
    for name in ("Gmail/Yahoo 0.3 %", "SES review 5 %", "SES pause 10 %"):
        assert name in html
    # Outbound IP health: the worse IP first, linked, with its blocklists.
    ips = html[html.index('id="ips"'):]
    worse = f'<a href="{_link(dash, "ip", "192.0.2.10")}">192.0.2.10</a>'
    assert ips.index(worse) < ips.index("198.51.100.7")
    assert "Barracuda (1), Spamhaus (4)" in ips and "Microsoft (2)" in ips
    assert "Spamhaus (4), Microsoft (2), Barracuda (1), SpamCop (1)" in ips  # every bounce's text


def test_page_of_an_empty_database(dash: Dash) -> None:
    html = dash.login("admin").get("/").get_data(as_text=True)
    assert "No sender is throttled, paused, held or blocked." in html
    assert "No bounce was attributed to an outbound IP in the last 7 days." in html
    assert html.count('<th scope="row">') == 30  # one row per day of the rate table, all without sends


def test_anonymous_is_sent_to_the_login_page(dash: Dash) -> None:
    response = dash.client().get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
