"""Customer tiers end to end on SQLite and PostgreSQL: [reputation].tiers_csv names each customer's
tier, the evaluation job evaluates an account in its customer's tier, and a mistake in the CSV or
in default_tier stops the start with a sentence naming the file and the line.

Expected outcomes come from config/rules.toml as shipped (docs/rules.md): distinct-recipients-burst
pauses an account at 300 distinct recipients in 10 minutes, 5000 in the `trusted` tier; the other
rules a 400-recipient newsletter touches (distinct-recipients-hour, freemail-flood, volume-burst)
are switched off or raised above 400 for `trusted`. The bounce sample dsn-verp-01.eml goes to the
VERP address bounces-C1001-alice=example.com@provider.example: alice's customer is C1001.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from config import ConfigError, Settings, load_settings
from config.reputation import load_tiers_csv
from jobs.evaluate import Evaluator, ReputationJobs, Tiers, evaluate_now
from reputation import CounterStore, Identity, IdentityKind
from storage import session_factory
from storage.counters import apply_deltas
from storage.reputation import current_decision
from tests import db
from tests.reputation_samples import ALICE, TRUST_ENV, bounce, ingest

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

NOW = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
NEWSLETTER = Identity(IdentityKind.ACCOUNT, "news@shop.example")  # customer C2001 in the directory
OTHER = Identity(IdentityKind.ACCOUNT, "promo@bazaar.example")  # customer C2002, not in tiers_csv


def settings_with(tmp_path: Path, tiers: str, *, default_tier: str = "") -> Settings:
    """The shipped settings with a directory of two accounts and ``tiers`` as the tiers CSV."""
    directory = tmp_path / "directory.csv"
    directory.write_text("account,customer\nnews@shop.example,C2001\npromo@bazaar.example,C2002\n")
    tiers_csv = tmp_path / "tiers.csv"
    tiers_csv.write_text(tiers)
    return load_settings(env={**TRUST_ENV, "RICOCHET_ATTRIBUTION_DIRECTORY_CSV": str(directory),
                              "RICOCHET_REPUTATION_TIERS_CSV": str(tiers_csv),
                              "RICOCHET_REPUTATION_DEFAULT_TIER": default_tier})


def evaluator(settings: Settings) -> Evaluator:
    return Evaluator(settings.reputation.rules,
                     Tiers.from_settings(settings.reputation, settings.attribution.rules.directory))


def newsletter(session: Session, identity: Identity, recipients: int = 400) -> None:
    """``recipients`` distinct addresses at non-freemail domains within the last 8 minutes."""
    node = CounterStore(track_deltas=True)
    start = NOW - timedelta(minutes=8)
    for i in range(recipients):
        node.record_send(identity, [f"reader{i}@list{i % 40}.example"], start + timedelta(seconds=i))
    apply_deltas(session, node.drain_deltas(), NOW)
    session.commit()


def state_of(session: Session, identity: Identity) -> str:
    row = current_decision(session, identity)
    return "ok" if row is None else row.state


def test_a_trusted_customers_newsletter_stays_ok_where_an_untiered_account_is_paused(
        db_session: Session, tmp_path: Path) -> None:
    settings = settings_with(tmp_path, "customer,tier\nC2001,trusted\n")
    newsletter(db_session, NEWSLETTER)
    newsletter(db_session, OTHER)
    evaluator(settings).run(db_session, NOW)
    db_session.commit()
    assert state_of(db_session, NEWSLETTER) == "ok"
    row = current_decision(db_session, OTHER)
    assert row is not None and (row.state, row.rule) == ("paused", "distinct-recipients-burst")


def test_the_scheduler_job_evaluates_in_the_tiers_of_the_settings(db_session: Session, db_engine: Engine,
                                                                   tmp_path: Path) -> None:
    # What `python app.py scheduler` builds (jobs/commands.py): the job with [attribution]'s directory.
    settings = settings_with(tmp_path, "customer,tier\nC2001,trusted\n")
    directory = settings.attribution.rules.directory
    jobs = ReputationJobs(session_factory(db_engine), settings.reputation, directory)
    newsletter(db_session, NEWSLETTER)
    newsletter(db_session, OTHER)
    report = jobs.evaluate(NOW)
    moved = [(d.identity, d.state.value, d.evidence["tier"]) for d in report.changed]
    assert moved == [(OTHER, "paused", None)]
    assert state_of(db_session, NEWSLETTER) == "ok"


def test_without_tiers_the_same_newsletter_is_paused(db_session: Session, tmp_path: Path) -> None:
    settings = settings_with(tmp_path, "customer,tier\n")
    newsletter(db_session, NEWSLETTER)
    Evaluator(settings.reputation.rules).run(db_session, NOW)  # no Tiers at all: the plain rules
    db_session.commit()
    assert state_of(db_session, NEWSLETTER) == "paused"


def test_an_account_outside_the_directory_takes_the_customer_of_its_events(
        db_session: Session, tmp_path: Path) -> None:
    # alice is not in the directory; her bounce's VERP address names customer C1001.
    settings = settings_with(tmp_path, "customer,tier\nC1001,trusted\n")
    newsletter(db_session, ALICE)
    ingest(db_session, [bounce(1, NOW - timedelta(minutes=5))], NOW)
    job = evaluator(settings)
    job.run(db_session, NOW)
    db_session.commit()
    assert job.linked[ALICE] == "C1001"
    assert state_of(db_session, ALICE) == "ok"
    # An admin's re-evaluation from the database reads the same link.
    assert evaluate_now(db_session, ALICE, settings.reputation.rules, NOW,
                        Tiers.from_settings(settings.reputation)) is None
    # ... and without tiers the account is paused.
    decision = evaluate_now(db_session, ALICE, settings.reputation.rules, NOW)
    assert decision is not None and decision.rule == "distinct-recipients-burst"


def test_default_tier_applies_to_customers_not_in_the_csv(db_session: Session, tmp_path: Path) -> None:
    settings = settings_with(tmp_path, "customer,tier\n", default_tier="trusted")
    newsletter(db_session, OTHER)
    evaluator(settings).run(db_session, NOW)
    db_session.commit()
    assert state_of(db_session, OTHER) == "ok"


def test_tier_of_each_kind() -> None:
    tiers = Tiers(customers={"C2001": "trusted"}, directory={"news@shop.example": "C2001"})
    customer = Identity(IdentityKind.CUSTOMER, "C2001")
    script = Identity(IdentityKind.SCRIPT, "/home/shop/public_html/news.php")
    ip = Identity(IdentityKind.IP, "198.51.100.7")
    assert tiers.tier_of(customer) == "trusted"
    assert tiers.tier_of(Identity(IdentityKind.ACCOUNT, "News@Shop.example")) == "trusted"
    assert tiers.tier_of(script) is None
    assert tiers.tier_of(script, {script: "C2001"}) == "trusted"
    # An outbound IP is shared by every customer: never a customer's tier.
    assert tiers.tier_of(ip, {ip: "C2001"}) is None
    assert tiers.tier_of(Identity(IdentityKind.CUSTOMER, "C9")) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("customer,tier\nC2001,trusted\nC2002,trustd\n",
     r"tiers\.csv: line 3: the tier 'trustd' of customer 'C2002' is not in the rules file's \[tiers\] "
     r"\(trusted\); fix these rows$"),
    ("customer,tier\nC2001\n", r"tiers\.csv: line 2: expected the fields customer,tier, got 'C2001'"),
    ("customer,tier\n,trusted\n", r"tiers\.csv: line 2: the customer is empty"),
    ("customer,tier\nC1,trusted\n# note\nC1,other\n", r"line 4: the tier 'other' of customer 'C1'"),
    ("account,customer\nC1,trusted\n", r"tiers\.csv: line 1: the header row must name the columns "
                                       r"'customer' and 'tier'"),
    ("", r"tiers\.csv: the file is empty; write a header row 'customer,tier'"),
])
def test_bad_tiers_csv_stops_the_start_with_a_sentence(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        settings_with(tmp_path, text)
    assert str(caught.value).startswith("[reputation].tiers_csv ")
    assert str(tmp_path / "tiers.csv") in str(caught.value)


def test_a_customer_in_two_tiers_is_refused(tmp_path: Path) -> None:
    rules = load_settings(env={}).reputation.rules
    with pytest.raises(ValueError, match=r"line 3: customer 'C1' is already in tier 'trusted' \(line 2\), "
                                         r"not 'bulk'"):
        load_tiers_csv("customer,tier\nC1,trusted\nC1,bulk\n", "t.csv", {**rules.tiers, "bulk": ""})


def test_unknown_default_tier_and_missing_file_are_sentences(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^\[reputation\]\.default_tier 'gold' is not a tier of "
                                          r"config/rules\.toml; use one of its \[tiers\] \(trusted\)"):
        settings_with(tmp_path, "customer,tier\n", default_tier="gold")
    with pytest.raises(ConfigError, match=r"^\[reputation\]\.tiers_csv /nowhere/tiers\.csv: cannot be read"):
        load_settings(env={"RICOCHET_REPUTATION_TIERS_CSV": "/nowhere/tiers.csv"})


def test_shipped_settings_assign_no_tier() -> None:
    reputation = load_settings(env={}).reputation
    assert (reputation.tiers_csv, reputation.default_tier, dict(reputation.customer_tiers)) == ("", "", {})
