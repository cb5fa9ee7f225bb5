"""``python app.py reprocess``: after a fix, the quarantined messages are processed again."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select

import attribution
from app import cli
from ingest.pipeline import Pipeline
from ingest.reprocess import quarantined_ids, reprocess_ids
from storage import Event, RawMessage, session_factory
from tests import db

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

BSD = Path(__file__).resolve().parent / "data" / "corpus" / "emails" / "maildir" / "bsd"
NAMES = ("lhost-postfix-01.eml", "lhost-postfix-02.eml", "arf-14.eml")  # 1 + 2 + 1 events


@pytest.fixture
def quarantined(db_engine: Engine, monkeypatch: pytest.MonkeyPatch):
    """Three messages quarantined by a bug, and one good message; the fix is undone afterwards."""
    sessions = session_factory(db_engine)
    pipeline = Pipeline()
    with sessions() as session, session.begin():
        good = pipeline.ingest(session, (BSD / "rfc3834-01.eml").read_bytes(), source="test")
    with monkeypatch.context() as patch:
        patch.setattr(attribution, "attribute", lambda *args, **kwargs: 1 / 0)
        with sessions() as session, session.begin():
            ids = [pipeline.ingest(session, (BSD / name).read_bytes(), source="test").message_id
                   for name in NAMES]
    yield ids, good.message_id
    db.clear(db_engine)


def test_reprocess_after_the_fix(db_engine: Engine, quarantined):
    ids, good = quarantined
    sessions = session_factory(db_engine)
    with sessions() as session:
        assert quarantined_ids(session) == ids
        assert session.scalar(select(func.count()).select_from(Event)) == 0
    summary = reprocess_ids(sessions, Pipeline(), ids, batch_size=2)
    assert (dict(summary.statuses), summary.events) == ({"parsed": 3}, 4)
    assert (summary.missing, summary.failed) == ([], [])
    with sessions() as session:
        assert quarantined_ids(session) == []
        assert session.scalar(select(func.count()).select_from(Event)) == 4
        rows = session.execute(select(RawMessage.id, RawMessage.status))
        statuses = {number: status for number, status in rows}
    assert statuses == {**dict.fromkeys(ids, "parsed"), good: "ignored"}


def test_reprocess_command(database_url: str, db_engine: Engine, quarantined):
    ids, _ = quarantined
    env = {"RICOCHET_DATABASE_URL": database_url}
    runner = CliRunner()
    usage = runner.invoke(cli, ["reprocess"], env=env)
    assert usage.exit_code == 2 and "give message IDs or --all-quarantined" in usage.output
    one = runner.invoke(cli, ["reprocess", "-q", str(ids[0])], env=env, catch_exceptions=False)
    assert one.exit_code == 0, one.output
    assert one.stdout.splitlines() == ["reprocessed 1 messages: parsed 1", "events written: 1"]
    rest = runner.invoke(cli, ["reprocess", "--all-quarantined"], env=env, catch_exceptions=False)
    assert rest.stdout.splitlines() == ["reprocessed 2 messages: parsed 2", "events written: 3"]
    missing = runner.invoke(cli, ["reprocess", "999999"], env=env, catch_exceptions=False)
    assert missing.exit_code == 1
    assert "no such message: 999999" in missing.stdout
