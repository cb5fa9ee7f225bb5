"""policy.engine: identities, the most severe decision, throttles, counting once per message, fail-open.

Expected answers follow issue 4 section 3 and the seam in reputation/model.py: allow -> DUNNO,
throttle over its limit and defer -> DEFER_IF_PERMIT 4.7.1, hold -> HOLD, reject -> REJECT 5.7.1.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from policy.cache import CustomerMap, DecisionCache, HourWindow, InstanceLog, Key
from policy.engine import MemorySendSink, PolicyEngine, Send
from policy.texts import DEFAULT_TEXTS, PolicyConfig
from reputation.model import Action, Decision, Identity, IdentityKind, State

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
ALICE = Identity(IdentityKind.ACCOUNT, "alice@example.com")
RCPT = {"request": "smtpd_access_policy", "protocol_state": "RCPT", "sasl_username": "alice@example.com",
        "sender": "alice@Example.COM.", "client_address": "192.0.2.10", "recipient": "bob@gmail.com"}


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now


def decision(identity: Identity, state: State, action: Action, *, limit: int | None = None,
             until: datetime | None = None, rule: str | None = "complaint_rate",
             reason: str = "3 complaints on 200 messages in 24 h (1.5 %, limit 0.5 %).") -> Decision:
    return Decision(identity, state, action, rule, reason, limit, until, {}, T0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink() -> MemorySendSink:
    return MemorySendSink()


@pytest.fixture
def engine(clock: Clock, sink: MemorySendSink) -> PolicyEngine:
    customers = CustomerMap({ALICE: "acme"})
    return PolicyEngine(DecisionCache(), sink, PolicyConfig(support="support@provider.example"), customers,
                        clock)


def test_no_decision_allows_and_names_the_identities(engine: PolicyEngine) -> None:
    answer = engine.answer({**RCPT, "script": "/home/acme/www/form.php"})
    assert answer.action is Action.ALLOW
    assert answer.postfix_action == "DUNNO"
    assert answer.smtp_code is None
    assert set(answer.identities) == {
        ALICE, Identity(IdentityKind.SCRIPT, "/home/acme/www/form.php"),
        Identity(IdentityKind.CLIENT, "192.0.2.10"),
        Identity(IdentityKind.DOMAIN, "example.com"),  # case-insensitive, trailing dot dropped
        Identity(IdentityKind.CUSTOMER, "acme"),  # from the directory
    }


def test_customer_attribute_wins_and_unknown_client_is_no_identity(engine: PolicyEngine) -> None:
    answer = engine.answer({**RCPT, "customer": "beta", "client_address": "unknown", "sender": ""})
    assert set(answer.identities) == {ALICE, Identity(IdentityKind.CUSTOMER, "beta")}


def test_paused_account_is_deferred_with_what_to_do(engine: PolicyEngine, clock: Clock) -> None:
    engine.decisions.update(decision(ALICE, State.PAUSED, Action.DEFER, until=T0 + timedelta(hours=1)))
    answer = engine.answer(RCPT)
    assert answer.action is Action.DEFER
    assert (answer.smtp_code, answer.status) == (450, "4.7.1")
    assert answer.rule == "complaint_rate"
    assert answer.retry_after == 3600
    assert answer.postfix_action.startswith("DEFER_IF_PERMIT 4.7.1 Your account alice@example.com is paused "
                                            "because 3 complaints on 200 messages")
    assert "Reset your password" in answer.smtp_text
    assert "support@provider.example" in answer.smtp_text


def test_paused_customer_gets_the_customer_text(engine: PolicyEngine) -> None:
    engine.decisions.update(decision(Identity(IdentityKind.CUSTOMER, "acme"), State.PAUSED, Action.DEFER))
    answer = engine.answer(RCPT)
    assert answer.smtp_text.startswith("Your account is paused because")


@pytest.mark.parametrize(("action", "state", "line"), [
    (Action.HOLD, State.HELD, "HOLD Message held for review because"),
    (Action.REJECT, State.BLOCKED, "REJECT 5.7.1 Sending from domain example.com is blocked because"),
])
def test_most_severe_decision_wins(engine: PolicyEngine, action: Action, state: State, line: str) -> None:
    engine.decisions.update(decision(ALICE, State.THROTTLED, Action.THROTTLE, limit=100))
    engine.decisions.update(decision(Identity(IdentityKind.DOMAIN, "example.com"), state, action))
    answer = engine.answer(RCPT)
    assert answer.action is action
    assert answer.postfix_action.startswith(line)


def test_expired_decision_no_longer_applies(engine: PolicyEngine, clock: Clock) -> None:
    engine.decisions.update(decision(ALICE, State.PAUSED, Action.DEFER, until=T0 + timedelta(minutes=5)))
    assert engine.answer(RCPT).action is Action.DEFER
    clock.now += 301
    assert engine.answer(RCPT).action is Action.ALLOW


def test_resume_removes_the_decision(engine: PolicyEngine) -> None:
    engine.decisions.replace_all([decision(ALICE, State.PAUSED, Action.DEFER)])
    assert engine.answer(RCPT).action is Action.DEFER
    engine.decisions.remove(ALICE)
    assert engine.answer(RCPT).action is Action.ALLOW


def test_throttle_allows_up_to_the_limit_per_hour(engine: PolicyEngine, clock: Clock) -> None:
    engine.decisions.update(decision(ALICE, State.THROTTLED, Action.THROTTLE, limit=3, rule="volume_burst"))
    actions = []
    for n in range(4):
        actions.append(engine.answer({**RCPT, "instance": f"m{n}"}).action)
        clock.now += 60
    assert actions == [Action.THROTTLE, Action.THROTTLE, Action.THROTTLE, Action.DEFER]
    over = engine.answer({**RCPT, "instance": "m9"})
    assert over.postfix_action.startswith("DEFER_IF_PERMIT 4.7.1 Too many messages from account "
                                          "alice@example.com: 3 an hour")
    assert over.rule == "volume_burst"
    # The first send (at T0) leaves the one-hour window when minute 60 starts: T0 + 3600 s.
    assert over.retry_after == int(T0.timestamp() + 3600 - clock.now)
    # Another recipient of a message already let through is not a new send.
    assert engine.answer({**RCPT, "instance": "m0"}).action is Action.THROTTLE
    clock.now = T0.timestamp() + 3600
    assert engine.answer({**RCPT, "instance": "m10"}).action is Action.THROTTLE


def test_rcpt_lookups_count_one_message_per_instance(engine: PolicyEngine, sink: MemorySendSink) -> None:
    for recipient in ("a@gmail.com", "b@gmail.com", "c@yahoo.com"):
        engine.answer({**RCPT, "recipient": recipient, "instance": "123.456.7"})
    engine.answer({**RCPT, "protocol_state": "END-OF-MESSAGE", "recipient_count": "3",
                   "instance": "123.456.7"})
    assert sink.totals(ALICE) == (1, 3)
    sends = sink.drain()
    assert [(s.messages, s.recipients, s.addresses) for s in sends] == [
        (1, 1, ("a@gmail.com",)), (0, 1, ("b@gmail.com",)), (0, 1, ("c@yahoo.com",))]
    assert sends[0].at == T0
    assert sink.drain() == []


def test_end_of_message_counts_recipient_count(engine: PolicyEngine, sink: MemorySendSink) -> None:
    engine.answer({**RCPT, "protocol_state": "DATA", "recipient_count": "5", "instance": "x1"})
    engine.answer({**RCPT, "protocol_state": "END-OF-MESSAGE", "recipient_count": "5", "instance": "x1"})
    engine.answer({**RCPT, "protocol_state": "END-OF-MESSAGE", "recipient_count": "2", "instance": "x2"})
    assert sink.totals(ALICE) == (2, 7)


@pytest.mark.parametrize(("extra", "messages"), [
    ({"protocol_state": "CONNECT"}, 0),
    ({"protocol_state": "MAIL"}, 0),
    ({"protocol_state": "RCPT"}, 2),  # no instance: each lookup is a message
    ({"protocol_state": ""}, 2),  # HTTP / Exim without a state: one message per lookup
])
def test_what_counts(engine: PolicyEngine, sink: MemorySendSink, extra: dict[str, str],
                     messages: int) -> None:
    engine.answer({**RCPT, **extra})
    engine.answer({**RCPT, **extra})
    assert sink.totals(ALICE)[0] == messages


def test_deferred_attempts_are_not_sends(engine: PolicyEngine, sink: MemorySendSink) -> None:
    engine.decisions.update(decision(ALICE, State.PAUSED, Action.DEFER))
    engine.answer({**RCPT, "instance": "1"})
    assert sink.drain() == []


class Exploding(DecisionCache):
    def applicable(self, keys: Iterable[Key], now: float) -> list[tuple[int, Decision]]:
        raise RuntimeError("store does not answer")


@pytest.mark.parametrize(("fail_open", "line"), [
    (Action.ALLOW, "DUNNO"),
    (Action.DEFER, "DEFER_IF_PERMIT 4.3.0 Policy service temporarily unavailable, try again later"),
])
def test_fail_open(sink: MemorySendSink, fail_open: Action, line: str,
                   caplog: pytest.LogCaptureFixture) -> None:
    engine = PolicyEngine(Exploding(), sink, PolicyConfig(fail_open=fail_open))
    answers = [engine.answer(RCPT) for _ in range(3)]
    assert all(a.failed_open and a.postfix_action == line for a in answers)
    assert engine.metrics()["failed_open"] == 3
    # Logged, but not once per lookup (10,000 lookups a second would flood the log).
    assert len([r for r in caplog.records if "fail-open" in r.getMessage()]) == 1


class BrokenSink:
    def record(self, send: Send) -> None:
        raise OSError("disk full")


def test_a_failing_sink_does_not_change_the_answer() -> None:
    engine = PolicyEngine(DecisionCache(), BrokenSink())
    assert engine.answer(RCPT).postfix_action == "DUNNO"
    assert engine.metrics()["sink_errors"] == 1
    assert engine.metrics()["failed_open"] == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"texts": {**DEFAULT_TEXTS, "paused": "Paused {nope}"}}, "uses a field that does not exist"),
    ({"texts": {**DEFAULT_TEXTS, "paused": "Paused {"}}, "stray brace"),
    ({"texts": {**DEFAULT_TEXTS, "sleepy": "x"}}, "is not one of"),
    ({"texts": {**DEFAULT_TEXTS, "paused.robot": "x"}}, "is not one of"),
    ({"texts": {"paused": "x"}}, "are missing"),
    ({"fail_open": Action.REJECT}, "must be 'allow' or 'defer'"),
])
def test_config_is_checked(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PolicyConfig(**kwargs)


def test_texts_are_one_ascii_line() -> None:
    config = PolicyConfig(texts={**DEFAULT_TEXTS, "blocked": "Blocked: {reason}"})
    engine = PolicyEngine(DecisionCache([decision(ALICE, State.BLOCKED, Action.REJECT,
                                                  reason="rate ≥ 5 %\nsee “evidence” café")]),
                          MemorySendSink(), config)
    assert engine.answer(RCPT).smtp_text == 'Blocked: rate >= 5 % see "evidence" cafe'


def test_hour_window_slides_by_the_minute() -> None:
    window = HourWindow()
    start = T0.timestamp()
    window.add(start)
    window.add(start + 1800, 2)
    assert window.total(start + 3599) == 3
    assert window.total(start + 3600) == 2
    assert window.seconds_until_below(3, start + 1900) == 3600 - 1900
    assert window.total(start + 1800 + 3600) == 0
    assert window.idle(start + 1800 + 3600)


def test_instance_log_is_bounded() -> None:
    log = InstanceLog(max_size=2)
    for instance in ("a", "b", "a", "c"):
        log.add(instance)
    assert len(log) == 2
    assert "a" in log and "c" in log and "b" not in log
