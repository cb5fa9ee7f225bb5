"""The identity page: /identities/<kind>/<value>, what Ricochet knows and decided about one sender.

GET (``identity_page.show``, any logged-in user): the state, the decision in force with its
explanation and evidence, a timeline (``?range=48h`` by the hour or ``14d`` by the day), the
decision history with verdicts, and the overrides (web.dashboard.identity_data).

POST to the same URL (``identity_page.act``, admins): one form per action (resume, allow, block,
limit N an hour, each with a reason and an optional expiry; a verdict with a note on a decision of
the history). The action is recorded by ``jobs.identity_actions.apply_action``, the code of the API
and the CLI, with the logged-in user's name as author; the identity is re-evaluated in the same
transaction. The outcome is flashed and the browser is sent back to the page (POST/redirect/GET),
so a reload never posts twice.

Values may hold slashes (scripts are paths, "/home/alice/public_html/mailer.php"): the route takes
everything after the kind, leading and doubled slashes included.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.routing import PathConverter
from werkzeug.wrappers import Response

from jobs.evaluate import Tiers
from jobs.identity_actions import ActionError, ActionResult, apply_action, parse_expiry, parse_identity
from reputation import Identity
from storage import utcnow
from web.dashboard import charts
from web.dashboard.access import admin_required, current_user, error_page, login_required
from web.dashboard.identity_data import Span, Timeline, identity_page
from web.database import current_runtime, session_scope

__all__ = ["blueprint"]

ROUTE = "/identities/<kind>/<identity_path:value>"
# Bar colours per signal group: blocks red, list quality orange, the milder groups cooler.
COLOURS = {"sends": "#4a78b5", "complaints": "#8e2c8e", "list_quality": "#e08a1e", "block": "#c0392b",
           "rate": "#d4b21f", "configuration": "#2a9d8f", "transient": "#8aa1b1", "unknown": "#9e9e9e"}
_DURATION = re.compile(r"\s*\d+\s*[smhd]\s*")
_TIME = re.compile(r"\s*\d{4}-\d\d-\d\d")
_BIGINT = 2**63


class _Value(PathConverter):
    """The rest of the path, slashes included, even leading ones (a script's absolute path).

    Werkzeug's ``path`` refuses a leading slash; ``merge_slashes=False`` on the rules keeps "//".
    """

    regex = ".+"
    part_isolating = False


blueprint = Blueprint("identity_page", __name__)


@blueprint.record_once
def _register_converter(state: Any) -> None:
    app: Flask = state.app
    app.url_map.converters.setdefault("identity_path", _Value)


def _identity(kind: str, value: str) -> Identity:
    """The identity of the URL; a kind that does not exist is the friendly 404 page."""
    try:
        return parse_identity(kind, value)
    except ActionError as error:
        abort(_not_found(kind, value, str(error)))


def _not_found(kind: str, value: str, why: str) -> Response:
    page, status = error_page(404, "Unknown identity", f"Ricochet knows nothing of {kind} {value}: {why}. "
                                                       "Check the spelling (an account is the SMTP AUTH user "
                                                       "name, a script its full path) or look for the sender "
                                                       "on the overview and events pages.")
    return Response(page, status=status, mimetype="text/html")


def _span() -> Span:
    try:
        return Span(request.args.get("range", Span.HOURS.value))
    except ValueError:
        return Span.HOURS


@blueprint.get(ROUTE, merge_slashes=False)
@login_required
def show(kind: str, value: str) -> str | Response:
    """Everything about one identity (see the module docstring)."""
    identity = _identity(kind, value)
    runtime = current_runtime()
    with session_scope(runtime, read_only=True) as session:
        page = identity_page(session, identity, runtime.settings.reputation.rules, utcnow(), _span())
    if page is None:
        return _not_found(identity.kind.value, identity.value,
                          "no send, bounce, complaint, decision or override of it is stored")
    user = current_user()
    return render_template("dashboard/identity_page/show.html", page=page, charts=_charts(page.timeline),
                           spans=list(Span), is_admin=user is not None and user.is_admin,
                           message_links="events.message" in current_app.view_functions,
                           counter_days=runtime.settings.reputation.counter_days)


def _charts(timeline: Timeline) -> list[Markup]:
    """The timeline as two stacked-bar charts: sends, then bounces by signal group and complaints.

    Two charts, not one: sends run to thousands where bounces run to tens, and one scale would
    flatten the signals that matter.
    """
    unit = "hour" if timeline.span is Span.HOURS else "day"
    sends = charts.Series("sends", tuple(float(v) for v in timeline.sends), COLOURS["sends"])
    signals = [charts.Series(f"{group.replace('_', ' ')} bounces", tuple(float(v) for v in values),
                             COLOURS.get(group, "")) for group, values in timeline.bounces]
    signals.append(charts.Series("complaints", tuple(float(v) for v in timeline.complaints),
                                 COLOURS["complaints"]))
    return [charts.stacked_bars([sends], labels=list(timeline.labels), title=f"Sends per {unit} (UTC)"),
            charts.stacked_bars(signals, labels=list(timeline.labels),
                                title=f"Bounces by signal group and complaints per {unit} (UTC)")]


@blueprint.post(ROUTE, merge_slashes=False)
@admin_required
def act(kind: str, value: str) -> Response:
    """Record an admin's action from one of the page's forms, flash the outcome, go back to the page."""
    identity = _identity(kind, value)
    user = current_user()
    assert user is not None  # admin_required let the request in
    runtime = current_runtime()
    form = request.form
    action = form.get("action", "")
    now = utcnow()
    try:
        with session_scope(runtime) as session:
            result = apply_action(
                session, identity, action, author=user.name, reason=form.get("reason", ""), now=now,
                rules=runtime.settings.reputation.rules,
                limit_per_hour=_whole(form.get("limit_per_hour", "")) if action == "limit" else None,
                expires_at=_expiry(form.get("expires", ""), now) if action != "verdict" else None,
                verdict=form.get("verdict") or None,
                decision_id=_decision_id(form.get("decision_id", "")) if action == "verdict" else None,
                tiers=Tiers.from_settings(runtime.settings.reputation,
                                          runtime.settings.attribution.rules.directory))
            session.commit()
    except ActionError as error:
        flash(f"Nothing was recorded: {error}.", "error")
    else:
        flash(_done(result, identity, user.name, form.get("verdict", "")), "ok")
    return redirect(url_for(".show", kind=identity.kind.value, value=identity.value, range=_span().value))


def _whole(text: str) -> int | None:
    """The form's limit as a number; anything else is None, which apply_action refuses with its sentence
    (as it refuses numbers beyond the column's range)."""
    try:
        number = int(text.strip())
    except ValueError:
        return None
    return number


def _decision_id(text: str) -> int:
    """The history entry a verdict form names (hidden field; only a tampered form gets it wrong)."""
    if not text.strip().isdigit() or int(text) >= _BIGINT:
        raise ActionError("pick the decision of the history to judge")
    return int(text)


def _expiry(text: str, now: datetime) -> datetime | None:
    """One field for both spellings parse_expiry knows: a duration ("24h") or a time (ISO 8601)."""
    if not text.strip():
        return None
    if _DURATION.fullmatch(text):
        return parse_expiry(None, text, now)
    if _TIME.match(text):
        return parse_expiry(text, None, now)
    raise ActionError(f"the expiry must be a duration such as 90m, 24h or 7d, or a time such as "
                      f"2026-12-01T00:00:00Z, got {text!r}")


def _done(result: ActionResult, identity: Identity, author: str, verdict: str) -> str:
    """What happened, in one sentence: the action and the decision now in force."""
    decision = result.decision
    state = f"{decision.state.value} ({decision.action.value})" if decision is not None else "ok (allow)"
    what = result.action.capitalize()
    if result.action == "verdict":
        what = f"Verdict {verdict.replace('_', ' ')}"
    return f"{what} recorded by {author}; {identity} is now {state}."

