"""Admins correct reputation: ``GET /v1/identities/<kind>/<value>`` and ``POST .../actions``.

GET (tokens of role viewer or admin): the identity's state, the decision in force with its
explanation, counters per window, overrides, recent decision history with verdicts, and recent
events. POST (admin tokens): ``{"action": "allow"|"block"|"limit"|"resume"|"verdict", ...}``
recorded with the token's name as author; the identity is re-evaluated in the same transaction,
so the new decision is in force when the response is sent (policy nodes pick it up within about
a second). docs/identities.md documents both.

The value may contain slashes (scripts are paths): write them as they are, or as %2F.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.routing import BaseConverter

from jobs.evaluate import Tiers
from jobs.identity_actions import (
    ActionError,
    apply_action,
    decision_json,
    identity_report,
    parse_expiry,
    parse_identity,
)
from reputation import Identity
from storage import TokenRole, utcnow
from web.auth import READ_ROLES, authenticate
from web.database import current_runtime, session_scope
from web.errors import ApiError

__all__ = ["ADMIN_ROLES", "blueprint"]

ADMIN_ROLES = frozenset({TokenRole.ADMIN})
_FIELDS = frozenset({"action", "limit_per_hour", "expires", "expires_in", "reason", "verdict", "decision_id"})


class _Value(BaseConverter):
    """Any non-empty text, slashes included (a script's path), up to the route's next part."""

    regex = ".+?"
    part_isolating = False


blueprint = Blueprint("identities", __name__)


@blueprint.record_once
def _register_converter(state: Any) -> None:
    app: Flask = state.app
    app.url_map.converters.setdefault("identity_value", _Value)


def _identity(kind: str, value: str) -> Identity:
    try:
        return parse_identity(kind, value)
    except ActionError as error:
        raise ApiError(400, "bad_request", f"{error}.") from None


@blueprint.get("/v1/identities/<kind>/<identity_value:value>")
def show(kind: str, value: str) -> Response:
    """Everything about one identity (see the module docstring)."""
    identity = _identity(kind, value)
    runtime = current_runtime()
    with session_scope(runtime, read_only=True) as session:
        authenticate(session, request.headers.get("Authorization"), READ_ROLES)
        return jsonify(identity_report(session, identity, runtime.settings.reputation.rules, utcnow()))


@blueprint.post("/v1/identities/<kind>/<identity_value:value>/actions")
def act(kind: str, value: str) -> Response:
    """Record an admin's action on one identity and return the decision in force afterwards."""
    runtime = current_runtime()
    with session_scope(runtime) as session:
        caller = authenticate(session, request.headers.get("Authorization"), ADMIN_ROLES)
        identity = _identity(kind, value)
        body = _body()
        now = utcnow()
        try:
            result = apply_action(
                session, identity, str(body.get("action", "")), author=caller.name,
                reason=_text(body, "reason"), now=now, rules=runtime.settings.reputation.rules,
                limit_per_hour=_integer(body, "limit_per_hour"),
                expires_at=parse_expiry(_text(body, "expires") or None, _text(body, "expires_in") or None,
                                        now),
                verdict=_text(body, "verdict") or None, decision_id=_integer(body, "decision_id"),
                tiers=Tiers.from_settings(runtime.settings.reputation,
                                          runtime.settings.attribution.rules.directory))
        except ActionError as error:
            raise ApiError(400, "bad_request", f"{error}.") from None
        session.commit()
        decision = result.decision
        return jsonify({"action": result.action, "id": result.record_id, "author": caller.name,
                        "identity": {"kind": identity.kind.value, "value": identity.value},
                        "state": decision.state.value if decision is not None else "ok",
                        "decision": decision_json(decision) if decision is not None else None})


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", 'Send a JSON object such as {"action": "resume", "reason": '
                                           '"password reset"} with Content-Type: application/json.')
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise ApiError(400, "bad_request", f"Unknown field {unknown[0]!r}; the fields are "
                                           f"{', '.join(sorted(_FIELDS))}.")
    return body


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", f"{key} must be a string, got {value!r}.")
    return value


def _integer(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ApiError(400, "bad_request", f"{key} must be a whole number of 0 or more, got {value!r}.")
    return value
