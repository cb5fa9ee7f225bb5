"""The weekly report on a seeded week (2026-W48, Monday 2026-11-23 to Monday 2026-11-30, UTC).

The week is seeded through the storage functions the pipeline and the policy nodes use
(``store_raw_message``, ``get_or_create_identity``, ``ingest.events.insert_events``,
``storage.counters.apply_deltas``) on both backends. Expected numbers come from the seed itself
and from counts made directly with SQL in this file; the HTML, CSV and JSON must agree with them.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app import cli
from bounces.model import Reason
from reports import (
    build_and_store,
    build_report,
    last_week,
    render_csv,
    render_html,
    render_json,
    week_bounds,
)
from reports.build import Report, blocklists_named
from reports.render import percent
from storage.engine import session_factory
from storage.report_models import WeeklyReport
from storage.reputation_models import DecisionHistory, VerdictRow
from tests.db import database_url, db_engine, db_session
from tests.seeding import add_events, add_sends

__all__ = ["database_url", "db_engine", "db_session"]  # the fixtures

WEEK = "2026-W48"
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)
SPAMHAUS = "550 5.7.1 Service unavailable; client [192.0.2.10] blocked using zen.spamhaus.org"
_sends = add_sends
# Events a minute apart, so that they fall in distinct buckets.
_events = functools.partial(add_events, step=timedelta(minutes=1))


A1, A2 = ("account", "alice@one.example"), ("account", "bob@two.example")
C1, C2 = ("customer", "one"), ("customer", "two")
SCRIPT, IP = ("script", "/home/one/public_html/form.php"), ("ip", "192.0.2.10")


def _history(session: Session, who: tuple[str, str], state: str, decided: datetime, ended: datetime | None,
             outcome: str | None = None, verdict: str | None = None) -> None:
    session.add(DecisionHistory(identity_kind=who[0], identity_value=who[1], state=state, action="defer",
                                rule="complaint-rate-pause", evidence={}, decided_at=decided, ended_at=ended,
                                outcome=outcome, verdict=verdict))


def seed(session: Session) -> None:
    """A week with two customers, their accounts, a script, an outbound IP, and the week before."""
    day = MONDAY + timedelta(days=1, hours=10)
    for who, count in ((A1, 1000), (C1, 1000), (A2, 200), (C2, 200), (IP, 1200)):
        _sends(session, who, day, count)
    _sends(session, A1, MONDAY - timedelta(days=3), 500)
    _sends(session, C1, MONDAY - timedelta(days=3), 500)
    _sends(session, A1, MONDAY + timedelta(days=7), 999)  # the next week: not counted
    _events(session, 6, "complaint", "feedback", day, [A1, C1, SCRIPT])
    _events(session, 1, "complaint", "feedback", day, [A2, C2])
    _events(session, 30, "bounce", "userunknown", day, [A1, C1], hard=True)
    _events(session, 4, "bounce", "blocked", day, [A2, C2, IP], hard=True, diagnostic=SPAMHAUS)
    _events(session, 2, "bounce", "expired", day, [A2, C2], hard=False)
    # The boundaries: the first instant of the week is in it; the last of the week before is not.
    _events(session, 1, "complaint", "feedback", MONDAY, [A1, C1])
    _events(session, 1, "complaint", "feedback", MONDAY - timedelta(seconds=1), [A1, C1])
    _events(session, 1, "complaint", "feedback", MONDAY + timedelta(days=7), [A1, C1])
    _history(session, A1, "paused", day, day + timedelta(hours=1), outcome="auto_resumed")
    _history(session, A2, "blocked", day, None, verdict="confirmed")
    _history(session, C1, "paused", MONDAY - timedelta(days=10), MONDAY - timedelta(days=9),
             outcome="released")
    _history(session, C2, "watch", day, None)
    session.add_all([VerdictRow(identity_kind="account", identity_value=A2[1], rule="complaint-rate-pause",
                                kind="confirmed", author="t", at=day),
                     VerdictRow(identity_kind="account", identity_value=A1[1], rule="block-bounces-throttle",
                                kind="false_positive", author="t", at=day)])
    session.commit()


def _count(session: Session, sql: str, **params: object) -> int:
    start, end = week_bounds(WEEK)
    return int(session.execute(text(sql), {"start": start, "end": end, **params}).scalar_one())


def _direct(session: Session) -> dict[str, int]:
    """The week's figures counted with SQL straight from the events and counter buckets."""
    within = "occurred_at >= :start AND occurred_at < :end"
    linked = ("SELECT count(*) FROM events e JOIN event_identities l ON l.event_id = e.id "
              "JOIN identities i ON i.id = l.identity_id WHERE i.kind = :k AND i.value = :v AND e.kind = :ek "
              f"AND e.{within}")
    return {
        "complaints": _count(session, f"SELECT count(*) FROM events WHERE kind = 'complaint' AND {within}"),
        "bounces": _count(session, f"SELECT count(*) FROM events WHERE kind = 'bounce' AND {within}"),
        "hard_bounces": _count(session, "SELECT count(*) FROM events WHERE kind = 'bounce' AND hard AND "
                                        + within),
        "a1_sends": _count(session, "SELECT coalesce(sum(sends), 0) FROM counter_buckets WHERE "
                                    "identity_kind = 'account' AND identity_value = :v AND start >= :start "
                                    "AND start < :end", v=A1[1]),
        "a1_complaints": _count(session, linked, k="account", v=A1[1], ek="complaint"),
        "a2_hard": _count(session, linked, k="account", v=A2[1], ek="bounce"),
    }


