"""One form of a time on every dashboard page: the ``utc`` filter (web/dashboard/times.py).

"2026-11-30T04:38Z": UTC, ISO 8601 to the minute, in a <time> whose datetime attribute keeps the
second. The same instant, stored once, must read the same on the overview, the identity page,
the rules page and the notification log, on both backends (SQLite gives naive UTC times back).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from storage.notify_models import Delivery
from storage.reputation_models import DecisionHistory, DecisionRow
from tests import db
from tests.dashboard import Dash, dash
from web.dashboard.times import utc

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session
__all__ = ["dash", "database_url", "db_engine", "db_session"]

SHOWN = '<time datetime="2026-11-30T04:38:01Z">2026-11-30T04:38Z</time>'


@pytest.mark.parametrize("at", [
    datetime(2026, 11, 30, 4, 38, 1, 500, tzinfo=UTC),
    datetime(2026, 11, 30, 4, 38, 1),  # naive, as SQLite gives it back: UTC
    datetime(2026, 11, 30, 5, 38, 1, tzinfo=timezone(timedelta(hours=1))),  # the same instant at +01:00
    "2026-11-30T04:38:01+00:00",  # datetime.isoformat() of an aware time
    "2026-11-30T04:38:01Z",
    "2026-11-29T23:38:01-05:00",
])
def test_every_kind_of_time_reads_the_same(at: datetime | str) -> None:
    assert str(utc(at)) == SHOWN


@pytest.mark.parametrize("at", [None, ""])
def test_no_time_shows_nothing(at: str | None) -> None:
    assert str(utc(at)) == ""
    assert not utc(at)  # so that a template can write {{ x|utc or "never" }}


def test_every_page_shows_the_same_instant_the_same_way(dash: Dash) -> None:
    at = (datetime.now(UTC) - timedelta(hours=2)).replace(second=17, microsecond=0)
    rule, who = "block-bounce-rate-pause", ("account", "alice@example.net")  # a rule of config/rules.toml
    with dash.session() as session:
        entry = DecisionHistory(identity_kind=who[0], identity_value=who[1], state="paused", action="defer",
                                rule=rule, evidence={}, decided_at=at)
        session.add(entry)
        session.flush()
        session.add(DecisionRow(identity_kind=who[0], identity_value=who[1], state="paused", action="defer",
                                rule=rule, evidence={}, decided_at=at, until=at + timedelta(hours=4),
                                history_id=entry.id))
        session.add(Delivery(channel="webhook", target="https://panel.example/hook", event="state_change",
                             payload={"identity": {"kind": who[0], "value": who[1]}, "new_state": "paused"},
                             status="delivered", attempts=1, created_at=at, next_attempt_at=at,
                             delivered_at=at))
        session.commit()
    expected = f'<time datetime="{at:%Y-%m-%dT%H:%M:%S}Z">{at:%Y-%m-%dT%H:%M}Z</time>'
    viewer = dash.login("viewer")
    for path in ("/", f"/identities/{who[0]}/{who[1]}", "/rules", "/notifications"):
        page = viewer.get(path).get_data(as_text=True)
        assert expected in page, path
        assert not re.search(r"\d\d:\d\d(:\d\d)?(\.\d+)?\+00:00", page), path  # no other form left
