"""The stored side of reputation: shared counters, decisions, their history, overrides and verdicts.

Tables (one class each; migration 0002 creates them):

- ``counter_buckets`` (CounterBucket): per identity and bucket (start, 60 or 3600 seconds) the
  counter fields of ``reputation.FIELDS`` and the distinct-recipient sketch. Every policy node
  adds its in-memory deltas here about once a second (``storage.counters.apply_deltas``: an
  upsert that adds); the evaluation job reads them back.
- ``reputation_decisions`` (DecisionRow): the decision in force per identity (unique), what the
  policy nodes load into their cache; ``updated_at`` is indexed so that a node asks only for what
  changed since its last look.
- ``decision_history`` (DecisionHistory): every state an identity was put in (not ok), with its
  rule, reason, numbers and evidence, when it ended and how (``outcome``), and the admins'
  verdict on it: what the weekly report counts.
- ``reputation_overrides`` (OverrideRow): an admin's allow / block / limit / resume, with author,
  reason, expiry and revocation.
- ``reputation_verdicts`` (VerdictRow): false_positive / confirmed on a decision of the history.

Identities are stored as (``identity_kind``, ``identity_value``) columns, not as a key of
``identities``: the policy nodes see senders that no complaint ever named, and the hot path must
not create rows to count them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, IdentityKind
from storage.types import BigId, UTCDateTime, utcnow

__all__ = [
    "COUNTER_COLUMNS",
    "CounterBucket",
    "DecisionHistory",
    "DecisionOutcome",
    "DecisionRow",
    "OverrideRow",
    "StoredOverrideKind",
    "StoredState",
    "StoredVerdictKind",
    "VerdictRow",
]

# reputation.FIELDS, spelled out so that the schema does not move when the pure package changes
# (tests/test_reputation_store.py checks that they agree).
COUNTER_COLUMNS = (
    "sends", "recipients", "freemail_recipients",
    "hard_list_quality", "hard_block", "hard_rate", "hard_configuration", "hard_transient", "hard_unknown",
    "soft_list_quality", "soft_block", "soft_rate", "soft_configuration", "soft_transient", "soft_unknown",
    "complaints",
)


class StoredState(StrEnum):
    """reputation.State's values."""

    OK = "ok"
    WATCH = "watch"
    THROTTLED = "throttled"
    PAUSED = "paused"
    HELD = "held"
    BLOCKED = "blocked"


class StoredOverrideKind(StrEnum):
    """reputation.OverrideKind's values."""

    ALLOW = "allow"
    BLOCK = "block"
    LIMIT = "limit"
    RESUME = "resume"


class StoredVerdictKind(StrEnum):
    """reputation.VerdictKind's values."""

    FALSE_POSITIVE = "false_positive"
    CONFIRMED = "confirmed"


class DecisionOutcome(StrEnum):
    """How a state of the history ended."""

    AUTO_RESUMED = "auto_resumed"  # the cool-down ran out: resumed on probation
    ADMIN_RESUMED = "admin_resumed"  # a resume override
    ADMIN_OVERRIDE = "admin_override"  # an allow, block or limit override took over
    FALSE_POSITIVE = "false_positive"  # lifted by a false_positive verdict
    ESCALATED = "escalated"  # a more severe state followed
    RELEASED = "released"  # the rules stopped firing (hysteresis passed)
    REPLACED = "replaced"  # another state or rule of the same severity or lower


def _one_of(column: str, values: type[StrEnum]) -> CheckConstraint:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


def _counter() -> Mapped[int]:
    return mapped_column(BigId, default=0)