@pytest.fixture
def seeded(db_session: Session) -> Report:
    seed(db_session)
    return build_report(db_session, WEEK)


def _html_cells(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-key="([^"]+)">([^<]*)</td>', html))


def _csv_values(report: Report) -> dict[tuple[str, str, str, str], str]:
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert rows[0] == ["section", "period", "name", "metric", "value"]
    return {(r[0], r[1], r[2], r[3]): r[4] for r in rows[1:]}


def test_numbers_agree_with_the_events_in_every_format(seeded: Report, db_session: Session) -> None:
    direct = _direct(db_session)
    data = json.loads(render_json(seeded))
    week = data["provider"]["week"]
    # The seed: 6 + 1 + 1 (at Monday 00:00) complaints; 30 + 4 + 2 bounces, 34 of them hard;
    # the largest per-kind send total is the outbound IP's 1200 (equal to the accounts' sum).
    assert (week["complaints"], week["bounces"], week["hard_bounces"], week["sends"]) == (8, 36, 34, 1200)
    assert (week["complaints"], week["bounces"], week["hard_bounces"]) == (
        direct["complaints"], direct["bounces"], direct["hard_bounces"])
    assert week["complaint_rate"] == pytest.approx(8 / 1200)
    assert data["provider"]["previous"] == {"sends": 500, "complaints": 1, "bounces": 0, "hard_bounces": 0,
                                            "complaint_rate": 1 / 500, "bounce_rate": 0.0}
    senders = {(s["kind"], s["value"]): s["week"] for s in data["senders"]}
    assert senders[A1]["sends"] == direct["a1_sends"] == 1000
    assert senders[A1]["complaints"] == direct["a1_complaints"] == 7
    assert senders[A2]["hard_bounces"] == 4 and senders[A2]["bounces"] == direct["a2_hard"] == 6
    html = _html_cells(render_html(seeded))
    values = _csv_values(seeded)
    for name in ("sends", "complaints", "bounces", "hard_bounces"):
        assert html[f"provider.week.{name}"] == str(week[name]) == values[("provider", "week", "", name)]
    for name in ("complaint_rate", "bounce_rate"):
        assert html[f"provider.week.{name}"] == percent(week[name])
        assert float(values[("provider", "week", "", name)]) == pytest.approx(week[name])
    assert html[f"account.{A1[1]}.complaints"] == "7" == values[("account", "week", A1[1], "complaints")]
    assert html[f"account.{A2[1]}.hard_bounces"] == "4" == values[("account", "week", A2[1], "hard_bounces")]


def test_sections(seeded: Report) -> None:
    data = json.loads(render_json(seeded))
    # Worst first: customer one has 7 complaints on 1000 sends (0.7 %), two 1 on 200 (0.5 %) but
    # 4 hard bounces in 200 sends (2 %), below SES's 5 %: one is further over its threshold.
    assert [s["value"] for s in data["senders"] if s["kind"] == "customer"] == ["one", "two"]
    expected_groups = {Reason("userunknown").group.value: 30, Reason("blocked").group.value: 4,
                       Reason("expired").group.value: 2}
    assert data["bounce_groups"] == expected_groups
    assert [(d["value"], d["state"], d["ended"]) for d in data["decisions"]] == [
        (A1[1], "paused", "auto_resumed"), (A2[1], "blocked", "confirmed")]
    assert data["rule_precision"] == [
        {"rule": "block-bounces-throttle", "confirmed": 0, "false_positives": 1, "precision": 0.0},
        {"rule": "complaint-rate-pause", "confirmed": 1, "false_positives": 0, "precision": 1.0}]
    assert data["ips"] == [{"ip": IP[1], "block_bounces": 4, "blocklists": {"Spamhaus": 4}}]
    assert data["scripts"] == [{"script": SCRIPT[1], "complaints": 6}]
    assert data["thresholds"] == {"complaint_rate": 0.003, "bounce_review": 0.05, "bounce_pause": 0.1}


