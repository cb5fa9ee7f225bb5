"""The ladder over synthetic event streams: time is passed in, the MTA's side is simulated.

A ``Sim`` plays the policy service for one identity: a message is counted only when the decision in
force lets it through (allow, or throttle under its hourly limit), and the identity is re-evaluated
after every minute that saw events and whenever a cool-down ends (what the scheduler does). Expected
states come from the numbers of config/rules.toml and the stream, not from running the code.
"""

from __future__ import annotations

import json
import random
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reputation import (
    Action,
    BucketDelta,
    CounterStore,
    Decision,
    History,
    Identity,
    IdentityKind,
    Override,
    OverrideKind,
    RuleSet,
    State,
    Verdict,
    VerdictKind,
    evaluate,
    load_rules,
    rule_precision,
)

SHIPPED: dict[str, Any] = tomllib.loads(
    (Path(__file__).resolve().parent.parent / "config" / "rules.toml").read_text(encoding="utf-8"))
RULES = load_rules(SHIPPED)
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
MIN, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
FREEMAIL = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com")
BUSINESS = ("example.org", "example.com", "acme.example", "shop.example", "bank.example", "city.example")

Event = tuple[datetime, str, object]  # (at, "send" | "bounce" | "complaint", payload)


@dataclass
class Sim:
    identity: Identity
    rules: RuleSet = RULES
    tier: str | None = None
    overrides: list[Override] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    last: Decision | None = None
    log: list[Decision] = field(default_factory=list)
    accepted: int = 0
    _hour: tuple[int, int] = (0, 0)
    store: CounterStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = CounterStore(self.rules.freemail_domains)

    def decide(self, now: datetime) -> Decision:
        decision = evaluate(self.identity, self.store, now, History.from_decision(self.last), self.overrides,
                            self.verdicts, rules=self.rules, tier=self.tier)
        self.last = decision
        self.log.append(decision)
        return decision

    def offer(self, recipients: Sequence[str], at: datetime) -> bool:
        """The MTA asks; a deferred, held or rejected message is not sent and not counted."""
        action = self.last.action if self.last is not None else Action.ALLOW
        if action is Action.THROTTLE:
            hour = int(at.timestamp()) // 3600
            used = self._hour[1] if self._hour[0] == hour else 0
            assert self.last is not None and self.last.limit_per_hour is not None
            if used >= self.last.limit_per_hour:
                return False
            self._hour = (hour, used + 1)
        elif action is not Action.ALLOW:
            return False
        self.store.record_send(self.identity, recipients, at)
        self.accepted += 1
        return True

    def run(self, events: Iterable[Event]) -> list[Decision]:
        """Play ``events`` in time order; returns the decisions made meanwhile."""
        start = len(self.log)
        minute: datetime | None = None
        for at, kind, payload in sorted(events, key=lambda e: e[0]):
            if self.last is None:
                self.decide(at)  # a first lookup finds no decision: evaluate before answering
            this_minute = at.replace(second=0, microsecond=0)
            if minute is not None and this_minute != minute:
                self.decide(minute + timedelta(seconds=59))
            while self.last is not None and self.last.until is not None and self.last.until <= at \
                    and self.last.state in (State.PAUSED, State.HELD):
                self.decide(self.last.until)  # the scheduler expires cool-downs
            minute = this_minute
            if kind == "send":
                self.offer(payload, at)  # type: ignore[arg-type]
            elif kind == "bounce":
                assert isinstance(payload, tuple)
                self.store.record_bounce(self.identity, str(payload[0]), bool(payload[1]), at)
            else:
                self.store.record_complaint(self.identity, at)
        if minute is not None:
            self.decide(minute + timedelta(seconds=59))
        return self.log[start:]

    def first(self, state: State) -> Decision | None:
        return next((d for d in self.log if d.state is state), None)


def sends(start: datetime, minutes: int, per_minute: int, recipients: int, domains: Sequence[str],
          seed: int = 1) -> list[Event]:
    """``per_minute`` messages a minute, each to ``recipients`` new addresses at ``domains``."""
    rng = random.Random(seed)
    events: list[Event] = []
    for m in range(minutes):
        for i in range(per_minute):
            at = start + m * MIN + timedelta(seconds=60 * i / per_minute)
            events.append((at, "send", [f"p{rng.getrandbits(40):x}@{rng.choice(domains)}"
                                        for _ in range(recipients)]))
    return events