class CounterBucket(Base):
    """Counts of one identity in one time bucket, added up from every policy node's deltas."""

    __tablename__ = "counter_buckets"
    __table_args__ = (
        UniqueConstraint("identity_kind", "identity_value", "seconds", "start"),
        _one_of("identity_kind", IdentityKind),
        CheckConstraint("seconds IN (60, 3600)", name="seconds"),
        # The evaluation job reads the rows changed since its last run; load_counters by start.
        Index(None, "updated_at"),
        Index(None, "start"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    identity_kind: Mapped[str] = mapped_column(String(16))
    identity_value: Mapped[str] = mapped_column(String(1000))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    seconds: Mapped[int] = mapped_column(Integer)
    sends: Mapped[int] = _counter()
    recipients: Mapped[int] = _counter()
    freemail_recipients: Mapped[int] = _counter()
    hard_list_quality: Mapped[int] = _counter()
    hard_block: Mapped[int] = _counter()
    hard_rate: Mapped[int] = _counter()
    hard_configuration: Mapped[int] = _counter()
    hard_transient: Mapped[int] = _counter()
    hard_unknown: Mapped[int] = _counter()
    soft_list_quality: Mapped[int] = _counter()
    soft_block: Mapped[int] = _counter()
    soft_rate: Mapped[int] = _counter()
    soft_configuration: Mapped[int] = _counter()
    soft_transient: Mapped[int] = _counter()
    soft_unknown: Mapped[int] = _counter()
    complaints: Mapped[int] = _counter()
    # reputation.DistinctSketch.to_bytes() of the recipients (minute buckets only); NULL for none.
    distinct_sketch: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DecisionRow(Base):
    """The decision in force for one identity (a reputation.Decision)."""

    __tablename__ = "reputation_decisions"
    __table_args__ = (
        UniqueConstraint("identity_kind", "identity_value"),
        _one_of("identity_kind", IdentityKind),
        _one_of("state", StoredState),
        Index(None, "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    identity_kind: Mapped[str] = mapped_column(String(16))
    identity_value: Mapped[str] = mapped_column(String(1000))
    state: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    limit_per_hour: Mapped[int | None] = mapped_column(Integer)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The open entry of decision_history (None while ok).
    history_id: Mapped[int | None] = mapped_column(ForeignKey("decision_history.id", ondelete="SET NULL"))


class DecisionHistory(Base):
    """One state an identity was put in (watch and above), from ``decided_at`` to ``ended_at``."""

    __tablename__ = "decision_history"
    __table_args__ = (
        _one_of("identity_kind", IdentityKind),
        _one_of("state", StoredState),
        _one_of("outcome", DecisionOutcome),
        _one_of("verdict", StoredVerdictKind),
        Index(None, "identity_kind", "identity_value", "id"),
        Index(None, "decided_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    identity_kind: Mapped[str] = mapped_column(String(16))
    identity_value: Mapped[str] = mapped_column(String(1000))
    state: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    limit_per_hour: Mapped[int | None] = mapped_column(Integer)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))
    # The latest verdict given on it (every verdict is in reputation_verdicts).
    verdict: Mapped[str | None] = mapped_column(String(16))


class OverrideRow(Base):
    """An admin's instruction for one identity (a reputation.Override), kept after it expires."""

    __tablename__ = "reputation_overrides"
    __table_args__ = (
        _one_of("identity_kind", IdentityKind),
        _one_of("kind", StoredOverrideKind),
        Index(None, "identity_kind", "identity_value", "id"),
        # The expiry job finds the overrides that ran out since its last run.
        Index(None, "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    identity_kind: Mapped[str] = mapped_column(String(16))
    identity_value: Mapped[str] = mapped_column(String(1000))
    kind: Mapped[str] = mapped_column(String(16))
    limit_per_hour: Mapped[int | None] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VerdictRow(Base):
    """An admin's judgement of a decision of the history (a reputation.Verdict)."""

    __tablename__ = "reputation_verdicts"
    __table_args__ = (
        _one_of("identity_kind", IdentityKind),
        _one_of("kind", StoredVerdictKind),
        Index(None, "identity_kind", "identity_value", "id"),
        Index(None, "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("decision_history.id", ondelete="SET NULL"), index=True)
    identity_kind: Mapped[str] = mapped_column(String(16))
    identity_value: Mapped[str] = mapped_column(String(1000))
    rule: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
