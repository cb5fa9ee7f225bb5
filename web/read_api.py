"""Reading it back: ``GET /v1/messages/<id>`` (and its raw bytes) and ``GET /v1/events``.

Both are for tokens of role ``viewer`` or ``admin`` and run in read-only sessions. Events are
paged by id, newest first, with ``before_id`` cursors; ``after_id`` pages the other way (oldest
first after the cursor), which is how a consumer follows new events as they arrive. Each filter
has its index in storage/models.py (``kind``, ``reason``, ``occurred_at`` and the identity link,
each with ``id``), so a page costs the same at the start and deep in the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from bounces.model import Reason
from storage import BounceEvent, Event, EventIdentity, EventKind, Identity, IdentityKind, RawMessage
from web.auth import READ_ROLES, authenticate
from web.database import current_runtime, session_scope
from web.errors import ApiError
from web.render import event_json, message_json

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "EventQuery", "blueprint", "event_statement", "parse_event_query"]

blueprint = Blueprint("read_api", __name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Ids are 64-bit signed in both databases; a larger number is no id (and PostgreSQL would refuse it).
_MAX_ID = 2**63 - 1
_PARAMETERS = ("identity", "kind", "reason", "since", "until", "limit", "after_id", "before_id")
_TRUE = ("1", "true", "yes")


@blueprint.get("/v1/messages/<int:message_id>")
def message(message_id: int) -> Response:
    """A stored message: parse result, attribution, events, status; its bytes with ``?raw=1``."""
    if request.args.get("raw", "").lower() in _TRUE:
        return message_raw(message_id)
    with session_scope(current_runtime(), read_only=True) as session:
        authenticate(session, request.headers.get("Authorization"), READ_ROLES)
        row = _message(session, message_id)
        events = session.scalars(
            select(Event).where(Event.message_id == row.id).order_by(Event.id)
            .options(selectinload(Event.links).selectinload(EventIdentity.identity))).all()
        return jsonify(message_json(row, events))


@blueprint.get("/v1/messages/<int:message_id>/raw")
def message_raw(message_id: int) -> Response:
    """The message's bytes exactly as received, as ``message/rfc822``."""
    with session_scope(current_runtime(), read_only=True) as session:
        authenticate(session, request.headers.get("Authorization"), READ_ROLES)
        raw = _message(session, message_id).raw
    response = Response(raw, mimetype="message/rfc822")
    response.headers["Content-Disposition"] = f'attachment; filename="message-{message_id}.eml"'
    # A browser must not render a stored spam message as HTML.
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _message(session: Session, message_id: int) -> RawMessage:
    row = session.get(RawMessage, message_id) if message_id <= _MAX_ID else None
    if row is None:
        raise ApiError(404, "not_found", f"There is no message {message_id}.")
    return row


@dataclass(frozen=True)
class EventQuery:
    """The checked filters of an event search: ``GET /v1/events``, and the dashboard's /events.

    ``domain`` (the recipient domain) and ``text`` (a case-insensitive piece of a bounce's
    diagnostic) are the dashboard's filters; the API does not take them (yet).
    """

    identity: tuple[str, str] | None = None
    kind: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT
    after_id: int | None = None
    before_id: int | None = None
    domain: str | None = None
    text: str | None = None


@blueprint.get("/v1/events")
def events() -> Response:
    """Events matching the filters, one page, with the ``next`` page's URL (null on the last page)."""
    query = parse_event_query(request.args.to_dict(flat=False))
    with session_scope(current_runtime(), read_only=True) as session:
        authenticate(session, request.headers.get("Authorization"), READ_ROLES)
        statement = event_statement(session, query)
        rows = [] if statement is None else list(session.scalars(statement).all())
        page = [event_json(event) for event in rows[:query.limit]]
    following = None
    if len(rows) > query.limit:
        cursor = "after_id" if query.after_id is not None else "before_id"
        params = {**request.args.to_dict(), cursor: str(page[-1]["id"])}
        params.pop("before_id" if cursor == "after_id" else "after_id", None)
        following = "/v1/events?" + urlencode(params)
    return jsonify(events=page, count=len(page), next=following)


