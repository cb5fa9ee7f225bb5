"""``python app.py maillog PATH...`` on SQLite and PostgreSQL: files, gzip, standard input, the summary.

The log lines are those of tests/test_maillog.py (a real Postfix's and Exim's); the expected
ledger rows are read off them. Standard input runs the real command in a subprocess with a pipe,
as ``tail -F /var/log/mail.log | python app.py maillog -`` does, and checks that an entry is
committed while the pipe is still open (within a second or so, not at the end).
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine, select

from app import cli
from ingest.maillog import LedgerFill, log_lines
from maillog import MAX_LINE, LogReader
from storage import LedgerEntry, add_ledger_entry, session_factory
from tests import db
from tests.test_maillog import POSTFIX_LONG, POSTFIX_SHORT

database_url, db_engine = db.database_url, db.db_engine

REPO = Path(__file__).resolve().parent.parent
EXIM_LINE = ("2026-11-30 08:53:49 1xXx8v-0008TR-0i <= alice@example.com H=(client.example) [192.0.2.7] "
             "P=esmtpa A=plain:alice@example.com S=296 id=probe.2@example.com\n")
NO_FAILURES = ("delivery failures 0 (0 bounced, 0 deferred): 0 recorded, 0 already recorded, "
               "0 without an event, 0 left out, 0 not stored")
ALL_IDS = {"probe.1@example.com", "CAF=x+y@mail.example.net", "shop.1234@web1.provider.example",
           "20261130085250.84DB0226317@mail", "abc.42@carol.example"}


def ledger(engine: Engine) -> dict[str, tuple[str | None, str | None, str | None, str | None]]:
    with session_factory(engine)() as session:
        rows = session.scalars(select(LedgerEntry)).all()
        return {row.message_id: (row.account, row.script, row.client, row.sender) for row in rows}


def run(url: str, *args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, ["maillog", *args], input=stdin, env={"RICOCHET_DATABASE_URL": url},
                              catch_exceptions=False)


def test_a_plain_and_a_gzip_rotated_log(database_url: str, db_engine: Engine, tmp_path: Path):
    try:
        rotated = tmp_path / "mail.log.2.gz"
        with gzip.open(rotated, "wt") as stream:
            stream.write(POSTFIX_SHORT)
        current = tmp_path / "mail.log"
        current.write_text(POSTFIX_LONG + EXIM_LINE)
        result = run(database_url, "--batch-size", "2", str(rotated), str(current))
        assert result.exit_code == 0, result.output
        assert result.output.splitlines() == [
            "read 20 lines: 17 used, 3 skipped",  # the "removed" line ends a queue id held since its from=
            "facts 6: 6 written, 0 already in the ledger, 0 left out (not authenticated), 0 too long",
            "messages without a Message-ID: 0",
            NO_FAILURES,
        ]
        rows = ledger(db_engine)
        assert set(rows) == ALL_IDS | {"probe.2@example.com"}
        alice = ("alice@example.com", None, "198.51.100.23", "alice@example.com")
        assert rows["probe.1@example.com"] == alice
        assert rows["shop.1234@web1.provider.example"] == (None, None, "198.51.100.40",
                                                           "shop@customer.example")
        assert rows["20261130085250.84DB0226317@mail"] == (None, "uid:33", None,
                                                           "www-data@mail.provider.example")
        assert rows["probe.2@example.com"] == ("alice@example.com", None, "192.0.2.7", "alice@example.com")

        # Read again (a log read twice, or rotated and read once more): nothing changes.
        again = run(database_url, str(current))
        assert again.output.splitlines()[1] == ("facts 2: 0 written, 2 already in the ledger, "
                                               "0 left out (not authenticated), 0 too long")
        assert ledger(db_engine) == rows
    finally:
        db.clear(db_engine)


def test_the_first_writer_of_a_message_id_wins(database_url: str, db_engine: Engine, tmp_path: Path):
    try:
        with session_factory(db_engine)() as session:
            add_ledger_entry(session, "<probe.1@example.com>", account="first@example.com")
            session.commit()
        # The same Message-ID twice in one log too: re-injected by a content filter on localhost.
        log = tmp_path / "mail.log"
        carol = "client=unknown[192.0.2.7], sasl_method=PLAIN, sasl_username=carol@example.com"
        refiltered = POSTFIX_LONG.replace("4Fq3Yb2XZmz9sQ", "4Fq3Yc0ABCz1tR").replace(
            carol, "client=localhost[127.0.0.1]")
        log.write_text(POSTFIX_LONG + refiltered + POSTFIX_SHORT)
        result = run(database_url, str(log))
        assert result.output.splitlines()[1] == ("facts 6: 4 written, 2 already in the ledger, "
                                               "0 left out (not authenticated), 0 too long")
        rows = ledger(db_engine)
        assert rows["probe.1@example.com"] == ("first@example.com", None, None, None)
        assert rows["abc.42@carol.example"] == ("carol@example.com", None, "192.0.2.7", "carol@example.com")
    finally:
        db.clear(db_engine)


def test_authenticated_only_leaves_out_unauthenticated_mail(database_url: str, db_engine: Engine):
    try:
        result = run(database_url, "--authenticated-only", "-", stdin=POSTFIX_SHORT)
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[1] == ("facts 4: 3 written, 0 already in the ledger, "
                                               "1 left out (not authenticated), 0 too long")
        assert "shop.1234@web1.provider.example" not in ledger(db_engine)
    finally:
        db.clear(db_engine)


def test_garbage_and_a_broken_gzip_do_not_stop_it(database_url: str, db_engine: Engine, tmp_path: Path):
    try:
        garbage = tmp_path / "garbage.log"
        garbage.write_bytes(os.urandom(20_000) + b"\n\xff\xfe\x00 not a log line\n")
        broken = tmp_path / "mail.log.1.gz"
        broken.write_bytes(gzip.compress(POSTFIX_LONG.encode())[:-12])  # cut: no gzip trailer
        good = tmp_path / "mail.log"
        good.write_text(EXIM_LINE)
        result = run(database_url, str(garbage), str(broken), str(good))
        assert result.exit_code == 1, result.output  # a file not read to its end
        lines = result.output.splitlines()
        assert lines[1].startswith("facts 2: 2 written")  # the broken gzip's lines before the cut, and Exim's
        assert lines[4].startswith(f"unreadable: {broken}: ")
        assert set(ledger(db_engine)) == {"abc.42@carol.example", "probe.2@example.com"}
    finally:
        db.clear(db_engine)


def test_a_missing_path_is_refused_before_reading(database_url: str, tmp_path: Path):
    result = CliRunner().invoke(cli, ["maillog", str(tmp_path / "nowhere.log")],
                                env={"RICOCHET_DATABASE_URL": database_url})
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_standard_input_is_committed_while_the_pipe_is_open(database_url: str, db_engine: Engine,
                                                            tmp_path: Path):
    env = {**os.environ, "RICOCHET_DATABASE_URL": database_url}
    env.pop("RICOCHET_CONFIG", None)
    process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "maillog", "-"], cwd=tmp_path, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdin is not None
        process.stdin.write(POSTFIX_LONG.encode())
        process.stdin.flush()
        deadline = time.monotonic() + 10
        while "abc.42@carol.example" not in ledger(db_engine):
            assert time.monotonic() < deadline, "nothing committed while the pipe stayed open"
            assert process.poll() is None
            time.sleep(0.1)
        out, err = process.communicate(EXIM_LINE.encode() + b"\x00garbage\n", timeout=30)
        assert process.returncode == 0, err.decode()
        assert out.decode().splitlines() == [
            "read 5 lines: 4 used, 1 skipped",
            "facts 2: 2 written, 0 already in the ledger, 0 left out (not authenticated), 0 too long",
            "messages without a Message-ID: 0",
            NO_FAILURES,
        ]
        assert set(ledger(db_engine)) == {"abc.42@carol.example", "probe.2@example.com"}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        db.clear(db_engine)


def test_a_line_without_end_is_read_in_bounded_pieces_and_skipped(tmp_path: Path) -> None:
    # 5 MB with no line ending (a binary file given by mistake), then an Exim arrival line.
    log = tmp_path / "mixed.log"
    log.write_bytes(b"\xe2\x82\xac" * 1_750_000 + b"\n" + EXIM_LINE.encode())
    fill = LedgerFill()
    read = list(log_lines([str(log)], io.BytesIO(), fill))
    lines = [line for line in read if line is not None]
    assert lines == read  # a file gives lines only (None is the pause of a followed stream)
    assert len(lines) == 2  # the long line once, cut; nothing of its rest becomes a line
    assert MAX_LINE < len(lines[0]) <= 4 * (MAX_LINE + 1)
    reader = LogReader()
    facts = [fact for line in lines for fact in reader.feed(line)]
    assert (reader.counts.skipped, reader.counts.used) == (1, 1)
    assert [fact.message_id for fact in facts] == ["probe.2@example.com"]
