"""The story of issue 4 section 4 with a real Postfix: a stolen password is stopped, then resumes.

A private Postfix (tests/postfix.py) runs the main.cf block of docs/mta.md, word for word but for
the port, pointing at a policy node of ours (the node ``python app.py policyd`` runs: decisions
from the database, counted sends flushed to it) on both test databases. smtplib uses ``XCLIENT
LOGIN=... ADDR=...`` (allowed for 127.0.0.0/8 in the instance) to act as the authenticated
account alice@example.com, from her own machine and from the attacker's.

1. alice's message is accepted;
2. the attacker, with alice's password, sends 10 messages of 25 gmail recipients each: all accepted
   (nothing is known yet) and counted;
3. the evaluation job (jobs/evaluate.py, run once as the scheduler would) pauses the account by the
   ``freemail-flood`` rule of config/rules.toml (90 % or more of 200+ recipients in 10 minutes at
   freemail providers), and within the node's next refresh alice's next message is deferred with
   our text (Postfix answers a DEFER_IF_PERMIT at RCPT with ``450 4.7.1 <rcpt>: Recipient address
   rejected: <text>``);
4. ``python app.py identity resume account alice@example.com`` (after the password reset), and her
   next message is accepted again; the attacker's host stays paused by the same rule.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from app import cli
from config import load_settings
from ingest.runtime import Runtime
from jobs.evaluate import ReputationJobs
from policy.cache import DecisionCache
from policy.engine import MemorySendSink, PolicyEngine
from policy.node import PolicyNode
from policy.server import run_in_thread
from reputation import Identity, IdentityKind, State
from storage.types import utcnow
from tests.db import database_url, db_engine, db_session
from tests.postfix import PostfixInstance, postfix_available, running_postfix
from tests.test_policy_postfix import documented_main_cf

__all__ = ["database_url", "db_engine", "db_session"]

pytestmark = pytest.mark.skipif(postfix_available() is not None, reason=postfix_available() or "")

ALICE = "alice@example.com"
HOME = "192.0.2.10"  # alice's own machine
ATTACKER = "198.51.100.23"  # where the stolen password is used from
MESSAGES, RECIPIENTS = 10, 25  # 250 recipients, all at gmail.com: over freemail-flood's 200 and 90 %
# The instance has no SASL backend, so permit_sasl_authenticated does not apply to an XCLIENT LOGIN:
# the two client addresses may relay as mynetworks instead (after the documented block, which it
# does not change: check_policy_service still comes first).
RELAY = f"\nmynetworks = 127.0.0.0/8 {HOME}/32 {ATTACKER}/32\n"


class Clock:
    """The node's clock, which the test can set back: ``time.time() + offset``."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Story:
    """The instance, the node's runtime, its database URL and the node's clock."""

    postfix: PostfixInstance
    runtime: Runtime
    node: PolicyNode
    url: str
    clock: Clock


@pytest.fixture
def story(database_url: str, db_session: Session) -> Iterator[Story]:
    settings = load_settings(env={"RICOCHET_DATABASE_URL": database_url,
                                  "RICOCHET_POLICY_SUPPORT": "abuse@provider.example"})
    block = documented_main_cf()
    clock = Clock()
    with Runtime.from_settings(settings) as runtime:
        # The node of runtime.policy, but for the clock its engine counts sends with.
        engine = PolicyEngine(DecisionCache(), MemorySendSink(), settings.policy.config, clock=clock)
        node = PolicyNode(engine, runtime.engine, runtime.sessions, runtime.policy.timings,
                          settings.reputation.rules.freemail_domains)
        with node, run_in_thread(node.engine, ["127.0.0.1:0"]) as server:
            port = server.addresses[0].rsplit(":", 1)[1]
            main_cf = block.replace("inet:127.0.0.1:10040", f"inet:127.0.0.1:{port}") + RELAY
            with running_postfix(main_cf) as instance:
                yield Story(instance, runtime, node, database_url, clock)


def session_as(port: int, address: str) -> smtplib.SMTP:
    """An SMTP session of alice@example.com (SMTP AUTH as Postfix sees it after XCLIENT) from ``address``."""
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=15)
    smtp.ehlo("client.example")
    code, reply = smtp.docmd("XCLIENT", f"LOGIN={ALICE} ADDR={address}")
    assert code == 220, reply
    smtp.ehlo("client.example")
    return smtp


