"""The /rules page: the rules in force with their parameters, how often each fired in the last four
weeks (decision_history) and its precision from the admins' verdicts, on both backends.

Expected counts are the seeded rows counted by hand; precision is confirmed / (confirmed + false
positives) as docs/rules.md defines it; thresholds are the ones config/rules.toml and the rules
given below write.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from config import ReputationSettings
from reputation import load_rules
from storage.reputation_models import DecisionHistory, DecisionRow, VerdictRow
from tests import db
from tests.dashboard import Dash, dash
from web.dashboard.rules_page_data import RuleTerms, rules_page, threshold_text

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session
__all__ = ["cells", "dash", "database_url", "db_engine", "db_session", "rows"]

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
ALICE, BOB, CAROL = ("account", "alice@example.net"), ("account", "bob@example.net"), ("customer", "c-7")

RULES = load_rules({
    "tiers": {"trusted": {"description": "Tags its mail."}, "risky": {"description": "New customers."}},
    "rule": [
        {"name": "complaint-rate-throttle", "description": "Gmail's 0.3 %.", "metric": "complaint_rate",
         "window": "24h", "threshold": 0.003, "min_volume": 500, "state": "throttled", "limit_per_hour": 100,
         "kinds": ["account", "customer"],
         "tiers": {"trusted": {"threshold": 0.006, "min_volume": 1000}, "risky": {"enabled": False}}},
        {"name": "block-bounces-pause", "metric": "block_bounces", "window": "1h", "threshold": 10,
         "state": "paused"},
        {"name": "volume-spike", "metric": "volume_vs_baseline", "window": "1h", "threshold": 5,
         "min_volume": 100, "state": "held"},
    ],
}, "test-rules.toml")
SETTINGS = ReputationSettings(rules_file="test-rules.toml", evaluate_seconds=60, upkeep_seconds=60,
                              counter_days=8, rules=RULES, default_tier="risky",
                              customer_tiers={"c-1": "trusted", "c-2": "trusted", "c-3": "risky"})


def rows(page: str, attribute: str) -> dict[str, str]:
    """The table rows of ``page`` that carry ``attribute``, by its value (the row's inner HTML)."""
    found = re.findall(rf'<tr {attribute}="([^"]+)"[^>]*>(.*?)</tr>', page, re.DOTALL)
    return {html.unescape(key): inner for key, inner in found}


def cells(row: str) -> dict[str, str]:
    """The ``data-cell`` cells of one row, by name, as text (tags dropped, spaces collapsed)."""
    found = re.findall(r'<td data-cell="([^"]+)"[^>]*>(.*?)</td>', row, re.DOTALL)
    return {name: " ".join(html.unescape(re.sub(r"<[^>]+>", " ", inner)).split()) for name, inner in found}


def _history(session: Session, who: tuple[str, str], rule: str | None, decided: datetime,
             state: str = "paused") -> None:
    session.add(DecisionHistory(identity_kind=who[0], identity_value=who[1], state=state, action="defer",
                                rule=rule, evidence={}, decided_at=decided))


def _verdicts(session: Session, rule: str, confirmed: int, false_positives: int, at: datetime) -> None:
    for kind, count in (("confirmed", confirmed), ("false_positive", false_positives)):
        session.add_all(VerdictRow(identity_kind="account", identity_value=ALICE[1], rule=rule, kind=kind,
                                   author="ops", at=at) for _ in range(count))


def seed(session: Session, now: datetime, throttle: str = "complaint-rate-throttle") -> None:
    """Firings of ``throttle`` in slices 1, 3 and 4 (two identities), one older, a retired rule."""
    since = now - 4 * WEEK
    _history(session, ALICE, throttle, since + timedelta(days=2), "throttled")  # slice 1
    _history(session, ALICE, throttle, since + 2 * WEEK + timedelta(hours=1), "throttled")  # slice 3
    _history(session, BOB, throttle, now - timedelta(hours=2), "throttled")  # slice 4
    _history(session, BOB, throttle, since - timedelta(minutes=1), "throttled")  # before the 4 weeks
    _history(session, CAROL, "old-rule", now - timedelta(days=3))  # renamed since
    _history(session, CAROL, None, now - timedelta(days=1), "blocked")  # an admin's block: no rule
    session.add_all([
        DecisionRow(identity_kind=BOB[0], identity_value=BOB[1], state="throttled", action="throttle",
                    rule=throttle, evidence={}, decided_at=now - timedelta(hours=2)),
        DecisionRow(identity_kind=ALICE[0], identity_value=ALICE[1], state="ok", action="allow",
                    rule=throttle, evidence={}, decided_at=now - timedelta(hours=1)),
    ])
    _verdicts(session, throttle, 3, 1, now - timedelta(days=1))  # 75 %
    _verdicts(session, "old-rule", 0, 2, now - timedelta(days=40))  # 0 %, verdicts older than 4 weeks count
    session.commit()


def test_threshold_text() -> None:
    assert threshold_text(RULES.rules[0].metric, 0.003) == "0.3 %"
    assert threshold_text(RULES.rules[1].metric, 10) == "10"
    assert threshold_text(RULES.rules[2].metric, 5) == "5 x the busiest hour of the past week"


def test_fire_counts_and_precision(db_session: Session) -> None:
    seed(db_session, NOW)
    page = rules_page(db_session, SETTINGS, NOW)
    by_name = {line.name: line for line in page.rules}
    assert list(by_name) == ["complaint-rate-throttle", "block-bounces-pause", "volume-spike"]
    throttle = by_name["complaint-rate-throttle"]
    assert (throttle.fired.total, throttle.fired.identities, throttle.fired.per_week) == (3, 2, (1, 0, 1, 1))
    assert throttle.fired.last == NOW - timedelta(hours=2)
    assert throttle.fired.in_force == 1  # bob; alice's decision is ok
    assert (throttle.verdicts.confirmed, throttle.verdicts.false_positives) == (3, 1)
    assert throttle.precision_text == "75 %"
    quiet = by_name["block-bounces-pause"]
    assert (quiet.fired.total, quiet.fired.last, quiet.precision_text) == (0, None, "n/a")
    assert [(line.name, line.fired.total, line.precision_text) for line in page.retired] == [
        ("old-rule", 1, "0 %")]
    assert page.since == NOW - 4 * WEEK


def test_probation_after_a_pause_is_not_a_firing(db_session: Session) -> None:
    """After a cool-down the ladder puts the sender on probation, ``watch``, and the history entry
    keeps the pause's rule name (reputation.ladder._climb, storage.reputation.record_decision):
    one pause is one firing, and a sender on probation is not held by the rule."""
    pause_at = NOW - timedelta(hours=5)
    _history(db_session, ALICE, "block-bounces-pause", pause_at, "paused")
    _history(db_session, ALICE, "block-bounces-pause", pause_at + timedelta(hours=1), "watch")
    _history(db_session, CAROL, "old-rule", pause_at, "paused")  # a rule no longer in the file
    _history(db_session, CAROL, "old-rule", pause_at + timedelta(hours=1), "watch")
    db_session.add_all(DecisionRow(identity_kind=kind, identity_value=value, state="watch", action="allow",
                                   rule=rule, evidence={}, decided_at=pause_at + timedelta(hours=1))
                       for (kind, value), rule in ((ALICE, "block-bounces-pause"), (CAROL, "old-rule")))
    db_session.commit()
    page = rules_page(db_session, SETTINGS, NOW)
    pause = next(line for line in page.rules if line.name == "block-bounces-pause")
    assert (pause.fired.total, pause.fired.identities, pause.fired.per_week) == (1, 1, (0, 0, 0, 1))
    assert (pause.fired.last, pause.fired.in_force) == (pause_at, 0)
    assert [(line.name, line.fired.total, line.fired.last, line.fired.in_force) for line in page.retired] == [
        ("old-rule", 1, pause_at, 0)]


def test_parameters_and_tiers(db_session: Session) -> None:
    page = rules_page(db_session, SETTINGS, NOW)
    throttle = page.rules[0]
    assert throttle.terms == RuleTerms(condition="complaint_rate >= 0.3 % over 24h",
                                       volume="at least 500 recipients", kinds="account, customer",
                                       state="throttled", limit="100/h")
    assert dict(throttle.tiers) == {"risky": "disabled",
                                    "trusted": "threshold 0.6 %, at least 1000 recipients"}
    pause, spike = page.rules[1].terms, page.rules[2].terms
    assert pause is not None and (pause.condition, pause.volume, pause.limit) == (
        "block_bounces >= 10 over 1h", "", "")  # a count needs no minimum volume; only throttles limit
    assert spike is not None and spike.volume == "at least 100 sends"  # volume_vs_baseline counts sends
    tiers = [(tier.name, tier.customers, tier.default) for tier in page.tiers]
    assert tiers == [("risky", 1, True), ("trusted", 2, False)]
    # LadderSettings' defaults (1 h, 4 h, 24 h: no [ladder]), in format_duration's shortest spelling.
    assert dict(page.settings)["cool-downs"] == "1h, 4h, 1d"


def test_page_shows_the_rules_in_force(dash: Dash) -> None:
    now = datetime.now(UTC)
    with dash.session() as session:
        seed(session, now)
    html = dash.login("viewer").get("/rules").get_data(as_text=True)
    table = rows(html, "data-rule")
    throttle = cells(table["complaint-rate-throttle"])
    # The total, and under it each 7-day slice, oldest first.
    assert (throttle["fired"], throttle["identities"], throttle["in-force"]) == (
        "3 weekly: 1 · 0 · 1 · 1", "2", "1")
    assert throttle["precision"] == "75 % 3 confirmed, 1 false positive"
    assert throttle["last"] == (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%MZ")
    # config/rules.toml, as the runtime loaded it: 0.3 %, 500 recipients, 100 an hour.
    assert throttle["condition"].startswith("complaint_rate >= 0.3 % over 24h at least 500 recipients")
    assert throttle["state"] == "throttled 100/h"
    assert "tier trusted: threshold 200" in cells(table["list-quality-bounces-watch"])["condition"]
    assert cells(table["complaint-rate-pause"])["precision"] == "n/a no verdict yet"
    assert cells(table["complaint-rate-pause"])["last"] == "never"
    assert cells(table["old-rule"])["precision"] == "0 % 0 confirmed, 2 false positives"


def test_rules_need_a_login(dash: Dash) -> None:
    response = dash.app.test_client().get("/rules")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