def flood(start: datetime, minutes: int = 30) -> list[Event]:
    """A compromised account: 25 messages a minute, 4 freemail recipients each."""
    return sends(start, minutes, 25, 4, FREEMAIL, seed=int(start.timestamp()))


def quiet_history(sim: Sim, end: datetime, per_hour: int = 3) -> None:
    """A week of ordinary business mail before ``end``: a few messages in working hours."""
    deltas = [BucketDelta(sim.identity, end - timedelta(hours=h), 3600,
                          {"sends": per_hour, "recipients": per_hour + 1})
              for h in range(1, 168) if 8 <= (end - timedelta(hours=h)).hour < 18]
    sim.store.merge(deltas)


ALICE = Identity(IdentityKind.ACCOUNT, "alice@customer.example")


def test_compromised_account_flooding_freemail_is_paused_within_minutes() -> None:
    sim = Sim(ALICE)
    quiet_history(sim, T0)
    sim.run(flood(T0))
    paused = sim.first(State.PAUSED)
    assert paused is not None and paused.decided_at - T0 <= 5 * MIN
    assert paused.action is Action.DEFER and paused.until == paused.decided_at + HOUR
    assert paused.rule in {"freemail-flood", "distinct-recipients-burst"}
    assert paused.rule in paused.reason and "over 10m" in paused.reason
    top = paused.evidence["top_recipient_domains"]
    assert isinstance(top, list) and sorted(d for d, _ in top) == sorted(FREEMAIL)
    assert sim.accepted <= 5 * 25  # what got out before the pause
    json.dumps(paused.evidence)  # evidence is JSON-friendly as it is


def newsletter(week_start: datetime, seed: int) -> list[Event]:
    """Monday 10:00: 12,000 single-recipient messages over two hours, 55 % freemail; 0.8 % hard
    (list-quality) bounces and 0.05 % block bounces within the hour after, 0.05 % complaints."""
    rng = random.Random(seed)
    start = week_start.replace(hour=10)
    events: list[Event] = []
    for i in range(12_000):
        domain = rng.choice(FREEMAIL) if rng.random() < 0.55 else rng.choice(BUSINESS)
        events.append((start + timedelta(seconds=0.6 * i), "send", [f"reader{i}@{domain}"]))
    for i in range(96):
        events.append((start + timedelta(minutes=10 + i * 1.5), "bounce", ("list_quality", True)))
    for i in range(6):
        events.append((start + timedelta(minutes=20 + i * 20), "bounce", ("block", False)))
        events.append((start + timedelta(hours=3 + i * 3), "complaint", None))
    return events


def newsletter_history(sim: Sim) -> None:
    """Last week's issue, loaded from the database as hour buckets."""
    sim.store.merge([BucketDelta(sim.identity, T0.replace(hour=10) - 7 * DAY + h * HOUR, 3600,
                                 {"sends": 6000, "recipients": 6000, "freemail_recipients": 3300,
                                  "hard_list_quality": 48}) for h in range(2)])


def test_newsletter_customer_sending_its_weekly_volume_stays_ok() -> None:
    sim = Sim(Identity(IdentityKind.CUSTOMER, "newsletter-gmbh"), tier="trusted")
    newsletter_history(sim)
    decisions = sim.run(newsletter(T0, seed=7))
    assert decisions and {d.state for d in decisions} == {State.OK}
    assert sim.accepted == 12_000


def test_the_same_newsletter_without_the_trusted_tier_is_stopped() -> None:
    sim = Sim(Identity(IdentityKind.ACCOUNT, "newsletter@customer.example"))
    newsletter_history(sim)
    sim.run(newsletter(T0, seed=7))
    paused = sim.first(State.PAUSED)
    assert paused is not None and paused.rule == "distinct-recipients-burst"  # 1,000 distinct in 10 min


def test_one_complaint_on_three_messages_stays_ok() -> None:
    sim = Sim(Identity(IdentityKind.ACCOUNT, "small@customer.example"))
    events = [*sends(T0, 3, 1, 1, BUSINESS), (T0 + 2 * HOUR, "complaint", None)]
    decisions = sim.run(events)
    assert decisions and {d.state for d in decisions} == {State.OK}
    assert decisions[-1].evidence["fired"] == []  # the 33 % rate is below every min_volume guard


