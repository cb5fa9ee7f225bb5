"""Admin corrections: overrides (standing instructions) and verdicts (judgements of a decision).

Pure values; storage and the API keep and serve them, ``reputation.ladder.evaluate`` applies them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from reputation.model import Identity

__all__ = ["Override", "OverrideKind", "RulePrecision", "Verdict", "VerdictKind", "rule_precision"]


class OverrideKind(StrEnum):
    """What an admin tells reputation about one identity."""

    ALLOW = "allow"  # allowed whatever the rules say (until it expires)
    BLOCK = "block"  # rejected whatever the rules say
    LIMIT = "limit"  # throttled to limit_per_hour (does not lift a pause: use resume or allow)
    RESUME = "resume"  # one-shot: end the pause/hold/block in force now and start probation


@dataclass(frozen=True)
class Override:
    """An admin's instruction for ``identity`` from ``created_at`` until ``expires_at`` (None: open)."""

    identity: Identity
    kind: OverrideKind
    author: str
    reason: str
    created_at: datetime
    expires_at: datetime | None = None
    limit_per_hour: int | None = None

    def __post_init__(self) -> None:
        if (self.kind is OverrideKind.LIMIT) != (self.limit_per_hour is not None):
            raise ValueError("a limit override, and only a limit override, has a limit_per_hour")
        if self.limit_per_hour is not None and self.limit_per_hour < 0:
            raise ValueError(f"limit_per_hour must be 0 or more, got {self.limit_per_hour}")
        if self.expires_at is not None and self.expires_at <= self.created_at:
            raise ValueError("an override must expire after it was created")

    def active(self, now: datetime) -> bool:
        """True from ``created_at`` until ``expires_at``."""
        return self.created_at <= now and (self.expires_at is None or now < self.expires_at)


class VerdictKind(StrEnum):
    """An admin's judgement of a decision (DESIGN.md, "verdict")."""

    FALSE_POSITIVE = "false_positive"
    CONFIRMED = "confirmed"


@dataclass(frozen=True)
class Verdict:
    """``author`` judged the decision of ``rule`` against ``identity`` (decided at ``decision_at``)."""

    identity: Identity
    rule: str
    kind: VerdictKind
    author: str
    reason: str
    at: datetime
    decision_at: datetime | None = None


@dataclass(frozen=True)
class RulePrecision:
    """How often admins agreed with a rule: ``precision`` is None before any verdict."""

    rule: str
    confirmed: int
    false_positives: int

    @property
    def precision(self) -> float | None:
        """confirmed / (confirmed + false positives)."""
        judged = self.confirmed + self.false_positives
        return self.confirmed / judged if judged else None


def rule_precision(verdicts: Iterable[Verdict]) -> dict[str, RulePrecision]:
    """Per rule, the confirmed and false-positive verdicts (for the weekly report)."""
    tally: dict[str, list[int]] = {}
    for verdict in verdicts:
        counts = tally.setdefault(verdict.rule, [0, 0])
        counts[0 if verdict.kind is VerdictKind.CONFIRMED else 1] += 1
    return {rule: RulePrecision(rule, c, f) for rule, (c, f) in sorted(tally.items())}
