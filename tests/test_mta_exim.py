"""A real Exim asks our policy server with the ACLs of docs/mta.md, read word for word.

Two blocks: the DATA ACL (SMTP submissions) and ``acl_not_smtp`` (local submissions, ``sendmail
-t`` from PHP's ``mail()``, where ``$sender_ident`` is the Unix user and a refusal is a non-zero
exit with the text on standard error, the only channel ``sendmail`` has).

Exim is Debian's exim4-daemon-light 4.96, unpacked by .ci/run into a private directory
(tests/exim.py: why not installed, and how one ``exim -bs`` session runs as real SMTP). Clients log
in with SMTP AUTH PLAIN, so ``$authenticated_id`` is the account as it would be in production. The
policy server is ours, in a thread, with decisions put into its cache directly (the rules that
write them are tested on their own).

Expected replies come from the Exim specification: an ACL ``defer`` gives 451 after DATA, a
``deny`` 550, with ``message`` as the text and a leading enhanced status code used as the reply's
own (spec chapter 42, "ACL return codes"; section "The SMTP reply"); ``control = freeze`` keeps
the message on the queue, frozen (``exim -bp`` marks it ``*** frozen ***``); and the fifth argument
of ``${readsocket}`` is the expansion when the socket cannot be reached (spec chapter 11).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from policy.cache import DecisionCache
from policy.engine import MemorySendSink, PolicyEngine
from policy.server import run_in_thread
from policy.texts import PolicyConfig
from reputation.model import Action, Decision, Identity, IdentityKind, State
from tests.exim import PASSWORD, EximInstance, exim_instance, exim_missing, skip_or_fail
from tests.postfix import free_port

DOC = Path(__file__).resolve().parent.parent / "docs" / "mta.md"
DOC_SOCKET = "inet:127.0.0.1:10040"
NOW = datetime.now(UTC)
PAUSED = Identity(IdentityKind.ACCOUNT, "paused@example.com")
BLOCKED = Identity(IdentityKind.ACCOUNT, "blocked@example.com")
HELD = Identity(IdentityKind.ACCOUNT, "held@example.com")
OK = Identity(IdentityKind.ACCOUNT, "ok@example.com")
# Local submissions: the account is the Unix user that ran sendmail (Exim's $sender_ident).
PAUSED_USER = Identity(IdentityKind.ACCOUNT, "webuser1")
BLOCKED_USER = Identity(IdentityKind.ACCOUNT, "webuser2")
REASON = "4 complaints on 300 messages in 24 h (1.3 %, limit 0.5 %)"


def documented_acl(which: str = "") -> str:
    """The block docs/mta.md marks as the one this test runs (``which``: the marker's note)."""
    text = DOC.read_text(encoding="utf-8")
    marker = f"<!-- tested: tests/test_mta_exim.py reads the next block{which} -->"
    match = re.search(re.escape(marker) + r"\n```\n(.*?)```", text, re.S)
    assert match, f"docs/mta.md lost its tested Exim block {marker}"
    return match.group(1)


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    decisions = DecisionCache()
    for identity, state, action in ((PAUSED, State.PAUSED, Action.DEFER),
                                    (BLOCKED, State.BLOCKED, Action.REJECT), (HELD, State.HELD, Action.HOLD),
                                    (PAUSED_USER, State.PAUSED, Action.DEFER),
                                    (BLOCKED_USER, State.BLOCKED, Action.REJECT)):
        decisions.update(Decision(identity, state, action, "complaint_rate", REASON, None,
                                  NOW + timedelta(hours=1), {}, NOW))
    return PolicyEngine(decisions, MemorySendSink(), PolicyConfig(support="abuse@provider.example"))


def exim_asking(engine: PolicyEngine, acl: str) -> Iterator[EximInstance]:
    """A private Exim with ``acl`` asking our policy server (in a thread) about ``engine``."""
    missing = exim_missing()
    if missing:
        skip_or_fail(missing)
    assert acl.count(DOC_SOCKET) == 1
    with run_in_thread(engine, ["127.0.0.1:0"]) as server:
        port = server.addresses[0].rsplit(":", 1)[1]
        with exim_instance(acl.replace(DOC_SOCKET, f"inet:127.0.0.1:{port}")) as instance:
            yield instance


@pytest.fixture(scope="module")
def exim(engine: PolicyEngine) -> Iterator[EximInstance]:
    yield from exim_asking(engine, documented_acl())


@pytest.fixture(scope="module")
def exim_local(engine: PolicyEngine) -> Iterator[EximInstance]:
    yield from exim_asking(engine, documented_acl(" (local submissions)"))


def submit(exim: EximInstance, account: str, recipients: list[str]) -> tuple[int, str]:
    """One message from ``account`` after AUTH PLAIN: the reply to the end of its DATA."""
    with exim.session() as smtp:
        smtp.ehlo("client.example")
        smtp.login(account, PASSWORD)
        smtp.mail(account)
        for recipient in recipients:
            code, text = smtp.rcpt(recipient)
            assert code == 250, (code, text)
        code, reply = smtp.data(f"From: {account}\r\nSubject: hello\r\n\r\nHello.\r\n".encode())
        smtp.quit()
    # Exim wraps a long text over several reply lines (smtplib joins them with newlines); the
    # enhanced code is on the first line only.
    return code, " ".join(reply.decode().split())


def sink_of(engine: PolicyEngine) -> MemorySendSink:
    sink = engine.sink
    assert isinstance(sink, MemorySendSink)
    return sink


def test_ok_account_accepted_and_counted_once(engine: PolicyEngine, exim: EximInstance) -> None:
    sink = sink_of(engine)
    sink.drain()
    code, reply = submit(exim, OK.value, ["bob@gmail.com", "carol@yahoo.com"])
    assert code == 250, exim.log()
    assert reply.startswith("OK id=")
    [send] = sink.drain()
    assert (send.messages, send.recipients) == (1, 2)  # recipient_count=$recipients_count
    assert send.sender == OK.value
    assert {OK, Identity(IdentityKind.CLIENT, "127.0.0.1"), Identity(IdentityKind.DOMAIN, "example.com")} \
        <= set(send.identities)
    assert "*** frozen ***" not in exim.queue()


def test_paused_account_deferred_with_our_text(engine: PolicyEngine, exim: EximInstance) -> None:
    code, reply = submit(exim, PAUSED.value, ["frank@gmail.com"])
    assert code == 451, exim.log()
    assert reply == (f"4.7.1 Your account paused@example.com is paused because {REASON}. Reset your "
                     "password, check your devices for malware, then contact abuse@provider.example")
    assert sink_of(engine).totals(PAUSED) == (0, 0)  # a deferred attempt is not a send


def test_paused_account_cannot_add_attributes_through_a_quoted_sender(engine: PolicyEngine,
                                                                       exim: EximInstance) -> None:
    # RFC 5321 section 4.1.2 allows spaces in a quoted local part, and the one-line request splits
    # on spaces: unescaped, this sender replaced sasl_username and the paused account got through.
    sink = sink_of(engine)
    sink.drain()
    with exim.session() as smtp:
        smtp.ehlo("client.example")
        smtp.login(PAUSED.value, PASSWORD)
        assert smtp.docmd("MAIL", 'FROM:<"x sasl_username=ok@example.com"@example.com>')[0] == 250
        assert smtp.rcpt("judy@gmail.com")[0] == 250
        code, reply = smtp.data(b"Subject: hello\r\n\r\nHello.\r\n")
    assert code == 451, exim.log()
    assert " ".join(reply.decode().split()).startswith("4.7.1 Your account paused@example.com is paused")
    assert sink.drain() == []  # not counted, under any name


def test_blocked_account_rejected(exim: EximInstance) -> None:
    code, reply = submit(exim, BLOCKED.value, ["grace@gmail.com"])
    assert code == 550, exim.log()
    assert reply == (f"5.7.1 Sending from account blocked@example.com is blocked because {REASON}. "
                     "Contact abuse@provider.example")


def test_held_account_accepted_and_frozen(exim: EximInstance) -> None:
    code, reply = submit(exim, HELD.value, ["heidi@gmail.com"])
    assert code == 250, exim.log()
    message_id = reply.removeprefix("OK id=")
    [entry] = [line for line in exim.queue().splitlines() if message_id in line]
    assert "*** frozen ***" in entry
    assert f"<{HELD.value}>" in entry


def test_no_policy_server_fails_open() -> None:
    missing = exim_missing()
    if missing:
        skip_or_fail(missing)
    acl = documented_acl().replace(DOC_SOCKET, f"inet:127.0.0.1:{free_port()}")  # nobody listens there
    with exim_instance(acl) as exim:
        code, reply = submit(exim, PAUSED.value, ["ivan@gmail.com"])
    assert code == 250
    assert reply.startswith("OK id=")


LOCAL_MESSAGE = b"To: bob@gmail.com, carol@yahoo.com\nSubject: hello\n\nHello from a PHP script.\n"


def test_local_submission_of_an_ok_user_queued_and_counted(engine: PolicyEngine,
                                                           exim_local: EximInstance) -> None:
    sink = sink_of(engine)
    sink.drain()
    done = exim_local.submit_local("webuser0", LOCAL_MESSAGE)
    assert done.returncode == 0, (done.stderr, exim_local.log())
    [send] = sink.drain()
    assert (send.messages, send.recipients) == (1, 2)
    assert Identity(IdentityKind.ACCOUNT, "webuser0") in send.identities
    assert "bob@gmail.com" in exim_local.queue()


def test_local_submission_of_a_paused_user_refused_with_our_text(engine: PolicyEngine,
                                                                 exim_local: EximInstance) -> None:
    before = exim_local.queue()
    done = exim_local.submit_local(PAUSED_USER.value, LOCAL_MESSAGE)
    assert done.returncode != 0  # what PHP's mail() turns into false
    assert (f"4.7.1 Your account webuser1 is paused because {REASON}. Reset your password, check your "
            "devices for malware, then contact abuse@provider.example") in " ".join(done.stderr.split())
    assert exim_local.queue() == before  # nothing queued
    assert sink_of(engine).totals(PAUSED_USER) == (0, 0)


def test_local_submission_of_a_blocked_user_refused(exim_local: EximInstance) -> None:
    done = exim_local.submit_local(BLOCKED_USER.value, LOCAL_MESSAGE)
    assert done.returncode != 0
    assert "5.7.1 Sending from account webuser2 is blocked because" in " ".join(done.stderr.split())