def test_html_is_self_contained(seeded: Report) -> None:
    html = render_html(seeded)
    assert "<svg" in html and "<script" not in html.lower()
    assert not re.search(r'(src|href)="', html), "a mail client would fetch or block it"


def test_empty_week_renders(db_session: Session) -> None:
    report = build_report(db_session, "2020-W01")
    assert json.loads(render_json(report))["provider"]["week"]["sends"] == 0
    assert "none this week" in render_html(report)
    assert _csv_values(report)[("provider", "week", "", "complaint_rate")] == ""


def test_iso_week_boundaries() -> None:
    assert week_bounds("2026-W48") == (MONDAY, MONDAY + timedelta(days=7))
    # ISO 8601: week 1 is the one with the year's first Thursday; 2026-W01 starts on 2025-12-29.
    assert week_bounds("2026-W01")[0] == datetime(2025, 12, 29, tzinfo=UTC)
    assert week_bounds("2020-W53")[0] == datetime(2020, 12, 28, tzinfo=UTC)
    with pytest.raises(ValueError, match="ISO week"):
        week_bounds("2026-W54")
    assert last_week(datetime(2026, 11, 30, 6, tzinfo=UTC)) == "2026-W48"
    assert last_week(datetime(2026, 1, 5, tzinfo=UTC)) == "2026-W01"
    assert last_week(datetime(2026, 1, 4, 23, 59, tzinfo=UTC)) == "2025-W52"


def test_blocklist_table() -> None:
    assert blocklists_named(SPAMHAUS) == ["Spamhaus"]
    # Outlook.com's text, as its postmaster pages quote it.
    assert blocklists_named("550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please "
                            "contact your Internet service provider since part of their network is on our "
                            "block list (S3140).") == ["Microsoft"]
    assert blocklists_named("550 user unknown") == []


def test_build_and_store_keeps_the_three_renderings_in_the_database(db_engine: Engine,
                                                                   db_session: Session) -> None:
    seed(db_session)
    built = datetime(2026, 11, 30, 6, tzinfo=UTC)
    texts = build_and_store(session_factory(db_engine), WEEK, now=built)
    row = db_session.get(WeeklyReport, WEEK)
    assert row is not None and (row.html, row.csv, row.json, row.built_at) == (*texts, built)
    assert json.loads(row.json)["provider"]["week"]["complaints"] == 8
    assert row.csv.startswith("section,period,name,metric,value\r\n")  # RFC 4180 line ends kept


def test_cli(database_url: str, db_session: Session, tmp_path: Path) -> None:
    seed(db_session)
    env = {"RICOCHET_DATABASE_URL": database_url}
    result = CliRunner().invoke(cli, ["report", "--week", WEEK, "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["provider"]["week"]["hard_bounces"] == 34
    out = tmp_path / "r.csv"
    result = CliRunner().invoke(cli, ["report", "--week", WEEK, "--format", "csv", "--output", str(out)],
                                env=env)
    assert result.exit_code == 0 and out.read_text().startswith("section,period,name,metric,value")
    result = CliRunner().invoke(cli, ["report", "--week", "2026-48"], env=env)
    assert result.exit_code == 2 and "YYYY-Www" in result.output


def test_weekly_job(db_engine: Engine, db_session: Session, tmp_path: Path) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from config import load_settings
    from jobs.scheduler import REPORT_JOB_ID, build_scheduler
    from reports import WeeklyReports

    seed(db_session)
    settings = load_settings(env={"RICOCHET_REPORTS_DIRECTORY": str(tmp_path)})
    job = WeeklyReports.from_settings(session_factory(db_engine), settings)
    assert (job.day_of_week, job.hour, job.rules) == ("mon", 6, settings.reputation.rules)
    scheduler = build_scheduler(None, scheduler_class=BackgroundScheduler, reports=job)
    found = scheduler.get_job(REPORT_JOB_ID)
    assert found is not None and (found.coalesce, found.max_instances) == (True, 1)
    # Sunday evening of W48: the next run is Monday 2026-11-30 06:00 UTC.
    assert found.trigger.get_next_fire_time(None, datetime(2026, 11, 29, 20, tzinfo=UTC)) == datetime(
        2026, 11, 30, 6, tzinfo=UTC)
    assert job.export_to == tmp_path  # [reports].directory set: a copy as files
    assert job.run(now=datetime(2026, 11, 30, 6, tzinfo=UTC)) == WEEK
    row = db_session.get(WeeklyReport, WEEK)
    assert row is not None
    for extension, stored in (("html", row.html), ("csv", row.csv), ("json", row.json)):
        assert (tmp_path / f"{WEEK}.{extension}").read_bytes() == stored.encode("utf-8")
    unset = WeeklyReports.from_settings(session_factory(db_engine), load_settings(env={}))
    assert unset.export_to is None  # the default: the database only
