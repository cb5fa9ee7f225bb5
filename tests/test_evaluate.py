"""The evaluation job end to end on SQLite and PostgreSQL: ingested complaints and bounces plus the
policy nodes' send counts -> decisions with explanations; cool-downs, overrides and verdicts.

Expected numbers come from config/rules.toml as shipped and docs/rules.md: complaint-rate-pause
pauses at 0.5 % of 500+ recipients over 24 h, the first pause lasts 1 h, then the sender resumes
on probation (watch); a false_positive verdict doubles that rule's threshold for the identity.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from config import load_settings
from jobs.evaluate import Evaluator, ReputationJobs, evaluate_now
from jobs.identity_actions import ActionError, apply_action
from jobs.scheduler import EVALUATE_JOB_ID, UPKEEP_JOB_ID, build_scheduler
from reputation import Action, Identity, IdentityKind, RuleSet, State, Window
from storage import CounterBucket, DecisionHistory, DecisionRow, session_factory
from storage.counters import apply_deltas
from storage.reputation import current_decision, decision_of, decisions_changed_since
from tests import db
from tests.reputation_samples import ALICE, bounce, complaint, ingest, send_deltas

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

NOW = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_settings(env={}).reputation.rules


def traffic(session: Session, complaints: int, sends: int, now: datetime, first: int = 0) -> None:
    """``sends`` messages three hours before ``now`` (outside the 1-hour volume rules), then complaints."""
    apply_deltas(session, send_deltas(ALICE, sends, now - timedelta(hours=3)).drain_deltas(), now)
    ingest(session, [complaint(first + i, now - timedelta(minutes=20)) for i in range(complaints)], now)


def state(session: Session) -> DecisionRow:
    row = current_decision(session, ALICE)
    assert row is not None
    return row


def test_complaints_on_sends_pause_the_account_with_an_explanation(db_session: Session,
                                                                   rules: RuleSet) -> None:
    traffic(db_session, complaints=6, sends=600, now=NOW)
    ingest(db_session, [bounce(1, NOW - timedelta(minutes=10))], NOW)
    job = Evaluator(rules)
    report = job.run(db_session, NOW)
    db_session.commit()
    assert report.events == 7
    row = state(db_session)
    assert (row.state, row.action, row.rule) == ("paused", "defer", "complaint-rate-pause")
    # 6 complaints / 600 recipients = 1.00 %, at or above the rule's 0.50 %.
    assert "complaint-rate-pause" in row.reason and "6 complaints / 600 recipients" in row.reason
    assert "1.00 %" in row.reason and "0.50 %" in row.reason
    assert row.until == NOW + timedelta(hours=1)
    samples = row.evidence["samples"]
    assert len(samples["complaints"]) == 3 and samples["complaints"][0]["reason"] == "feedback"
    assert samples["bounces"][0]["reason"] == "userunknown" and samples["bounces"][0]["status"] == "5.1.1"
    assert ["Minutes of the meeting", 6] in samples["subjects"]
    entry = db_session.get(DecisionHistory, row.history_id)
    assert entry is not None and entry.state == "paused" and entry.ended_at is None
    # What a policy node loads: the paused decision, changed since before the run.
    changed = decisions_changed_since(db_session, NOW - timedelta(seconds=1))
    assert [(d.identity, d.state, d.action) for d in changed] == [(ALICE, State.PAUSED, Action.DEFER)]


def test_a_second_run_does_not_count_the_same_events_or_sends_twice(db_session: Session,
                                                                    rules: RuleSet) -> None:
    minute = NOW - timedelta(minutes=10)
    apply_deltas(db_session, send_deltas(ALICE, 100, minute, spread=timedelta(0)).drain_deltas(), NOW)
    ingest(db_session, [complaint(i, NOW - timedelta(minutes=20)) for i in range(2)], NOW)
    job = Evaluator(rules)
    job.run(db_session, NOW)
    job.run(db_session, NOW + timedelta(seconds=5))
    more = send_deltas(ALICE, 50, minute, spread=timedelta(0))
    apply_deltas(db_session, more.drain_deltas(), NOW + timedelta(seconds=6))  # the same row: only 50 are new
    db_session.commit()
    job.run(db_session, NOW + timedelta(seconds=10))
    totals = job.store.window_totals(ALICE, Window.DAY, NOW + timedelta(seconds=10))
    assert (totals.complaints, totals.sends) == (2, 150)


def test_cool_down_ends_in_probation_and_the_history_says_so(db_session: Session, rules: RuleSet) -> None:
    traffic(db_session, complaints=6, sends=600, now=NOW)
    job = Evaluator(rules)
    job.run(db_session, NOW)
    paused = state(db_session).history_id
    job.run(db_session, NOW + timedelta(minutes=61))
    db_session.commit()
    row = state(db_session)
    assert (row.state, row.action) == ("watch", "allow")
    entry = db_session.get(DecisionHistory, paused)
    assert entry is not None and entry.outcome == "auto_resumed"
    assert entry.ended_at == NOW + timedelta(minutes=61)


def test_admin_resume_takes_effect_at_once(db_session: Session, rules: RuleSet) -> None:
    traffic(db_session, complaints=6, sends=600, now=NOW)
    Evaluator(rules).run(db_session, NOW)
    result = apply_action(db_session, ALICE, "resume", author="admin", reason="password reset",
                          now=NOW + timedelta(minutes=5), rules=rules)
    db_session.commit()
    assert result.decision is not None and result.decision.action is Action.ALLOW
    row = state(db_session)
    assert row.state == "watch" and row.updated_at == NOW + timedelta(minutes=5)
    entries = db_session.scalars(select(DecisionHistory).order_by(DecisionHistory.id)).all()
    assert [(e.state, e.outcome) for e in entries][:1] == [("paused", "admin_resumed")]


def test_false_positive_verdict_then_the_same_traffic_does_not_pause_again(db_session: Session,
                                                                           rules: RuleSet) -> None:
    # 5 complaints / 600 recipients = 0.83 %: over complaint-rate-pause's 0.5 %, under 0.5 % x 2.
    traffic(db_session, complaints=5, sends=600, now=NOW)
    job = Evaluator(rules)
    job.run(db_session, NOW)
    assert state(db_session).state == "paused"
    later = NOW + timedelta(minutes=10)
    result = apply_action(db_session, ALICE, "verdict", author="admin", reason="a newsletter they asked for",
                          now=later, rules=rules, verdict="false_positive")
    db_session.commit()
    assert result.decision is not None and result.decision.state is not State.PAUSED
    entry = db_session.scalars(select(DecisionHistory).order_by(DecisionHistory.id)).first()
    assert entry is not None and (entry.verdict, entry.outcome) == ("false_positive", "false_positive")
    # The same again: 10 complaints / 1200 recipients, 0.83 % again.
    traffic(db_session, complaints=5, sends=600, now=later + timedelta(minutes=30), first=100)
    job.run(db_session, later + timedelta(minutes=30))
    db_session.commit()
    row = state(db_session)
    assert row.state != "paused" and row.rule != "complaint-rate-pause"


def test_overrides_apply_at_once_and_end_when_they_expire(db_session: Session, rules: RuleSet) -> None:
    bob = Identity(IdentityKind.ACCOUNT, "bob@example.com")
    apply_action(db_session, bob, "block", author="admin", reason="phished", now=NOW, rules=rules,
                 expires_at=NOW + timedelta(hours=1))
    db_session.commit()
    row = current_decision(db_session, bob)
    assert row is not None and (row.state, row.action) == ("blocked", "reject") and "phished" in row.reason
    job = Evaluator(rules)
    job.run(db_session, NOW + timedelta(minutes=30))
    assert current_decision(db_session, bob).state == "blocked"  # type: ignore[union-attr]
    job.run(db_session, NOW + timedelta(minutes=61))
    db_session.commit()
    row = current_decision(db_session, bob)
    assert row is not None and (row.state, row.action) == ("ok", "allow")
    apply_action(db_session, bob, "limit", author="admin", reason="new customer",
                 now=NOW + timedelta(hours=2), rules=rules, limit_per_hour=50)
    decision = decision_of(state_of(db_session, bob))
    assert (decision.state, decision.limit_per_hour) == (State.THROTTLED, 50)


def state_of(session: Session, identity: Identity) -> DecisionRow:
    row = current_decision(session, identity)
    assert row is not None
    return row


@pytest.mark.parametrize(("action", "options", "message"), [
    ("pause", {}, "unknown action 'pause'"),
    ("limit", {}, "limit needs limit_per_hour"),
    ("allow", {"limit_per_hour": 5}, "limit_per_hour goes with the limit action only"),
    ("verdict", {"verdict": "maybe"}, "verdict must be false_positive or confirmed"),
    ("verdict", {"verdict": "confirmed"}, "has no decision to judge"),
])
def test_bad_actions_are_sentences(db_session: Session, rules: RuleSet, action: str,
                                   options: dict[str, object], message: str) -> None:
    with pytest.raises(ActionError, match=message):
        apply_action(db_session, ALICE, action, author="admin", reason="why", now=NOW, rules=rules,
                     **options)  # type: ignore[arg-type]


def test_evaluate_now_rebuilds_one_identity_from_the_database(db_session: Session, rules: RuleSet) -> None:
    traffic(db_session, complaints=6, sends=600, now=NOW)
    decision = evaluate_now(db_session, ALICE, rules, NOW)
    assert decision is not None and (decision.state, decision.rule) == (State.PAUSED, "complaint-rate-pause")


def test_the_scheduler_runs_the_reputation_jobs(db_engine: Engine, db_session: Session) -> None:
    jobs = ReputationJobs(session_factory(db_engine), load_settings(env={}).reputation)
    scheduler = build_scheduler(None, scheduler_class=BackgroundScheduler, now=NOW, reputation=jobs)
    assert {job.id for job in scheduler.get_jobs()} == {EVALUATE_JOB_ID, UPKEEP_JOB_ID}
    traffic(db_session, complaints=6, sends=600, now=NOW)
    apply_deltas(db_session, send_deltas(ALICE, 1, NOW - timedelta(days=36)).drain_deltas(), NOW)
    db_session.commit()
    report = jobs.evaluate(NOW)
    assert [(d.identity, d.state) for d in report.changed] == [(ALICE, State.PAUSED)]
    assert "account alice@example.com -> paused" in report.line()
    assert jobs.upkeep(NOW) == (0, 1)  # the 36-day-old row is past counter_days (35)


def test_folding_old_minute_rows_into_hours_counts_nothing_twice(db_engine: Engine,
                                                                 db_session: Session) -> None:
    """The upkeep job folds minute rows older than a day into hour rows (storage/counters.py); the
    running job has merged those sends already and a restarted one reads them once."""
    two_days_ago = NOW - timedelta(days=2)
    apply_deltas(db_session, send_deltas(ALICE, 30, two_days_ago).drain_deltas(), two_days_ago)
    apply_deltas(db_session, send_deltas(ALICE, 5, NOW - timedelta(minutes=3)).drain_deltas(), NOW)
    db_session.commit()
    jobs = ReputationJobs(session_factory(db_engine), load_settings(env={}).reputation)

    def week_sends(job: ReputationJobs) -> int:
        return job.evaluator.store.window_totals(ALICE, Window.WEEK, NOW).sends

    jobs.evaluate(NOW)
    assert week_sends(jobs) == 35
    jobs.upkeep(NOW)
    rows = db_session.execute(select(CounterBucket.seconds, CounterBucket.sends)
                              .where(CounterBucket.start < NOW - timedelta(days=1))).all()
    db_session.rollback()  # end the read: SQLite sessions hold the write lock (storage/engine.py)
    assert rows == [(3600, 30)]  # one hour row now holds the 30 sends of two days ago
    jobs.evaluate(NOW + timedelta(seconds=5))
    assert week_sends(jobs) == 35
    restarted = ReputationJobs(session_factory(db_engine), load_settings(env={}).reputation)
    restarted.evaluate(NOW + timedelta(seconds=10))
    assert week_sends(restarted) == 35
