"""Dashboard pages ``events``: the event search, the quarantine, one message and its parse.

- /events: bounces and complaints, newest first, filtered like ``GET /v1/events`` (plus the
  recipient's domain and a piece of the diagnostic), paged by id;
- /quarantine: the messages no parser could read or a bug stopped, with their error; admins
  re-process them (one, or all) with the code of ``python app.py reprocess``;
- /messages/<id>: a stored message's metadata, parse, attribution and events, and its text;
  /messages/<id>/raw downloads its bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from bounces.model import Reason
from ingest.reprocess import ReprocessSummary, quarantined_ids, reprocess_ids
from storage import EventKind, IdentityKind, MessageStatus, RawMessage
from web.dashboard.access import admin_required, current_user, error_page, login_required
from web.dashboard.events_data import (
    EventFilters,
    event_page,
    event_query,
    message_view,
    quarantine_page,
)
from web.database import current_runtime, session_scope
from web.errors import ApiError

__all__ = ["REPROCESS_AT_ONCE", "blueprint"]

blueprint = Blueprint("events", __name__)

# Re-processing runs inside the request: a bigger quarantine is emptied in several presses (each
# says how many remain) or by `python app.py reprocess --all-quarantined`.
REPROCESS_AT_ONCE = 1000
_MAX_ID = 2**63 - 1


@blueprint.get("/events")
@login_required
def index() -> str:
    """Bounce and complaint events matching the form's filters, one page, newest first."""
    filters = EventFilters.from_args(request.args)
    limit = request.args.get("limit", "").strip()  # not in the form: ?limit=200 for longer pages
    error = None
    try:
        query = event_query(filters, before_id=request.args.get("before", ""),
                            after_id=request.args.get("after", ""), limit=limit)
    except ApiError as refused:
        error, page = refused.detail, None
    else:
        with session_scope(current_runtime(), read_only=True) as session:
            page = event_page(session, query)
    return render_template(
        "dashboard/events/index.html", filters=filters, page=page, error=error,
        kinds=[kind.value for kind in EventKind], reasons=sorted(reason.value for reason in Reason),
        identity_kinds=[kind.value for kind in IdentityKind],
        link_args={**filters.args(), **({"limit": limit} if limit else {})})


@blueprint.get("/quarantine")
@login_required
def quarantine() -> str:
    """The quarantined messages with their error; admins get the re-process buttons."""
    before = request.args.get("before", "")
    # A cursor from our own links; anything else (a huge or odd number) starts at the newest.
    before_id = int(before) if before.isdecimal() and len(before) <= 19 and int(before) <= _MAX_ID else None
    with session_scope(current_runtime(), read_only=True) as session:
        page = quarantine_page(session, before_id=before_id)
    user = current_user()
    return render_template("dashboard/events/quarantine.html", page=page, paged=before_id is not None,
                           can_act=user is not None and user.is_admin)


@blueprint.get("/messages/<int:message_id>")
@login_required
def message(message_id: int) -> str | tuple[str, int]:
    """A stored message: metadata, parse, attribution, events, and its bytes shown as text."""
    with session_scope(current_runtime(), read_only=True) as session:
        view = message_view(session, message_id)
    if view is None:
        return _no_message(message_id)
    user = current_user()
    return render_template("dashboard/events/message.html", view=view, message=view.detail,
                           can_act=user is not None and user.is_admin)


@blueprint.get("/messages/<int:message_id>/raw")
@login_required
def raw(message_id: int) -> Response | tuple[str, int]:
    """The message's bytes exactly as received, as a ``message/rfc822`` download."""
    with session_scope(current_runtime(), read_only=True) as session:
        row = session.get(RawMessage, message_id) if message_id <= _MAX_ID else None
        if row is None:
            return _no_message(message_id)
        data = row.raw
    response = Response(data, mimetype="message/rfc822")
    response.headers["Content-Disposition"] = f'attachment; filename="message-{message_id}.eml"'
    # A browser must not render a stored spam message as HTML.
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _no_message(message_id: int) -> tuple[str, int]:
    return error_page(404, "No such message", f"There is no message {message_id}: check the number, "
                      "or search the events (/events) and follow a row's link.")


@blueprint.post("/messages/<int:message_id>/reprocess")
@admin_required
def reprocess_message(message_id: int) -> BaseResponse:
    """Run the pipeline again on one message (after a fix), then say what became of it."""
    _report(_reprocess([message_id]))
    if request.form.get("back") == "quarantine":
        return redirect(url_for("events.quarantine"))
    return redirect(url_for("events.message", message_id=message_id))


@blueprint.post("/quarantine/reprocess")
@admin_required
def reprocess_all() -> BaseResponse:
    """Run the pipeline again on the quarantined messages, oldest first, REPROCESS_AT_ONCE of them."""
    runtime = current_runtime()
    with session_scope(runtime, read_only=True) as session:
        ids = quarantined_ids(session)
    summary = _reprocess(ids[:REPROCESS_AT_ONCE])
    _report(summary)
    if len(ids) > REPROCESS_AT_ONCE:
        flash(f"{len(ids) - REPROCESS_AT_ONCE} more quarantined messages were not re-processed yet: "
              "press the button again, or run python app.py reprocess --all-quarantined.", "warning")
    return redirect(url_for("events.quarantine"))


def _reprocess(ids: Sequence[int]) -> ReprocessSummary:
    """The code of ``python app.py reprocess``, with the same batches."""
    runtime = current_runtime()
    return reprocess_ids(runtime.sessions, runtime.pipeline, ids,
                         batch_size=runtime.settings.ingest.import_batch_size)


def _report(summary: ReprocessSummary) -> None:
    """The outcome as the command prints it: an error when a message was missing or refused, a
    warning when one is quarantined again (the fix did not fix it)."""
    category = "success"
    if summary.missing or summary.failed:
        category = "error"
    elif summary.statuses[MessageStatus.QUARANTINED.value]:
        category = "warning"
    flash("; ".join(summary.lines()), category)