def event_statement(session: Session, query: EventQuery) -> Select[Event] | None:
    """The SELECT of one page (plus one row, to know whether there is a next); None if nothing can match."""
    statement = select(Event)
    if query.identity is not None:
        kind, value = query.identity
        identity_id = session.scalar(
            select(Identity.id).where(Identity.kind == kind, Identity.value == value))
        if identity_id is None:
            return None
        statement = statement.join(EventIdentity, EventIdentity.event_id == Event.id).where(
            EventIdentity.identity_id == identity_id)
    if query.kind is not None:
        statement = statement.where(Event.kind == query.kind)
    if query.reason is not None:
        statement = statement.where(Event.reason == query.reason)
    if query.since is not None:
        statement = statement.where(Event.occurred_at >= query.since)
    if query.until is not None:
        statement = statement.where(Event.occurred_at < query.until)
    if query.domain is not None:
        statement = statement.where(Event.recipient_domain == query.domain.strip().lower())
    if query.text is not None:
        # Only bounces have a diagnostic (single-table inheritance: one column of ``events``).
        statement = statement.where(BounceEvent.diagnostic.icontains(query.text, autoescape=True))
    if query.after_id is not None:
        statement = statement.where(Event.id > query.after_id).order_by(Event.id.asc())
    else:
        if query.before_id is not None:
            statement = statement.where(Event.id < query.before_id)
        statement = statement.order_by(Event.id.desc())
    return statement.limit(query.limit + 1).options(
        selectinload(Event.links).selectinload(EventIdentity.identity))


def parse_event_query(args: dict[str, list[str]]) -> EventQuery:
    """Check the query string of ``GET /v1/events``; ApiError 400 with a sentence for a bad one."""
    unknown = sorted(set(args) - set(_PARAMETERS))
    if unknown:
        _bad(f"Unknown parameter {unknown[0]!r}; the parameters are {', '.join(_PARAMETERS)}.")
    for name, values in args.items():
        if len(values) > 1:
            _bad(f"Give {name!r} once, not {len(values)} times.")
    one = {name: values[0] for name, values in args.items()}
    query = EventQuery(
        identity=_identity(one["identity"]) if "identity" in one else None,
        kind=_choice("kind", one.get("kind"), [kind.value for kind in EventKind]),
        reason=_choice("reason", one.get("reason"), [reason.value for reason in Reason]),
        since=_time("since", one.get("since")),
        until=_time("until", one.get("until")),
        limit=_integer("limit", one.get("limit"), 1, MAX_LIMIT) or DEFAULT_LIMIT,
        after_id=_integer("after_id", one.get("after_id"), 0, _MAX_ID),
        before_id=_integer("before_id", one.get("before_id"), 1, _MAX_ID),
    )
    if query.after_id is not None and query.before_id is not None:
        _bad("Give after_id or before_id, not both.")
    if query.since is not None and query.until is not None and query.since >= query.until:
        _bad("since must be earlier than until.")
    return query


def _bad(detail: str) -> NoReturn:
    raise ApiError(400, "bad_request", detail)


def _identity(text: str) -> tuple[str, str]:
    kind, _, value = text.partition(":")
    kinds = [member.value for member in IdentityKind]
    if kind not in kinds or not value:
        _bad(f"identity must be <kind>:<value> with kind one of {', '.join(kinds)} "
             f"(for example account:alice@example.com), got {text!r}.")
    return kind, value


def _choice(name: str, text: str | None, allowed: list[str]) -> str | None:
    if text is not None and text not in allowed:
        _bad(f"{name} must be one of {', '.join(allowed)}, got {text!r}.")
    return text


def _time(name: str, text: str | None) -> datetime | None:
    """An ISO 8601 time; without a UTC offset it is taken as UTC (every stored time is UTC)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        _bad(f"{name} must be an ISO 8601 time such as 2026-01-31T12:00:00Z, got {text!r}.")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _integer(name: str, text: str | None, low: int, high: int) -> int | None:
    if text is None:
        return None
    # isdecimal first: int() would also take "+5", " 5" and "1_000".
    if not text.isdecimal() or len(text) > 19 or not low <= int(text) <= high:
        _bad(f"{name} must be a whole number from {low} to {high}, got {text!r}.")
    return int(text)
