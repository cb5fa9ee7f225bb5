"""The IMAP collector against a real Dovecot (tests/dovecot.py), on SQLite and PostgreSQL.

Corpus complaints and bounces go in with IMAP APPEND; the expected recipients and reasons come
from the corpus's expected.jsonl; the server-side moves are read back over IMAP.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from config.imap import ImapMailbox, ImapSettings, imap_settings
from ingest.imap import ImapCollector
from ingest.imap_server import PROCESSED_KEYWORD, QUARANTINED_KEYWORD, connect
from ingest.pipeline import Pipeline
from storage import Event, ImapState, RawMessage, session_factory
from tests import db
from tests import dovecot as private_dovecot
from tests.dovecot import Dovecot, free_port

# The fixtures of tests/db.py (both backends) and tests/dovecot.py, used by name below.
database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session
dovecot = private_dovecot.dovecot

CORPUS = Path(__file__).parent / "data" / "corpus"
COMPLAINTS = ["arf-01", "arf-14", "arf-17"]
BOUNCES = ["lhost-postfix-01", "lhost-postfix-02", "lhost-postfix-04"]
PASSWORD_ENV = "RICOCHET_TEST_IMAP_PASSWORD"
# Dovecot's default Maildir++ layout separates levels with "." (the collector translates "/").
PROCESSED = "Ricochet.Processed"
QUARANTINE = "Ricochet.Quarantine"


def corpus(name: str) -> bytes:
    return (CORPUS / "emails" / "maildir" / "bsd" / f"{name}.eml").read_bytes()


def expected(name: str) -> set[tuple[str, str]]:
    """(recipient, reason) pairs the corpus expects for ``name``."""
    with (CORPUS / "expected.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    return {(row["recipient"], row["reason"]) for row in rows if row["file"] == f"maildir/bsd/{name}.eml"}


def table(server: Dovecot, user: str, name: str = "fbl", **overrides: Any) -> dict[str, Any]:
    return {"name": name, "host": server.host, "port": server.port, "security": "none", "user": user,
            "password_env": PASSWORD_ENV, **overrides}


def settings(*tables: dict[str, Any], **imap: Any) -> ImapSettings:
    values: dict[str, object] = {"enabled": True, "timeout_seconds": 10, "connect_attempts": 3,
                                 "backoff_seconds": 1, "backoff_max_seconds": 3, "mailbox": list(tables)}
    values.update(imap)
    return imap_settings(values)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "secret")


@pytest.fixture
def sessions(db_session: Session, db_engine: Engine) -> sessionmaker[Session]:
    """Sessions for the collector; db_session empties the tables after the test."""
    return session_factory(db_engine)


def collector(sessions: sessionmaker[Session], imap: ImapSettings, **seams: Any) -> ImapCollector:
    return ImapCollector(sessions, Pipeline(), imap, **seams)


def stored(sessions: sessionmaker[Session], source: str = "imap:fbl") -> list[RawMessage]:
    with sessions() as session:
        return list(session.scalars(select(RawMessage).where(RawMessage.source == source)
                                    .order_by(RawMessage.id)))


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def test_complaints_and_bounces_are_stored_parsed_and_moved(dovecot: Dovecot,
                                                            sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    names = COMPLAINTS + BOUNCES
    dovecot.append(user, [corpus(name) for name in names])
    run = collector(sessions, settings(table(dovecot, user)))

    report = run.collect_all()[0]

    counts = (report.error, report.fetched, report.new, report.duplicates, report.quarantined, report.moved)
    assert counts == (None, 6, 6, 0, 0, 6)
    messages = stored(sessions)
    assert [message.source_ref.split(":")[1] for message in messages if message.source_ref] == \
        ["1", "2", "3", "4", "5", "6"]  # APPEND order is UID order
    with sessions() as session:
        for name, message in zip(names, messages, strict=True):
            events = session.scalars(select(Event).where(Event.message_id == message.id)).all()
            assert {(event.recipient, event.reason) for event in events} == expected(name), name
            assert message.kind == ("complaint" if name.startswith("arf") else "bounce")
    assert dovecot.folder_bodies(user, "INBOX") == []
    assert sorted(map(sha, dovecot.folder_bodies(user, PROCESSED))) == sorted(m.sha256 for m in messages)
    # BODY.PEEK[]: nothing was marked read by the collector before the move.
    assert all(b"\\Seen" not in flags for flags in dovecot.folder_flags(user, PROCESSED))


def test_a_second_run_collects_only_what_is_new(dovecot: Dovecot, sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    dovecot.append(user, [corpus("arf-01"), corpus("lhost-postfix-01")])
    run = collector(sessions, settings(table(dovecot, user)))
    run.collect_all()

    again = run.collect_all()[0]
    assert (again.error, again.fetched, again.new) == (None, 0, 0)

    dovecot.append(user, [corpus("arf-14")])
    later = run.collect_all()[0]
    assert (later.fetched, later.new, later.moved) == (1, 1, 1)
    assert len(stored(sessions)) == 3
    with sessions() as session:
        state = session.scalars(select(ImapState).where(ImapState.mailbox == "fbl")).one()
        assert state.last_uid == 3


def test_the_same_message_twice_is_stored_once_and_both_are_moved(dovecot: Dovecot,
                                                                  sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    dovecot.append(user, [corpus("arf-01"), corpus("arf-01")])
    report = collector(sessions, settings(table(dovecot, user))).collect_all()[0]
    assert (report.fetched, report.new, report.duplicates, report.moved) == (2, 1, 1, 2)
    assert len(stored(sessions)) == 1
    assert len(dovecot.folder_bodies(user, PROCESSED)) == 2


def test_garbage_is_kept_and_moved_to_the_quarantine_folder(dovecot: Dovecot,
                                                            sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    garbage = b"garbage without any header\r\n\x01\x02 neither a bounce nor a complaint\r\n"
    dovecot.append(user, [garbage, corpus("arf-01")])
    report = collector(sessions, settings(table(dovecot, user))).collect_all()[0]

    assert (report.fetched, report.new, report.quarantined, report.moved) == (2, 2, 1, 2)
    quarantined = [message for message in stored(sessions) if message.status == "quarantined"]
    assert len(quarantined) == 1
    assert quarantined[0].raw == dovecot.folder_bodies(user, QUARANTINE)[0]  # the bytes, as served
    assert quarantined[0].error
    assert len(dovecot.folder_bodies(user, PROCESSED)) == 1


def test_uidvalidity_change_restarts_from_the_beginning_without_duplicates(dovecot: Dovecot,
                                                                         sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    dovecot.append(user, [corpus(name) for name in COMPLAINTS])
    run = collector(sessions, settings(table(dovecot, user, flag_instead_of_move=True)))
    first = run.collect_all()[0]
    assert (first.fetched, first.new, first.flagged, first.moved) == (3, 3, 3, 0)
    flags = dovecot.folder_flags(user, "INBOX")
    assert all(b"\\Seen" in f and PROCESSED_KEYWORD.encode() in f for f in flags)

    dovecot.set_uidvalidity(user, "INBOX", first.uidvalidity + 1000 if first.uidvalidity else 1000)
    second = run.collect_all()[0]

    assert second.uidvalidity != first.uidvalidity
    assert (second.error, second.fetched, second.new, second.duplicates) == (None, 3, 0, 3)
    assert len(stored(sessions)) == 3
    with sessions() as session:
        state = session.scalars(select(ImapState).where(ImapState.mailbox == "fbl")).one()
        assert (state.uidvalidity, state.last_uid) == (second.uidvalidity, 3)


def test_flag_mode_marks_quarantined_messages_with_their_own_keyword(dovecot: Dovecot,
                                                                    sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    dovecot.append(user, [b"no headers at all\r\n", corpus("lhost-postfix-04")])
    report = collector(sessions, settings(table(dovecot, user, flag_instead_of_move=True))).collect_all()[0]
    assert (report.flagged, report.quarantined) == (2, 1)
    garbage_flags, bounce_flags = dovecot.folder_flags(user, "INBOX")
    assert QUARANTINED_KEYWORD.encode() in garbage_flags
    assert PROCESSED_KEYWORD.encode() in bounce_flags
    assert (report.fetched, collector(sessions, settings(table(dovecot, user, flag_instead_of_move=True)))
            .collect_all()[0].fetched) == (2, 0)


def test_a_wrong_password_is_a_clear_error_and_the_other_mailboxes_are_collected(
        dovecot: Dovecot, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch):
    bad_user, good_user = dovecot.add_user(), dovecot.add_user()
    monkeypatch.setenv("RICOCHET_TEST_WRONG_PASSWORD", "not-the-password")
    dovecot.append(bad_user, [corpus("arf-01")])
    dovecot.append(good_user, [corpus("arf-14")])
    sleeps: list[float] = []
    imap = settings(table(dovecot, bad_user, name="bad", password_env="RICOCHET_TEST_WRONG_PASSWORD"),
                    table(dovecot, good_user, name="good"))

    bad, good = collector(sessions, imap, sleep=sleeps.append).collect_all()

    assert bad.error is not None
    assert f"refused the login of {bad_user}" in bad.error
    assert "RICOCHET_TEST_WRONG_PASSWORD" in bad.error
    assert sleeps == []  # a refused login is not retried
    assert (good.error, good.new, good.moved) == (None, 1, 1)
    assert stored(sessions, "imap:bad") == []
    assert len(dovecot.folder_bodies(bad_user, "INBOX")) == 1


def test_an_unreachable_server_is_retried_with_backoff_then_skipped_by_later_runs(
        dovecot: Dovecot, sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    dovecot.append(user, [corpus("arf-01")])
    sleeps: list[float] = []
    now = [1000.0]
    imap = settings(table(dovecot, user, name="down", port=free_port()), table(dovecot, user, name="up"),
                    connect_attempts=4, backoff_seconds=1, backoff_max_seconds=3)
    run = collector(sessions, imap, sleep=sleeps.append, clock=lambda: now[0])

    down, up = run.collect_all()

    assert down.error is not None and "cannot connect to 127.0.0.1" in down.error
    assert "gave up after 4 attempt(s)" in down.error
    assert sleeps == [1.0, 2.0, 3.0]  # doubled, capped at backoff_max_seconds
    assert (up.error, up.new) == (None, 1)
    skipped = run.collect(run.mailbox("down"))
    assert skipped.skipped and sleeps == [1.0, 2.0, 3.0]
    now[0] += 60
    assert not run.collect(run.mailbox("down")).skipped


def test_a_missing_password_variable_says_which(dovecot: Dovecot, sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    imap = settings(table(dovecot, user, password_env="RICOCHET_TEST_UNSET_PASSWORD"))
    report = collector(sessions, imap).collect_all()[0]
    assert report.error is not None and "RICOCHET_TEST_UNSET_PASSWORD" in report.error


def test_password_file(dovecot: Dovecot, sessions: sessionmaker[Session], tmp_path: Path):
    user = dovecot.add_user()
    (tmp_path / "password").write_text("secret\n", encoding="utf-8")
    dovecot.append(user, [corpus("arf-01")])
    imap = settings({**table(dovecot, user), "password_env": "", "password_file": str(tmp_path / "password")})
    assert collector(sessions, imap).collect_all()[0].new == 1


def test_a_message_committed_but_not_moved_is_moved_on_the_next_run(dovecot: Dovecot,
                                                                    sessions: sessionmaker[Session]):
    """The crash window between COMMIT and MOVE, made on purpose: stored, last UID advanced, not moved."""
    user = dovecot.add_user()
    dovecot.append(user, [corpus("arf-01"), corpus("arf-14")])
    with dovecot.client(user) as client:
        uidvalidity = client.select_folder("INBOX")[b"UIDVALIDITY"]
        raw = client.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"]
    with sessions() as session:
        Pipeline().ingest(session, raw, source="imap:fbl", source_ref=f"{uidvalidity}:1")
        session.add(ImapState(mailbox="fbl", uidvalidity=uidvalidity, last_uid=1))
        session.commit()

    report = collector(sessions, settings(table(dovecot, user))).collect_all()[0]

    assert (report.fetched, report.new, report.duplicates, report.moved) == (2, 1, 1, 2)
    assert len(stored(sessions)) == 2
    assert dovecot.folder_bodies(user, "INBOX") == []
    assert len(dovecot.folder_bodies(user, PROCESSED)) == 2


class _NoMoveClient(IMAPClient):
    """The real connection, with MOVE and UIDPLUS hidden: the server of RFC 3501 alone."""

    def has_capability(self, capability: str) -> bool:
        return capability.upper() not in ("MOVE", "UIDPLUS") and bool(super().has_capability(capability))


def test_without_move_it_copies_deletes_and_expunges(dovecot: Dovecot, sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    dovecot.append(user, [corpus("arf-01"), corpus("lhost-postfix-01")])

    def connect_without_move(mailbox: ImapMailbox, timeout: float) -> IMAPClient:
        client = _NoMoveClient(mailbox.host, port=mailbox.port, ssl=False, timeout=timeout)
        client.login(mailbox.user, "secret")
        return client

    run = collector(sessions, settings(table(dovecot, user)), connect=connect_without_move)
    report = run.collect_all()[0]
    assert (report.error, report.moved) == (None, 2)
    assert dovecot.folder_bodies(user, "INBOX") == []
    assert len(dovecot.folder_bodies(user, PROCESSED)) == 2


def test_folders_are_named_for_the_server_and_created(dovecot: Dovecot, sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    dovecot.append(user, [corpus("arf-01")], folder="Feedback.Yahoo")
    imap = settings(table(dovecot, user, folder="Feedback/Yahoo", processed_folder="Done/FBL",
                          quarantine_folder="Done/Broken"))
    report = collector(sessions, imap).collect_all()[0]
    assert (report.error, report.moved) == (None, 1)
    with dovecot.client(user) as client:
        names = {name for _flags, _delimiter, name in client.list_folders()}
    assert {"Done.FBL", "Done.Broken", "Feedback.Yahoo"} <= names


def test_a_missing_source_folder_is_a_clear_error(dovecot: Dovecot, sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    report = collector(sessions, settings(table(dovecot, user, folder="NoSuchFolder"))).collect_all()[0]
    assert report.error is not None and "cannot open folder 'NoSuchFolder'" in report.error


def test_starttls_and_implicit_tls_with_the_servers_certificate(dovecot: Dovecot,
                                                                sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    dovecot.append(user, [corpus("arf-01"), corpus("arf-14")])
    starttls = table(dovecot, user, name="starttls", security="starttls", ca_file=str(dovecot.ca_file),
                     batch_size=1)
    tls = table(dovecot, user, name="tls", security="tls", port=dovecot.tls_port,
                ca_file=str(dovecot.ca_file))
    first, second = collector(sessions, settings(starttls, tls)).collect_all()
    assert (first.error, first.new, second.error, second.new) == (None, 1, None, 1)


def test_an_untrusted_certificate_is_refused(dovecot: Dovecot):
    user = dovecot.add_user()
    mailbox = settings(table(dovecot, user, security="tls", port=dovecot.tls_port)).mailboxes[0]
    with pytest.raises(Exception, match=r"TLS certificate of 127\.0\.0\.1:\d+ is not trusted"):
        connect(mailbox, 5.0)


def test_batch_size_bounds_one_run(dovecot: Dovecot, sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    dovecot.append(user, [corpus(name) for name in COMPLAINTS + BOUNCES])
    run = collector(sessions, settings(table(dovecot, user, batch_size=4)))
    assert [run.collect_all()[0].fetched for _ in range(3)] == [4, 2, 0]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(RawMessage)) == 6


class _NoKeywordsClient(IMAPClient):
    """The real connection, the folder reported as keeping no keywords (no \\* in PERMANENTFLAGS)."""

    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]:
        selected = dict(super().select_folder(folder, readonly))
        selected[b"PERMANENTFLAGS"] = tuple(f for f in selected[b"PERMANENTFLAGS"] if f != b"\\*")
        return selected


def test_flag_mode_on_a_server_without_keywords_uses_seen_alone(dovecot: Dovecot,
                                                               sessions: sessionmaker[Session]):
    user = dovecot.add_user()
    dovecot.append(user, [corpus("arf-01"), corpus("arf-14")])

    def connect_without_keywords(mailbox: ImapMailbox, timeout: float) -> IMAPClient:
        client = _NoKeywordsClient(mailbox.host, port=mailbox.port, ssl=False, timeout=timeout)
        client.login(mailbox.user, "secret")
        return client

    imap = settings(table(dovecot, user, flag_instead_of_move=True))
    run = collector(sessions, imap, connect=connect_without_keywords)
    assert run.collect_all()[0].flagged == 2
    assert dovecot.folder_flags(user, "INBOX") == [(b"\\Seen",), (b"\\Seen",)]
    assert run.collect_all()[0].fetched == 0
