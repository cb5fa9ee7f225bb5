"""``python app.py identity show|allow|block|limit|resume|verdict`` on a real SQLite file (CliRunner).

The same actions as the API; the author defaults to the OS user. Bad input exits with status 2.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from app import cli
from config import load_settings
from jobs.evaluate import Evaluator
from storage import make_engine, session_factory, utcnow
from storage.counters import apply_deltas
from storage.migrate import upgrade
from tests.reputation_samples import ALICE, complaint, ingest, send_deltas


@pytest.fixture
def url(tmp_path: Path) -> str:
    database = f"sqlite:///{tmp_path / 'ricochet.db'}"
    upgrade(database)
    return database


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["identity", *args], env={"RICOCHET_DATABASE_URL": url})


def test_show_block_limit_and_allow(url: str) -> None:
    shown = run(url, "show", "account", "alice@example.com")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["state"] == "ok"
    blocked = run(url, "block", "account", "alice@example.com", "--reason", "phished", "--expires", "2h",
                  "--author", "carol")
    assert blocked.exit_code == 0, blocked.output
    assert "now: blocked (reject)" in blocked.output
    report = json.loads(run(url, "show", "account", "alice@example.com").output)
    assert report["overrides"][0]["author"] == "carol" and report["overrides"][0]["kind"] == "block"
    limited = run(url, "limit", "customer", "C1001", "--per-hour", "30", "--reason", "new")
    assert limited.exit_code == 0 and "now: throttled (throttle)" in limited.output
    allowed = run(url, "allow", "account", "alice@example.com", "--reason", "reset", "--expires",
                  "2099-01-01T00:00:00Z")
    assert allowed.exit_code == 0 and "now: ok (allow)" in allowed.output


def test_resume_and_verdict_of_a_paused_account(url: str) -> None:
    engine = make_engine(url)
    now = utcnow()
    try:
        with session_factory(engine)() as session:
            ingest(session, [complaint(i, now - timedelta(minutes=20)) for i in range(6)], now)
            apply_deltas(session, send_deltas(ALICE, 600, now - timedelta(hours=3)).drain_deltas(), now)
            Evaluator(load_settings(env={}).reputation.rules).run(session, now)
            session.commit()
    finally:
        engine.dispose()
    assert json.loads(run(url, "show", "account", "alice@example.com").output)["state"] == "paused"
    judged = run(url, "verdict", "account", "alice@example.com", "confirmed", "--reason", "phished")
    assert judged.exit_code == 0, judged.output
    resumed = run(url, "resume", "account", "alice@example.com", "--reason", "password reset")
    assert resumed.exit_code == 0 and "now: watch (allow)" in resumed.output
    report = json.loads(run(url, "show", "account", "alice@example.com").output)
    assert report["history"][-1]["verdict"] == "confirmed"
    assert report["history"][-1]["outcome"] == "admin_resumed"


@pytest.mark.parametrize(("args", "message"), [
    (("show", "user", "alice"), "unknown identity kind 'user'"),
    (("block", "account", "alice@example.com", "--reason", "x", "--expires", "2001-01-01T00:00:00Z"),
     "is in the past"),
    (("block", "account", "alice@example.com", "--reason", " "), "say why in reason"),
    (("verdict", "account", "alice@example.com", "confirmed", "--reason", "x"), "has no decision to judge"),
])
def test_bad_input_exits_2_with_a_sentence(url: str, args: tuple[str, ...], message: str) -> None:
    result = run(url, *args)
    assert result.exit_code == 2
    assert message in result.output
