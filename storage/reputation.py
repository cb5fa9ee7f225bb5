"""Queries of reputation's tables: decisions in force and their history, overrides, verdicts.

The caller owns the session and commits (STYLE.md habit 10). Rows are turned into reputation's
plain values (Decision, Override, Verdict) here, so that the evaluation job, the API and the
policy nodes never handle ORM rows of these tables.

The policy nodes poll ``decisions_changed_since(session, last)`` about once a second (an index
on ``updated_at``) and ``current_decisions(session)`` once at start.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from reputation import (
    Action,
    Decision,
    Identity,
    IdentityKind,
    Override,
    OverrideKind,
    State,
    Verdict,
    VerdictKind,
)
from storage.notify_models import enqueue_state_change
from storage.reputation_models import DecisionHistory, DecisionOutcome, DecisionRow, OverrideRow, VerdictRow

__all__ = [
    "add_override",
    "add_verdict",
    "current_decision",
    "current_decisions",
    "decision_of",
    "decisions_changed_since",
    "decisions_of",
    "history_entry",
    "history_of",
    "nonok_identities",
    "override_of",
    "overrides_changed",
    "overrides_of",
    "record_decision",
    "verdicts_of",
]

_COOLING = (State.PAUSED.value, State.HELD.value, State.BLOCKED.value)


def _identity(kind: str, value: str) -> Identity:
    return Identity(IdentityKind(kind), value)


def _where(model: Any, identities: Sequence[Identity]) -> Any:
    keys = [(i.kind.value, i.value) for i in identities]
    return tuple_(model.identity_kind, model.identity_value).in_(keys)


def decision_of(row: DecisionRow | DecisionHistory) -> Decision:
    """The reputation.Decision a stored row holds."""
    return Decision(identity=_identity(row.identity_kind, row.identity_value), state=State(row.state),
                    action=Action(row.action), rule=row.rule, reason=row.reason,
                    limit_per_hour=row.limit_per_hour, until=row.until, evidence=dict(row.evidence or {}),
                    decided_at=row.decided_at)


def current_decisions(session: Session) -> list[Decision]:
    """Every stored decision in force (identities without one are ok)."""
    return [decision_of(row) for row in session.scalars(select(DecisionRow).order_by(DecisionRow.id))]


def decisions_changed_since(session: Session, since: datetime) -> list[Decision]:
    """The decisions written at or after ``since`` (a policy node's once-a-second refresh)."""
    query = select(DecisionRow).where(DecisionRow.updated_at >= since).order_by(DecisionRow.id)
    return [decision_of(row) for row in session.scalars(query)]


def current_decision(session: Session, identity: Identity) -> DecisionRow | None:
    """The stored decision in force for ``identity``, if any."""
    return session.scalars(select(DecisionRow).where(DecisionRow.identity_kind == identity.kind.value,
                                                     DecisionRow.identity_value == identity.value)).first()


def decisions_of(session: Session, identities: Sequence[Identity]) -> dict[Identity, DecisionRow]:
    """The stored decisions of ``identities`` (those that have one)."""
    found: dict[Identity, DecisionRow] = {}
    for begin in range(0, len(identities), 500):
        chunk = identities[begin:begin + 500]
        for row in session.scalars(select(DecisionRow).where(_where(DecisionRow, chunk))):
            found[_identity(row.identity_kind, row.identity_value)] = row
    return found


def nonok_identities(session: Session) -> list[Identity]:
    """Identities whose decision in force is not ok (re-evaluated every run: windows slide)."""
    query = select(DecisionRow.identity_kind, DecisionRow.identity_value).where(DecisionRow.state != "ok")
    return [_identity(kind, value) for kind, value in session.execute(query)]


def _key(decision: Decision) -> tuple[object, ...]:
    return (decision.state.value, decision.rule, decision.limit_per_hour, decision.until,
            decision.evidence.get("ladder"), decision.evidence.get("override"))


def _stored_key(row: DecisionRow) -> tuple[object, ...]:
    evidence = row.evidence or {}
    return (row.state, row.rule, row.limit_per_hour, row.until, evidence.get("ladder"),
            evidence.get("override"))


def record_decision(session: Session, decision: Decision, now: datetime,
                    row: DecisionRow | None = None) -> tuple[DecisionRow | None, bool]:
    """Store ``decision`` as the one in force when it differs from the stored one; the caller commits.

    Returns (the row, whether it changed). A plain ok for an identity never decided on stores
    nothing. A new state (or rule) other than ok opens a decision_history entry; the open one is
    closed with how it ended. ``row``: the current row when the caller has it already.
    """
    row = row if row is not None else current_decision(session, decision.identity)
    ladder = decision.evidence.get("ladder")
    strikes = ladder.get("strikes", 0) if isinstance(ladder, dict) else 0
    if row is None and decision.state is State.OK and not strikes and "override" not in decision.evidence:
        return None, False
    if row is not None and _stored_key(row) == _key(decision):
        return row, False
    evidence = _json(decision.evidence)
    opened = row is None or row.state != decision.state.value or row.rule != decision.rule
    history_id = row.history_id if row is not None else None
    if opened and history_id is not None:
        _close(session, history_id, decision, now)
        history_id = None
    if opened and decision.state is not State.OK:
        entry = DecisionHistory(identity_kind=decision.identity.kind.value,
                                identity_value=decision.identity.value, state=decision.state.value,
                                action=decision.action.value, rule=decision.rule,
                                reason=decision.reason, limit_per_hour=decision.limit_per_hour,
                                until=decision.until, evidence=evidence, decided_at=decision.decided_at)
        session.add(entry)
        session.flush()
        history_id = entry.id
    # Told to the configured webhooks and admins by the delivery job (notify/deliver.py), never here.
    enqueue_state_change(session, row.state if row is not None else None, {
        "identity": {"kind": decision.identity.kind.value, "value": decision.identity.value},
        "new_state": decision.state.value, "action": decision.action.value, "rule": decision.rule,
        "reason": decision.reason, "evidence": evidence, "decided_at": decision.decided_at.isoformat()}, now)
    if row is None:
        row = DecisionRow(identity_kind=decision.identity.kind.value, identity_value=decision.identity.value)
        session.add(row)
    row.state, row.action, row.rule = decision.state.value, decision.action.value, decision.rule
    row.reason, row.limit_per_hour, row.until = decision.reason, decision.limit_per_hour, decision.until
    row.evidence, row.decided_at, row.updated_at = evidence, decision.decided_at, now
    row.history_id = history_id
    session.flush()
    return row, True


def _close(session: Session, history_id: int, decision: Decision, now: datetime) -> None:
    entry = session.get(DecisionHistory, history_id)
    if entry is None or entry.ended_at is not None:
        return
    entry.ended_at = now
    entry.outcome = _outcome(session, entry, decision).value


def _outcome(session: Session, entry: DecisionHistory, decision: Decision) -> DecisionOutcome:
    """How ``entry`` ended, now that ``decision`` follows it."""
    override = decision.evidence.get("override")
    if isinstance(override, dict) and override.get("kind") != OverrideKind.RESUME.value:
        return DecisionOutcome.ADMIN_OVERRIDE
    if decision.state.rank > State(entry.state).rank:
        return DecisionOutcome.ESCALATED
    fp = session.scalars(select(VerdictRow.id).where(
        VerdictRow.decision_id == entry.id, VerdictRow.kind == VerdictKind.FALSE_POSITIVE.value)).first()
    if fp is not None:
        return DecisionOutcome.FALSE_POSITIVE
    if (entry.state in _COOLING and decision.state is State.WATCH) or entry.state == State.THROTTLED.value:
        resumed = session.scalars(select(OverrideRow.id).where(
            OverrideRow.identity_kind == entry.identity_kind,
            OverrideRow.identity_value == entry.identity_value,
            OverrideRow.kind == OverrideKind.RESUME.value, OverrideRow.created_at >= entry.decided_at,
            OverrideRow.revoked_at.is_(None))).first()
        if resumed is not None:
            return DecisionOutcome.ADMIN_RESUMED
        if entry.state in _COOLING:
            return DecisionOutcome.AUTO_RESUMED
    if decision.state.rank < State(entry.state).rank:
        return DecisionOutcome.RELEASED
    return DecisionOutcome.REPLACED


def _json(value: object) -> Any:
    """Evidence as JSON-able data (datetimes as ISO 8601, tuples as lists)."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def history_of(session: Session, identity: Identity, limit: int = 20) -> list[DecisionHistory]:
    """The latest history entries of ``identity``, newest first."""
    return list(session.scalars(select(DecisionHistory).where(
        DecisionHistory.identity_kind == identity.kind.value,
        DecisionHistory.identity_value == identity.value).order_by(DecisionHistory.id.desc()).limit(limit)))


def history_entry(session: Session, identity: Identity, entry_id: int | None) -> DecisionHistory | None:
    """History entry ``entry_id`` of ``identity`` (None: its latest one)."""
    query = select(DecisionHistory).where(DecisionHistory.identity_kind == identity.kind.value,
                                          DecisionHistory.identity_value == identity.value)
    if entry_id is not None:
        query = query.where(DecisionHistory.id == entry_id)
    return session.scalars(query.order_by(DecisionHistory.id.desc()).limit(1)).first()


# -- overrides and verdicts -----------------------------------------------------------------------

def override_of(row: OverrideRow) -> Override:
    """The reputation.Override a stored row holds."""
    return Override(identity=_identity(row.identity_kind, row.identity_value), kind=OverrideKind(row.kind),
                    author=row.author, reason=row.reason, created_at=row.created_at,
                    expires_at=row.expires_at, limit_per_hour=row.limit_per_hour)


def add_override(session: Session, override: Override) -> OverrideRow:
    """Store ``override``; the caller commits."""
    row = OverrideRow(identity_kind=override.identity.kind.value, identity_value=override.identity.value,
                      kind=override.kind.value, limit_per_hour=override.limit_per_hour,
                      author=override.author, reason=override.reason, created_at=override.created_at,
                      expires_at=override.expires_at)
    session.add(row)
    session.flush()
    return row


def overrides_of(session: Session, identities: Sequence[Identity], *,
                 include_revoked: bool = False) -> dict[Identity, list[OverrideRow]]:
    """The overrides of ``identities``, oldest first (revoked ones only when asked)."""
    found: dict[Identity, list[OverrideRow]] = {}
    for begin in range(0, len(identities), 500):
        query = select(OverrideRow).where(_where(OverrideRow, identities[begin:begin + 500]))
        if not include_revoked:
            query = query.where(OverrideRow.revoked_at.is_(None))
        for row in session.scalars(query.order_by(OverrideRow.id)):
            found.setdefault(_identity(row.identity_kind, row.identity_value), []).append(row)
    return found


def overrides_changed(session: Session, after: datetime, until: datetime) -> list[Identity]:
    """Identities with an override created, expired or revoked in (``after``, ``until``]."""
    query = select(OverrideRow.identity_kind, OverrideRow.identity_value).where(
        ((OverrideRow.created_at > after) & (OverrideRow.created_at <= until))
        | ((OverrideRow.expires_at > after) & (OverrideRow.expires_at <= until))
        | ((OverrideRow.revoked_at > after) & (OverrideRow.revoked_at <= until))).distinct()
    return [_identity(kind, value) for kind, value in session.execute(query)]


def add_verdict(session: Session, entry: DecisionHistory, kind: VerdictKind, author: str, note: str,
                at: datetime) -> VerdictRow:
    """Record a verdict on history ``entry`` (its rule); the caller commits."""
    if entry.rule is None:
        raise ValueError(f"decision {entry.id} was not made by a rule (an override or ok); "
                         "a verdict judges a rule's decision")
    row = VerdictRow(decision_id=entry.id, identity_kind=entry.identity_kind,
                     identity_value=entry.identity_value, rule=entry.rule, kind=kind.value, author=author,
                     note=note, at=at)
    entry.verdict = kind.value
    session.add(row)
    session.flush()
    return row


def verdicts_of(session: Session, identities: Sequence[Identity],
                since: datetime | None = None) -> dict[Identity, list[Verdict]]:
    """The verdicts on ``identities`` (given at or after ``since``), as reputation.Verdict values."""
    found: dict[Identity, list[Verdict]] = {}
    for begin in range(0, len(identities), 500):
        query = select(VerdictRow, DecisionHistory.decided_at).outerjoin(
            DecisionHistory, DecisionHistory.id == VerdictRow.decision_id).where(
            _where(VerdictRow, identities[begin:begin + 500]))
        if since is not None:
            query = query.where(VerdictRow.at >= since)
        for row, decided_at in session.execute(query.order_by(VerdictRow.id)):
            identity = _identity(row.identity_kind, row.identity_value)
            found.setdefault(identity, []).append(Verdict(identity=identity, rule=row.rule,
                                                          kind=VerdictKind(row.kind), author=row.author,
                                                          reason=row.note, at=row.at, decision_at=decided_at))
    return found