def announcement(start: datetime) -> list[Event]:
    """A legitimate mailing to 400 clients (30 % freemail) in 10 minutes."""
    rng = random.Random(3)
    return [(start + timedelta(seconds=1.5 * i), "send",
             [f"client{i}@{rng.choice(FREEMAIL) if rng.random() < 0.3 else rng.choice(BUSINESS)}"])
            for i in range(400)]


def test_false_positive_verdict_then_the_same_traffic_is_not_paused_again() -> None:
    sim = Sim(Identity(IdentityKind.ACCOUNT, "shop@customer.example"))
    quiet_history(sim, T0, per_hour=60)
    sim.run(announcement(T0))
    paused = sim.first(State.PAUSED)
    assert paused is not None and paused.rule == "distinct-recipients-burst"
    sim.verdicts.append(Verdict(sim.identity, "distinct-recipients-burst", VerdictKind.FALSE_POSITIVE,
                                "admin", "a client announcement", T0 + 30 * MIN, paused.decided_at))
    assert sim.decide(T0 + 30 * MIN).state is State.OK  # the false positive lifts the pause at once
    first_day = sim.accepted
    sim.run(announcement(T0 + DAY))
    assert all(d.state is State.OK for d in sim.log[-10:])
    assert sim.accepted == first_day + 400  # the whole second mailing left
    assert rule_precision(sim.verdicts)["distinct-recipients-burst"].precision == 0.0


def test_without_the_verdict_the_same_traffic_is_paused_again_for_longer() -> None:
    sim = Sim(Identity(IdentityKind.ACCOUNT, "shop@customer.example"))
    quiet_history(sim, T0, per_hour=60)
    sim.run(announcement(T0))
    sim.run(announcement(T0 + DAY))
    pauses = [d for d in sim.log if d.state is State.PAUSED and d.evidence["ladder"]["since"]  # type: ignore[index]
              == d.decided_at.isoformat()]
    assert [p.until - p.decided_at for p in pauses if p.until] == [HOUR, 4 * HOUR]


def test_cool_down_resumes_on_probation_and_escalates_on_repeat() -> None:
    sim = Sim(ALICE)
    quiet_history(sim, T0)
    sim.run(flood(T0, minutes=60 * 8))  # the spammer keeps trying for 8 hours
    starts = [d for d in sim.log if d.state is State.PAUSED and d.until is not None
              and d.until - d.decided_at in (HOUR, 4 * HOUR, DAY)]
    cooldowns = [d.until - d.decided_at for d in starts if d.until is not None]
    assert cooldowns[:2] == [HOUR, 4 * HOUR]
    resumed = [d for d in sim.log if d.state is State.WATCH]
    assert resumed and resumed[0].decided_at == starts[0].until and resumed[0].action is Action.ALLOW
    assert "probation" in resumed[0].reason  # judged on what it does from now, at half the thresholds
    assert sim.last is not None and sim.last.state is State.PAUSED  # still flooding after 8 hours


def test_a_confirmed_verdict_lengthens_the_next_cool_down() -> None:
    sim = Sim(ALICE)
    quiet_history(sim, T0)
    sim.run(flood(T0, minutes=10))
    first = sim.first(State.PAUSED)
    assert first is not None and first.rule is not None
    sim.verdicts.append(Verdict(ALICE, first.rule, VerdictKind.CONFIRMED, "admin", "spam run", T0 + 20 * MIN))
    sim.run(flood(T0 + 2 * HOUR, minutes=10))
    again = sim.log[-1]
    assert again.state is State.PAUSED and again.until is not None
    started = History.from_decision(again).last_strike
    assert started is not None and again.until - started == DAY  # 1 h, 4 h, 24 h: one strike + the verdict
    assert rule_precision(sim.verdicts)[first.rule].precision == 1.0


SMALL = load_rules({"ladder": {"release_fraction": 0.5}, "rule": [
    {"name": "blocks", "metric": "block_bounces", "window": "1h", "threshold": 10, "state": "throttled",
     "limit_per_hour": 50},
    {"name": "dictionary-attack", "metric": "list_quality_bounces", "window": "10m", "threshold": 50,
     "state": "blocked"},
]})