def send(smtp: smtplib.SMTP, recipients: list[str]) -> list[tuple[int, str]]:
    """One message: the reply to each RCPT, then to DATA when a recipient was accepted."""
    smtp.mail(ALICE)
    replies = [(code, text.decode()) for code, text in (smtp.rcpt(r) for r in recipients)]
    if any(code == 250 for code, _ in replies):
        code, text = smtp.data(b"From: alice@example.com\r\nSubject: hello\r\n\r\nHello.\r\n")
        replies.append((code, text.decode()))
    else:
        smtp.rset()
    return replies


def one_message(port: int, address: str, recipient: str) -> list[tuple[int, str]]:
    with session_as(port, address) as smtp:
        return send(smtp, [recipient])


def wait_for(check: str, port: int, address: str, want: int, seconds: float) -> tuple[int, str]:
    """Send one message from ``address`` until its RCPT gets ``want`` (the node refreshes every second)."""
    deadline = time.monotonic() + seconds
    n = 0
    while True:
        n += 1
        code, text = one_message(port, address, f"{check}{n}@example.net")[0]
        if code == want:
            return code, text
        assert time.monotonic() < deadline, f"still {code} {text} after {seconds} s"
        time.sleep(0.2)


def test_a_stolen_password_is_paused_then_resumed(story: Story) -> None:
    port, node = story.postfix.port, story.node
    started = time.monotonic()
    # Steps 1 and 2 are dated two minutes back: after a resume, rules see only what the sender did
    # since, to the minute (reputation/counters.py), and the test does not wait for the next minute.
    story.clock.offset = -120.0

    # 1. Alice's own message goes through.
    replies = one_message(port, HOME, "friend@example.net")
    assert [code for code, _ in replies] == [250, 250], story.postfix.log()

    # 2. The burst, from the attacker's host: accepted (nothing is known yet) and counted at RCPT.
    with session_as(port, ATTACKER) as smtp:
        for m in range(MESSAGES):
            replies = send(smtp, [f"victim{m}-{r}@gmail.com" for r in range(RECIPIENTS)])
            assert {code for code, _ in replies} == {250}, replies[-1]
    burst = time.monotonic() - started
    story.clock.offset = 0.0
    deadline = time.monotonic() + 10
    while node.metrics()["flushed_sends"] < 1 + MESSAGES * RECIPIENTS:  # one Send per RCPT lookup
        assert time.monotonic() < deadline, node.metrics()
        time.sleep(0.05)

    # 3. The evaluation job pauses the account (and the attacker's host) by freemail-flood.
    report = ReputationJobs(story.runtime.sessions, story.runtime.settings.reputation).evaluate(now=utcnow())
    changed = {d.identity: d for d in report.changed}
    account = changed[Identity(IdentityKind.ACCOUNT, ALICE)]
    assert (account.state, account.rule) == (State.PAUSED, "freemail-flood")
    assert changed[Identity(IdentityKind.CLIENT, ATTACKER)].state is State.PAUSED
    evaluated = time.monotonic()
    code, text = wait_for("after-pause", port, HOME, 450, 5)
    deferred_after = time.monotonic() - evaluated
    assert text.startswith("4.7.1 <after-pause")
    assert ": Recipient address rejected: Your account alice@example.com is paused because " in text
    assert text.endswith("Reset your password, check your devices for malware, then contact "
                         "abuse@provider.example")

    # 4. The admin resumes the account (its password was reset): mail from alice goes through again.
    result = CliRunner().invoke(cli, ["identity", "resume", "account", ALICE, "--reason", "password reset",
                                      "--author", "support"], env={"RICOCHET_DATABASE_URL": story.url})
    assert result.exit_code == 0, result.output
    resumed = time.monotonic()
    wait_for("after-resume", port, HOME, 250, 5)
    accepted_after = time.monotonic() - resumed
    # The attacker's host is still paused by the same rule.
    code, text = one_message(port, ATTACKER, "more@gmail.com")[0]
    assert code == 450 and "Sending from client 198.51.100.23 is paused because" in text
    assert node.metrics()["failed_open"] == 0
    print(f"burst of {MESSAGES * RECIPIENTS} recipients: {burst:.1f} s; deferred {deferred_after:.2f} s "
          f"after the evaluation, accepted {accepted_after:.2f} s after the resume; "
          f"whole story {time.monotonic() - started:.1f} s")
