"""A real Postfix asks our policy server: mail accepted, throttled, paused with our text, resumed.

Postfix runs as a private instance on a loopback port (tests/postfix.py) with the main.cf block
of docs/mta.md, word for word but for the port; our asyncio server runs in a thread of this test.
The client uses ``XCLIENT LOGIN=...`` (allowed for 127.0.0.0/8 in the instance) to be the
authenticated account alice@example.com, so Postfix sends ``sasl_username`` as it would after SMTP
AUTH. Decisions are put into the cache directly (the reputation rules that write them are tested
on their own). Expected replies: Postfix answers a DEFER_IF_PERMIT from a policy service at RCPT
with ``450 4.7.1 <rcpt>: Recipient address rejected: <text>`` (shared/REAL-SERVERS.md).
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from policy.cache import DecisionCache
from policy.engine import MemorySendSink, PolicyEngine
from policy.server import run_in_thread
from policy.texts import PolicyConfig
from reputation.model import Action, Decision, Identity, IdentityKind, State
from tests.postfix import PostfixInstance, postfix_available, running_postfix

pytestmark = pytest.mark.skipif(postfix_available() is not None, reason=postfix_available() or "")

DOC = Path(__file__).resolve().parent.parent / "docs" / "mta.md"
ALICE = Identity(IdentityKind.ACCOUNT, "alice@example.com")
NOW = datetime.now(UTC)


def documented_main_cf() -> str:
    """The block docs/mta.md marks as the one this test runs."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- tested: tests/test_policy_postfix.py reads the next block -->\n```\n(.*?)```",
                      text, re.S)
    assert match, "docs/mta.md lost its tested Postfix block"
    return match.group(1)


def submit(port: int, recipients: list[str]) -> list[tuple[int, str]]:
    """One message from alice@example.com: the reply to each RCPT, then to DATA if any was accepted."""
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as smtp:
        smtp.ehlo("client.example")
        code, _ = smtp.docmd("XCLIENT", "LOGIN=alice@example.com ADDR=127.0.0.1")
        assert code == 220
        smtp.ehlo("client.example")
        smtp.mail("alice@example.com")
        replies = [(code, text.decode()) for code, text in (smtp.rcpt(r) for r in recipients)]
        if any(code == 250 for code, _ in replies):
            code, text = smtp.data(b"From: alice@example.com\r\nSubject: hello\r\n\r\nHello.\r\n")
            replies.append((code, text.decode()))
        else:
            smtp.rset()
    return replies


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(DecisionCache(), MemorySendSink(), PolicyConfig(support="abuse@provider.example"))


@pytest.fixture(scope="module")
def postfix(engine: PolicyEngine) -> Iterator[PostfixInstance]:
    block = documented_main_cf()
    assert block.count("inet:127.0.0.1:10040") == 2
    with run_in_thread(engine, ["127.0.0.1:0"]) as server:
        port = server.addresses[0].rsplit(":", 1)[1]
        with running_postfix(block.replace("inet:127.0.0.1:10040", f"inet:127.0.0.1:{port}")) as instance:
            yield instance


def sink_of(engine: PolicyEngine) -> MemorySendSink:
    sink = engine.sink
    assert isinstance(sink, MemorySendSink)
    return sink


def test_accepted_throttled_paused_resumed(engine: PolicyEngine, postfix: PostfixInstance) -> None:
    sink = sink_of(engine)

    # 1. No decision: accepted, and counted once with both recipients (RCPT x2 + END-OF-MESSAGE).
    replies = submit(postfix.port, ["bob@gmail.com", "carol@yahoo.com"])
    assert [code for code, _ in replies] == [250, 250, 250], postfix.log()
    sends = sink.drain()
    assert sum(s.messages for s in sends) == 1
    assert sum(s.recipients for s in sends) == 2
    assert [a for s in sends for a in s.addresses] == ["bob@gmail.com", "carol@yahoo.com"]
    assert {ALICE, Identity(IdentityKind.CLIENT, "127.0.0.1"),
            Identity(IdentityKind.DOMAIN, "example.com")} <= set(sends[0].identities)

    # 2. Throttled to 1 message an hour: the next message passes, the one after is deferred.
    engine.decisions.update(Decision(ALICE, State.THROTTLED, Action.THROTTLE, "volume_burst",
                                     "250 messages in 10 minutes, 20 times its usual hour", 1, None, {}, NOW))
    assert [code for code, _ in submit(postfix.port, ["dave@gmail.com"])] == [250, 250]
    [(code, text)] = submit(postfix.port, ["erin@gmail.com"])
    assert code == 450
    assert text.startswith("4.7.1 <erin@gmail.com>: Recipient address rejected: Too many messages from "
                           "account alice@example.com: 1 an hour")

    # 3. Paused: deferred with our text, which says what to do.
    engine.decisions.update(Decision(ALICE, State.PAUSED, Action.DEFER, "complaint_rate",
                                     "4 complaints on 300 messages in 24 h (1.3 %, limit 0.5 %)", None,
                                     NOW + timedelta(hours=1), {}, NOW))
    [(code, text)] = submit(postfix.port, ["frank@gmail.com"])
    assert code == 450
    assert text == ("4.7.1 <frank@gmail.com>: Recipient address rejected: Your account alice@example.com is "
                    "paused because 4 complaints on 300 messages in 24 h (1.3 %, limit 0.5 %). Reset your "
                    "password, check your devices for malware, then contact abuse@provider.example")

    # 4. Resumed (the admin's "resume" removes the decision): accepted again.
    engine.decisions.remove(ALICE)
    assert [code for code, _ in submit(postfix.port, ["grace@gmail.com"])] == [250, 250]
    assert engine.metrics()["failed_open"] == 0