def bounces(at: datetime, n: int, group: str = "block") -> list[Event]:
    return [(at + timedelta(seconds=i), "bounce", (group, group == "list_quality")) for i in range(n)]


def test_hysteresis_leaves_a_state_only_well_below_its_threshold() -> None:
    sim = Sim(ALICE, rules=SMALL)
    sim.run(bounces(T0, 6))
    assert sim.decide(T0 + MIN).state is State.OK  # 6 block bounces in the hour: below 10
    sim.run(bounces(T0 + 30 * MIN, 6))
    throttled = sim.decide(T0 + 31 * MIN)  # 12: throttled
    assert (throttled.state, throttled.limit_per_hour, throttled.rule) == (State.THROTTLED, 50, "blocks")
    kept = sim.decide(T0 + 61 * MIN)  # the first 6 left the window; 6 is not below 10 x 0.5
    assert kept.state is State.THROTTLED and "still 6" in kept.reason and "not yet below 5" in kept.reason
    assert sim.decide(T0 + 91 * MIN).state is State.OK  # 0 left
    fresh = Sim(Identity(IdentityKind.ACCOUNT, "other"), rules=SMALL)
    fresh.run(bounces(T0 + 30 * MIN, 6))
    assert fresh.decide(T0 + 61 * MIN).state is State.OK  # the same 6 do not put anyone there


TWO_LEVELS = load_rules({"rule": [
    {"name": "blocks", "metric": "block_bounces", "window": "1h", "threshold": 10, "state": "throttled",
     "limit_per_hour": 50},
    {"name": "blocks-pause", "metric": "block_bounces", "window": "1h", "threshold": 20, "state": "paused"},
]})


def test_a_false_positive_is_not_stopped_again_by_another_rule_on_the_same_bounces() -> None:
    sim = Sim(ALICE, rules=TWO_LEVELS)
    sim.run(bounces(T0, 25))  # an outage at one receiver: 25 block bounces in a minute
    assert sim.last is not None and (sim.last.state, sim.last.rule) == (State.PAUSED, "blocks-pause")
    sim.verdicts.append(Verdict(ALICE, "blocks-pause", VerdictKind.FALSE_POSITIVE, "admin", "receiver outage",
                                T0 + 5 * MIN, sim.last.decided_at))
    # The 25 bounces are above "blocks" (10) too, but they are what the admin judged: not counted again.
    assert sim.decide(T0 + 6 * MIN).state is State.OK
    assert sim.decide(T0 + 20 * MIN).state is State.OK
    sim.run(bounces(T0 + 30 * MIN, 12))  # new bounces after the verdict count as usual
    assert sim.last is not None and (sim.last.state, sim.last.rule) == (State.THROTTLED, "blocks")


def test_blocked_by_a_rule_lasts_until_an_admin_resumes() -> None:
    sim = Sim(ALICE, rules=SMALL)
    sim.run(bounces(T0, 60, "list_quality"))
    assert sim.last is not None and (sim.last.state, sim.last.action) == (State.BLOCKED, Action.REJECT)
    assert sim.decide(T0 + 3 * DAY).state is State.BLOCKED and sim.last.until is None
    sim.overrides.append(Override(ALICE, OverrideKind.RESUME, "admin", "password reset", T0 + 3 * DAY))
    resumed = sim.decide(T0 + 3 * DAY + MIN)
    assert (resumed.state, resumed.action) == (State.WATCH, Action.ALLOW) and "resumed" in resumed.reason


def flooded(overrides: list[Override], minutes: int = 30) -> Sim:
    sim = Sim(ALICE, overrides=overrides)
    quiet_history(sim, T0)
    sim.run(flood(T0, minutes))
    return sim


def override(kind: OverrideKind, at: datetime = T0 - HOUR, expires: datetime | None = None,
             limit: int | None = None) -> Override:
    return Override(ALICE, kind, "admin", "ticket 42", at, expires, limit)


