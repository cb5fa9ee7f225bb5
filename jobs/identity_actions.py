"""What an admin can see and do about one identity; shared by the API (web/identities.py) and the CLI.

``identity_report`` is everything known about an identity (state, the decision in force with its
explanation, counters per window, overrides, recent history with verdicts, recent events).
``apply_action`` records an override (allow, block, limit, resume) or a verdict (false_positive,
confirmed) and re-evaluates the identity at once, so that the decision in force changes in the
same transaction and the policy nodes pick it up at their next refresh (about a second).

Bad input raises ``ActionError`` with one sentence that says what to write instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.evaluate import HISTORY, Tiers, evaluate_now, identity_store
from reputation import Decision, Identity, IdentityKind, Override, OverrideKind, RuleSet, VerdictKind, Window
from reputation.ruleset import parse_duration
from storage import OverrideRow, VerdictRow
from storage.reputation import (
    add_override,
    add_verdict,
    current_decision,
    decision_of,
    history_entry,
    history_of,
)
from storage.signals import identity_events

__all__ = ["ACTIONS", "ActionError", "ActionResult", "apply_action", "decision_json", "identity_report",
           "parse_expiry", "parse_identity"]

ACTIONS = ("allow", "block", "limit", "resume", "verdict")
_MAX_VALUE = 1000  # the column's size
# The override's limit column is a 32-bit integer; a bigger number would fail in the database.
MAX_LIMIT_PER_HOUR = 2**31 - 1


class ActionError(ValueError):
    """Bad input for an identity action: ``str(error)`` is the sentence to show."""


@dataclass(frozen=True)
class ActionResult:
    """What an action recorded, and the decision in force afterwards (None: ok)."""

    action: str
    record_id: int
    decision: Decision | None


def parse_identity(kind: str, value: str) -> Identity:
    """``(kind, value)`` as an Identity; raises ActionError for an unknown kind or an empty value."""
    try:
        identity_kind = IdentityKind(kind.strip().lower())
    except ValueError:
        raise ActionError(f"unknown identity kind {kind!r}; the kinds are "
                          f"{', '.join(k.value for k in IdentityKind)}") from None
    value = value.strip()
    if not value or len(value) > _MAX_VALUE:
        raise ActionError(f"the identity value must be 1 to {_MAX_VALUE} characters, "
                          "such as alice@example.com")
    return Identity(identity_kind, value)


def parse_expiry(expires: str | None, expires_in: str | None, now: datetime) -> datetime | None:
    """The expiry from an ISO 8601 time ("2026-12-01T00:00:00Z") or a duration ("24h"); None: never."""
    if expires and expires_in:
        raise ActionError("give expires (a time) or expires_in (a duration), not both")
    if expires_in:
        try:
            return now + parse_duration(expires_in)
        except ValueError:
            raise ActionError(f"expires_in must be a duration such as 90m, 24h or 7d, "
                              f"got {expires_in!r}") from None
    if expires:
        try:
            at = datetime.fromisoformat(expires.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ActionError(f"expires must be an ISO 8601 time such as 2026-12-01T00:00:00Z, "
                              f"got {expires!r}") from None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        if at <= now:
            raise ActionError(f"expires {expires!r} is in the past; give a later time")
        return at
    return None


def apply_action(session: Session, identity: Identity, action: str, *, author: str, reason: str,
                 now: datetime, rules: RuleSet, limit_per_hour: int | None = None,
                 expires_at: datetime | None = None, verdict: str | None = None,
                 decision_id: int | None = None, tiers: Tiers | None = None) -> ActionResult:
    """Record ``action`` on ``identity`` and re-evaluate it (in its customer's tier); the caller commits."""
    if action not in ACTIONS:
        raise ActionError(f"unknown action {action!r}; the actions are {', '.join(ACTIONS)}")
    if not reason.strip():
        raise ActionError("say why in reason (it is shown with the decision and in the weekly report)")
    if not author.strip():
        raise ActionError("the action needs an author")
    if action == "verdict":
        record_id = _verdict(session, identity, verdict, decision_id, author, reason, now)
    else:
        if action == "limit" and (limit_per_hour is None or isinstance(limit_per_hour, bool)
                                  or not isinstance(limit_per_hour, int)
                                  or not 0 <= limit_per_hour <= MAX_LIMIT_PER_HOUR):
            raise ActionError("limit needs limit_per_hour, a whole number of messages an hour "
                              f"(0 to {MAX_LIMIT_PER_HOUR})")
        if action != "limit" and limit_per_hour is not None:
            raise ActionError(f"limit_per_hour goes with the limit action only, not with {action}")
        override = Override(identity=identity, kind=OverrideKind(action), author=author[:255], reason=reason,
                            created_at=now, expires_at=expires_at, limit_per_hour=limit_per_hour)
        record_id = add_override(session, override).id
    return ActionResult(action, record_id, evaluate_now(session, identity, rules, now, tiers))


def _verdict(session: Session, identity: Identity, verdict: str | None, decision_id: int | None, author: str,
             note: str, now: datetime) -> int:
    try:
        kind = VerdictKind(verdict or "")
    except ValueError:
        raise ActionError(f"verdict must be false_positive or confirmed, got {verdict!r}") from None
    entry = history_entry(session, identity, decision_id)
    if entry is None:
        which = f"decision {decision_id}" if decision_id is not None else "decision"
        raise ActionError(f"{identity} has no {which} to judge; see its history with show")
    try:
        return add_verdict(session, entry, kind, author[:255], note, now).id
    except ValueError as error:
        raise ActionError(str(error)) from None


def decision_json(decision: Decision) -> dict[str, Any]:
    """A decision as JSON-able data."""
    return {"state": decision.state.value, "action": decision.action.value, "rule": decision.rule,
            "explanation": decision.reason, "limit_per_hour": decision.limit_per_hour,
            "until": _iso(decision.until), "decided_at": _iso(decision.decided_at),
            "evidence": dict(decision.evidence)}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def identity_report(session: Session, identity: Identity, rules: RuleSet, now: datetime,
                    history: int = 20, events: int = 20) -> dict[str, Any]:
    """Everything about ``identity`` as JSON-able data (GET /v1/identities/..., ``identity show``)."""
    row = current_decision(session, identity)
    decision = decision_of(row) if row is not None else None
    store = identity_store(session, identity, rules, now)
    counters = {window.value: store.window_totals(identity, window, now).as_dict() for window in Window}
    baseline = store.baseline(identity, now)
    overrides = session.scalars(select(OverrideRow).where(
        OverrideRow.identity_kind == identity.kind.value, OverrideRow.identity_value == identity.value)
        .order_by(OverrideRow.id.desc()).limit(50))
    verdicts: dict[int | None, list[dict[str, Any]]] = {}
    for verdict in session.scalars(select(VerdictRow).where(
            VerdictRow.identity_kind == identity.kind.value, VerdictRow.identity_value == identity.value)
            .order_by(VerdictRow.id)):
        verdicts.setdefault(verdict.decision_id, []).append(
            {"id": verdict.id, "kind": verdict.kind, "rule": verdict.rule, "author": verdict.author,
             "note": verdict.note, "at": _iso(verdict.at)})
    recent = identity_events(session, identity, since=now - HISTORY)[-events:]
    return {
        "identity": {"kind": identity.kind.value, "value": identity.value},
        "state": decision.state.value if decision is not None else "ok",
        "action": decision.action.value if decision is not None else "allow",
        "decision": decision_json(decision) if decision is not None else None,
        "counters": counters,
        "baseline": {"peak": baseline.peak, "median": baseline.median, "active_hours": baseline.active_hours},
        "overrides": [{"id": o.id, "kind": o.kind, "limit_per_hour": o.limit_per_hour, "author": o.author,
                       "reason": o.reason, "created_at": _iso(o.created_at), "expires_at": _iso(o.expires_at),
                       "revoked_at": _iso(o.revoked_at),
                       "active": o.revoked_at is None and o.kind != "resume" and o.created_at <= now
                       and (o.expires_at is None or now < o.expires_at)} for o in overrides],
        "history": [{"id": h.id, "state": h.state, "rule": h.rule, "explanation": h.reason,
                     "limit_per_hour": h.limit_per_hour, "until": _iso(h.until),
                     "decided_at": _iso(h.decided_at),
                     "ended_at": _iso(h.ended_at), "outcome": h.outcome, "verdict": h.verdict,
                     "verdicts": verdicts.get(h.id, [])} for h in history_of(session, identity, history)],
        "events": [{"id": e.id, "kind": e.kind, "reason": e.reason, "hard": e.hard,
                    "occurred_at": _iso(e.occurred_at)} for e in reversed(recent)],
    }

