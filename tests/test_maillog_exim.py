"""A real Exim's main log fills the ledger: an SMTP AUTH submission and a local one.

Debian's Exim 4.96, private (tests/exim.py): one ``exim -bs`` session from 192.0.2.7 logs in with
AUTH PLAIN as alice@example.com, and ``exim -t`` submits as the Unix user webuser1 (``-oMt``,
what ``$sender_ident`` and the ``U=`` field then hold). The Exim specification ("Logging message
reception") says the arrival line carries ``A=plain:alice@example.com``, ``[192.0.2.7]`` after
``H=``, ``U=webuser1`` with ``P=local``, and ``id=`` the Message-ID: the ledger must hold them.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy.orm import Session

from app import cli
from storage import ledger_entry
from tests import db
from tests.exim import PASSWORD, exim_instance, exim_missing, skip_or_fail

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

ACL = "acl_smtp_data = acl_check_data\n\nbegin acl\n\nacl_check_data:\n  accept\n"


def test_the_exim_main_log_fills_the_ledger(database_url: str, db_session: Session):
    missing = exim_missing()
    if missing:
        skip_or_fail(missing)
    with exim_instance(ACL) as exim:
        with exim.session("192.0.2.7") as smtp:
            smtp.ehlo("client.example")
            smtp.login("alice@example.com", PASSWORD)
            smtp.sendmail("alice@example.com", ["bob@gmail.com"], b"From: alice@example.com\r\n"
                          b"Message-ID: <smtp.1@example.com>\r\nSubject: hi\r\n\r\nHi.\r\n")
        done = exim.submit_local("webuser1", b"To: carol@gmail.com\nMessage-ID: <local.1@example.com>\n"
                                             b"Subject: form\n\nHi.\n")
        assert done.returncode == 0, done.stderr
        mainlog = Path(exim.home) / "log" / "mainlog"
        result = CliRunner().invoke(cli, ["maillog", str(mainlog)],
                                    env={"RICOCHET_DATABASE_URL": database_url}, catch_exceptions=False)
        assert result.exit_code == 0, result.output + exim.log()
    smtp_entry = ledger_entry(db_session, "smtp.1@example.com")
    assert smtp_entry is not None, result.output
    assert (smtp_entry.account, smtp_entry.client, smtp_entry.sender) == (
        "alice@example.com", "192.0.2.7", "alice@example.com")
    local_entry = ledger_entry(db_session, "local.1@example.com")
    assert local_entry is not None, result.output
    assert (local_entry.account, local_entry.client) == ("webuser1", None)