def test_allow_beats_the_rules_and_keeps_reporting_them() -> None:
    sim = flooded([override(OverrideKind.ALLOW, expires=T0 + DAY)])
    assert {(d.state, d.action, d.rule) for d in sim.log} == {(State.OK, Action.ALLOW, None)}
    last = sim.log[-1]
    assert last.reason == "allowed by admin until 2026-11-03 09:00 UTC: ticket 42"
    assert last.until == T0 + DAY and last.evidence["fired"]  # the rules still say what they see
    assert sim.accepted == 30 * 25


def test_an_expired_allow_lets_the_rules_act_again() -> None:
    sim = flooded([override(OverrideKind.ALLOW, expires=T0 + 10 * MIN)])
    paused = sim.first(State.PAUSED)
    assert paused is not None and T0 + 10 * MIN <= paused.decided_at <= T0 + 11 * MIN


def test_block_rejects_until_it_expires() -> None:
    sim = Sim(ALICE, overrides=[override(OverrideKind.BLOCK, expires=T0 + HOUR)])
    sim.run(sends(T0, 2, 1, 1, BUSINESS))
    first = sim.log[0]
    assert (first.state, first.action, first.until) == (State.BLOCKED, Action.REJECT, T0 + HOUR)
    assert sim.accepted == 0
    assert sim.decide(T0 + HOUR).state is State.OK


def test_limit_throttles_but_does_not_lift_a_pause() -> None:
    quiet = Sim(ALICE, overrides=[override(OverrideKind.LIMIT, limit=20)])
    quiet.run(flood(T0, 60))
    assert {(d.state, d.limit_per_hour) for d in quiet.log} == {(State.THROTTLED, 20)}
    assert quiet.accepted == 20
    sim = flooded([override(OverrideKind.LIMIT, at=T0 + 5 * MIN, limit=20)])
    assert sim.log[-1].state is State.PAUSED  # a limit is a ceiling, not a pardon


def test_resume_now_ends_a_pause_and_judges_only_what_follows() -> None:
    sim = flooded([], minutes=5)
    assert sim.last is not None and sim.last.state is State.PAUSED
    sim.overrides.append(override(OverrideKind.RESUME, at=T0 + 10 * MIN))
    resumed = sim.decide(T0 + 10 * MIN)
    assert (resumed.state, resumed.action, resumed.evidence["fired"]) == (State.WATCH, Action.ALLOW, [])
    assert sim.decide(T0 + 2 * HOUR).state is State.WATCH  # on probation for 24 h
    assert sim.decide(T0 + 10 * MIN + DAY).state is State.OK
    # The resume applied once: a later pause is not lifted by it.
    sim.run(flood(T0 + 2 * DAY, 5))
    assert sim.last is not None and sim.last.state is State.PAUSED


def test_history_round_trips_through_a_stored_decision() -> None:
    sim = flooded([], minutes=5)
    assert sim.last is not None
    stored = json.loads(json.dumps(sim.last.evidence))
    history = History.from_decision(Decision(**{**sim.last.__dict__, "evidence": stored}))
    assert history == History.from_decision(sim.last)
    assert (history.state, history.strikes, history.until) == (State.PAUSED, 1, sim.last.until)
    assert History.from_decision(None) == History()


def test_held_holds_for_a_cool_down_like_a_pause() -> None:
    rules = load_rules({"rule": [{"name": "spam-blocks", "metric": "block_bounces", "window": "1h",
                                  "threshold": 5, "state": "held"}]})
    sim = Sim(ALICE, rules=rules)
    sim.run(bounces(T0, 5))
    held = sim.log[-1]
    assert (held.state, held.action, held.until) == (State.HELD, Action.HOLD, held.decided_at + HOUR)
    assert sim.decide(held.decided_at + HOUR).state is State.WATCH  # resumed on probation


def test_rules_apply_to_their_kinds_and_tiers_only() -> None:
    ip = Sim(Identity(IdentityKind.IP, "192.0.2.25"))
    ip.run(flood(T0, 10))
    assert {d.state for d in ip.log} == {State.OK}  # no flood rule applies to the shared outbound IP
    unknown_tier = Sim(ALICE, tier="platinum")
    quiet_history(unknown_tier, T0)
    unknown_tier.run(flood(T0, 10))
    assert unknown_tier.first(State.PAUSED) is not None  # an unknown tier gets the plain rules
