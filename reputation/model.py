"""The values reputation shares with its callers (the policy service, storage, the API).

Plain, frozen values and closed vocabularies (STYLE.md habit 3): identity kinds, states, actions,
the Decision an evaluation returns, and the bounce signal groups of shared/reasons.md. The policy
service (``policy/``) codes against this module; nothing here knows about time sources, storage or
the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "ACTION_OF_STATE",
    "SIGNAL_GROUPS",
    "Action",
    "Decision",
    "Identity",
    "IdentityKind",
    "SignalGroup",
    "State",
    "action_for",
]


class IdentityKind(StrEnum):
    """The kinds of identity of DESIGN.md ("Vocabulary"); same values as attribution's."""

    ACCOUNT = "account"  # the SMTP AUTH user
    SCRIPT = "script"  # the program on our hosting that handed the message over
    CUSTOMER = "customer"  # the provider's customer
    DOMAIN = "domain"  # the sending domain
    CLIENT = "client"  # the host that submitted the message to our MTA
    IP = "ip"  # the provider's outbound IP, the asset whose reputation we protect


class State(StrEnum):
    """The ladder, least severe first: the order is the severity (see ``State.rank``)."""

    OK = "ok"
    WATCH = "watch"
    THROTTLED = "throttled"
    PAUSED = "paused"
    HELD = "held"
    BLOCKED = "blocked"

    @property
    def rank(self) -> int:
        """Severity: 0 for ok up to 5 for blocked; compare states with it, not by name."""
        return _RANK[self]


_RANK = {state: rank for rank, state in enumerate(State)}


class Action(StrEnum):
    """What the MTA is told (the policy service maps these to Postfix / Exim / HTTP answers)."""

    ALLOW = "allow"
    THROTTLE = "throttle"  # allow up to Decision.limit_per_hour sends an hour, then defer
    DEFER = "defer"
    HOLD = "hold"
    REJECT = "reject"


ACTION_OF_STATE: Mapping[State, Action] = {
    State.OK: Action.ALLOW,
    State.WATCH: Action.ALLOW,
    State.THROTTLED: Action.THROTTLE,
    State.PAUSED: Action.DEFER,
    State.HELD: Action.HOLD,
    State.BLOCKED: Action.REJECT,
}


def action_for(state: State) -> Action:
    """The action the MTA is told for ``state`` (ok/watch allow, throttled throttles, ...)."""
    return ACTION_OF_STATE[state]


class SignalGroup(StrEnum):
    """The bounce signal groups of shared/reasons.md that reputation counts.

    Same values as ``bounces.model.SignalGroup`` (reputation does not import bounces: callers pass
    ``Reason.group.value``). ``complaint`` and ``none`` are not bounce groups and are not counted.
    """

    LIST_QUALITY = "list_quality"
    BLOCK = "block"
    RATE = "rate"
    CONFIGURATION = "configuration"
    TRANSIENT = "transient"
    UNKNOWN = "unknown"


SIGNAL_GROUPS: tuple[SignalGroup, ...] = tuple(SignalGroup)


@dataclass(frozen=True, slots=True)  # slots: a million of them are dictionary keys in CounterStore
class Identity:
    """Who sends: ``(kind, value)``, e.g. ``Identity(IdentityKind.ACCOUNT, "alice@example.com")``."""

    kind: IdentityKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind.value} {self.value}"


@dataclass(frozen=True)
class Decision:
    """What reputation decided for one identity, and why.

    ``rule`` is the rule that put it there (None for ok or an admin override); ``reason`` is one
    sentence for people naming the rule, window and numbers; ``limit_per_hour`` is set for a
    throttled identity or a limit override; ``until`` is the cool-down end or override expiry (UTC,
    None = open-ended). ``evidence`` holds the numbers behind it (JSON-friendly); callers add their
    own samples with ``with_evidence``. ``evidence["ladder"]`` carries what the next evaluation
    needs to know (see ``reputation.ladder.History.from_decision``).
    """

    identity: Identity
    state: State
    action: Action
    rule: str | None
    reason: str
    limit_per_hour: int | None
    until: datetime | None
    evidence: Mapping[str, object]
    decided_at: datetime

    def with_evidence(self, **extra: object) -> Decision:
        """A copy whose evidence also holds ``extra`` (top recipient domains, subjects, samples...)."""
        return Decision(self.identity, self.state, self.action, self.rule, self.reason,
                        self.limit_per_hour, self.until, {**self.evidence, **extra}, self.decided_at)
