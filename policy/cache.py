"""The in-memory state the hot path reads: decisions, the customer directory, throttle windows.

Everything here is O(1) per lookup and never touches the database: a refresher (a thread or a
periodic job, written with the storage side) loads decisions and the customer directory every
second and swaps them in with ``replace_all``. A swap is one reference assignment, so a lookup
running in the asyncio thread sees either the old table or the new one, never half of each.

Keys are ``(kind, value)`` tuples of plain strings: an ``Identity`` (a dataclass over a StrEnum)
hashes in Python code, a tuple of str in C, and the hot path hashes several per lookup.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from reputation.model import Action, Decision, Identity

__all__ = ["SEVERITY", "CustomerMap", "DecisionCache", "HourWindow", "InstanceLog", "Key", "key_of"]

Key = tuple[str, str]

# Most severe wins when several identities of one message have decisions (issue 4, section 3).
SEVERITY: Mapping[Action, int] = {Action.ALLOW: 0, Action.THROTTLE: 1, Action.DEFER: 2, Action.HOLD: 3,
                                  Action.REJECT: 4}


def key_of(identity: Identity) -> Key:
    """The cache key of ``identity``."""
    return (identity.kind.value, identity.value)


class DecisionCache:
    """Decisions by identity; ``applicable`` returns those that apply now, most severe first."""

    __slots__ = ("_entries",)

    def __init__(self, decisions: Iterable[Decision] = ()) -> None:
        # key -> (severity, until as epoch seconds or +inf, decision)
        self._entries: dict[Key, tuple[int, float, Decision]] = {}
        self.replace_all(decisions)

    @staticmethod
    def _entry(decision: Decision) -> tuple[int, float, Decision]:
        until = decision.until.timestamp() if decision.until is not None else math.inf
        return (SEVERITY[decision.action], until, decision)

    def replace_all(self, decisions: Iterable[Decision]) -> None:
        """Swap in a whole new table (the refresher's once-a-second load)."""
        self._entries = {key_of(d.identity): self._entry(d) for d in decisions}

    def update(self, decision: Decision) -> None:
        """Add or replace the decision of one identity."""
        self._entries[key_of(decision.identity)] = self._entry(decision)

    def remove(self, identity: Identity) -> None:
        """Forget the decision of ``identity`` (it resumed: no decision means allow)."""
        self._entries.pop(key_of(identity), None)

    def get(self, identity: Identity) -> Decision | None:
        """The decision stored for ``identity``, expired or not."""
        entry = self._entries.get(key_of(identity))
        return entry[2] if entry else None

    def __len__(self) -> int:
        return len(self._entries)

    def applicable(self, keys: Iterable[Key], now: float) -> list[tuple[int, Decision]]:
        """(severity, decision) for each of ``keys`` with a decision that has not expired.

        A decision whose ``until`` has passed no longer applies, even before the scheduler has
        written the next one: a paused sender resumes on time even if the refresher is late.
        """
        found: list[tuple[int, Decision]] = []
        entries = self._entries
        for key in keys:
            entry = entries.get(key)
            if entry is not None and entry[1] > now:
                found.append((entry[0], entry[2]))
        if len(found) > 1:
            found.sort(key=lambda pair: pair[0], reverse=True)
        return found


class CustomerMap:
    """Which customer an account, client or sending domain belongs to (the provider's directory)."""

    __slots__ = ("_customers",)

    def __init__(self, customers: Mapping[Identity, str] | None = None) -> None:
        self._customers: dict[Key, str] = {}
        self.replace_all(customers or {})

    def replace_all(self, customers: Mapping[Identity, str]) -> None:
        """Swap in a whole new directory."""
        self._customers = {key_of(identity): customer for identity, customer in customers.items()}

    def lookup(self, keys: Iterable[Key]) -> str | None:
        """The customer of the first of ``keys`` that has one."""
        customers = self._customers
        for key in keys:
            customer = customers.get(key)
            if customer:
                return customer
        return None


class HourWindow:
    """Sends in the last hour, in 60 one-minute buckets: a sliding window to the minute."""

    __slots__ = ("_counts", "_minutes")

    def __init__(self) -> None:
        self._counts = [0] * 60
        self._minutes = [-1] * 60

    def total(self, now: float) -> int:
        """Sends in the 60 minutes up to and including the current one."""
        oldest = int(now // 60) - 59
        return sum(c for c, m in zip(self._counts, self._minutes, strict=True) if m >= oldest)

    def add(self, now: float, count: int = 1) -> None:
        """Count ``count`` sends at ``now``."""
        minute = int(now // 60)
        slot = minute % 60
        if self._minutes[slot] != minute:
            self._minutes[slot] = minute
            self._counts[slot] = 0
        self._counts[slot] += count

    def seconds_until_below(self, limit: int, now: float) -> int:
        """Seconds until fewer than ``limit`` sends remain in the window (if nothing more is sent)."""
        current = int(now // 60)
        total = self.total(now)
        if total < limit:
            return 0
        for minute in range(current - 59, current + 1):
            slot = minute % 60
            if self._minutes[slot] == minute:
                total -= self._counts[slot]
                if total < limit:
                    # The bucket of ``minute`` leaves the window when minute + 60 starts.
                    return max(1, math.ceil((minute + 60) * 60 - now))
        return 3600

    def idle(self, now: float) -> bool:
        """True when nothing was counted in the last hour (the window can be dropped)."""
        return self.total(now) == 0


class InstanceLog:
    """The messages already counted, by Postfix ``instance``: a bounded LRU set.

    Postfix sends the same ``instance`` for every lookup of one message (SMTPD_POLICY_README,
    "instance" attribute), so the first RCPT of a message counts it and the others add recipients.
    """

    __slots__ = ("_max", "_seen")

    def __init__(self, max_size: int = 100_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._max = max_size

    def __contains__(self, instance: object) -> bool:
        return instance in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, instance: str) -> None:
        """Remember ``instance``, forgetting the least recently seen one beyond the bound."""
        seen = self._seen
        if instance in seen:
            seen.move_to_end(instance)
            return
        seen[instance] = None
        if len(seen) > self._max:
            seen.popitem(last=False)

