"""Importing archives (maildir, mbox, directories of .eml) on SQLite and PostgreSQL, and its CLI.

Expected kinds come from the corpus's expected.jsonl families (lhost-* bounces, arf complaints,
rfc3834 auto-replies); the counts from the files the test writes.
"""

from __future__ import annotations

import mailbox
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select

from app import cli
from ingest.importer import import_messages, import_paths
from ingest.pipeline import Pipeline
from ingest.sources import SourceMessage
from storage import Event, RawMessage, session_factory
from tests import db

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

BSD = Path(__file__).resolve().parent / "data" / "corpus" / "emails" / "maildir" / "bsd"
BOUNCES = ("lhost-postfix-01.eml", "lhost-postfix-02.eml")  # 1 and 2 failed recipients
COMPLAINTS = ("arf-14.eml",)
AUTOREPLIES = ("rfc3834-01.eml",)
ALL = (*BOUNCES, *COMPLAINTS, *AUTOREPLIES)


@pytest.fixture
def clean_engine(db_engine: Engine):
    yield db_engine
    db.clear(db_engine)


def count(engine: Engine, model: type) -> int:
    with session_factory(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def make_maildir(root: Path) -> Path:
    box = mailbox.Maildir(root / "Maildir", create=True)
    for name in ALL:
        box.add((BSD / name).read_bytes())
    return root / "Maildir"


def make_mbox(root: Path) -> Path:
    box = mailbox.mbox(root / "archive.mbox", create=True)
    for name in ALL:
        box.add((BSD / name).read_bytes())
    box.flush()
    box.close()
    return root / "archive.mbox"


def make_eml_directory(root: Path) -> Path:
    directory = root / "eml" / "2026"
    directory.mkdir(parents=True)
    for name in ALL:
        shutil.copy(BSD / name, directory / name)
    return root / "eml"


@pytest.mark.parametrize("make", [make_maildir, make_mbox, make_eml_directory])
@pytest.mark.parametrize("batch_size", [1, 3, 200])
def test_import_of_an_archive_and_its_summary(clean_engine: Engine, tmp_path: Path, make, batch_size: int):
    path = make(tmp_path)
    sessions = session_factory(clean_engine)
    summary = import_paths(sessions, Pipeline(), [str(path)], batch_size=batch_size)
    assert (summary.read, summary.new, summary.duplicates) == (4, 4, 0)
    assert (summary.failed, summary.unreadable) == ([], [])
    assert (summary.parsed, summary.ignored, summary.quarantined) == (3, 1, 0)
    assert summary.events == 1 + 2 + 1  # the bounces' failed recipients and the complaint
    assert dict(summary.kinds) == {"bounce": 2, "complaint": 1, "autoreply": 1}
    assert count(clean_engine, RawMessage) == 4
    assert count(clean_engine, Event) == 4
    with sessions() as session:
        refs = set(session.scalars(select(RawMessage.source_ref)))
        sources = set(session.scalars(select(RawMessage.source)))
    assert sources == {"import"}
    assert all(ref is not None and ref.startswith(str(path)) for ref in refs)

    again = import_paths(sessions, Pipeline(), [str(path)], batch_size=batch_size)
    assert (again.read, again.new, again.duplicates, again.events) == (4, 0, 4, 0)
    assert count(clean_engine, RawMessage) == 4


def test_unreadable_and_failing_messages_do_not_stop_the_import(clean_engine: Engine):
    sessions = session_factory(clean_engine)
    messages = [
        SourceMessage("one.eml", (BSD / BOUNCES[0]).read_bytes()),
        SourceMessage("gone.eml", b"", ("could not read the file: Permission denied",)),
        SourceMessage("two.eml", (BSD / BOUNCES[1]).read_bytes()),
    ]
    summary = import_messages(sessions, Pipeline(), messages, batch_size=10)
    assert summary.unreadable == ["gone.eml: could not read the file: Permission denied"]
    assert (summary.read, summary.new, summary.events) == (3, 2, 3)
    assert count(clean_engine, RawMessage) == 2


def test_a_database_error_fails_one_message_and_keeps_the_batch(clean_engine: Engine,
                                                                monkeypatch: pytest.MonkeyPatch):
    sessions = session_factory(clean_engine)
    pipeline = Pipeline()
    real = pipeline.ingest
    poison = (BSD / BOUNCES[1]).read_bytes()

    def ingest(session, raw, **kwargs):  # the database refusing one message (a lost connection, a full disk)
        if raw == poison:
            raise RuntimeError("the database refused this message")
        return real(session, raw, **kwargs)

    real_many = pipeline.ingest_many

    def ingest_many(session, messages):  # the batch's one INSERT holds the refused message too
        if any(message.raw == poison for message in messages):
            raise RuntimeError("the database refused this message")
        return real_many(session, messages)

    monkeypatch.setattr(pipeline, "ingest", ingest)
    monkeypatch.setattr(pipeline, "ingest_many", ingest_many)
    messages = [SourceMessage(name, (BSD / name).read_bytes()) for name in ALL]
    summary = import_messages(sessions, pipeline, messages, batch_size=10)
    assert summary.failed == ["lhost-postfix-02.eml: RuntimeError: the database refused this message"]
    assert (summary.new, summary.events) == (3, 2)
    assert count(clean_engine, RawMessage) == 3


def test_import_command_prints_the_summary(clean_engine: Engine, database_url: str, tmp_path: Path):
    path = make_maildir(tmp_path)
    runner = CliRunner()
    env = {"RICOCHET_DATABASE_URL": database_url}
    result = runner.invoke(cli, ["import", "--quiet", str(path)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:4] == ["read 4 messages: 4 new, 0 duplicates, 0 unreadable, 0 failed",
                         "new: 3 parsed, 1 ignored, 0 quarantined",
                         "events written: 4",
                         "by kind: autoreply 1, bounce 2, complaint 1"]
    again = runner.invoke(cli, ["import", "--json", str(path)], env=env, catch_exceptions=False)
    assert again.exit_code == 0
    assert '"duplicates": 4' in again.stdout


def test_import_command_refuses_a_missing_path(database_url: str, tmp_path: Path):
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "nowhere")],
                                env={"RICOCHET_DATABASE_URL": database_url})
    assert result.exit_code == 2
    assert "nowhere: no such file or directory" in result.output
