"""The reports archive: /reports (``archive.index``), /reports/<week> (``archive.show``), and the
admins' /reports/build (``archive.build``).

``show`` serves a stored report (a row of ``weekly_reports``, the same on every node):
``/reports/2026-W48`` the HTML, inline; ``/reports/2026-W48.csv`` and ``.json`` (or
``?format=csv|json``) as downloads. The HTML was generated from what senders
control (identity values, bounce texts): reports/render.py escapes it, and it is served under a
Content-Security-Policy that lets nothing run, load or submit (a sandbox with inline styles and
data: images only, which is all a report uses), in case an escape is ever missed.

``build`` builds this week's report so far, or last week's, now, with
``reports.archive.build_and_store``: the same row the weekly job writes (it replaces the week's).
The mailing of a week is the weekly job's: a build here does not mail.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from reports.archive import build_and_store
from reports.build import last_week
from storage import session_factory
from storage.types import utcnow
from web.dashboard.access import admin_required, error_page, login_required
from web.dashboard.archive_data import FORMATS, split_name, stored_reports, stored_text, this_week
from web.database import current_runtime, session_scope

__all__ = ["REPORT_POLICY", "blueprint", "build", "index", "show"]

blueprint = Blueprint("archive", __name__)

# No script, no fetch, no form, no frame, no base; inline styles and data: images (the report's).
REPORT_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
                 "form-action 'none'; frame-ancestors 'none'; sandbox")


@blueprint.get("/reports")
@login_required
def index() -> str:
    """The stored weekly reports, newest first; admins get the build buttons."""
    now = utcnow()
    with session_scope(current_runtime(), read_only=True) as session:
        reports = stored_reports(session)
    return render_template("dashboard/archive/index.html", reports=reports, this_week=this_week(now),
                           last_week=last_week(now))


@blueprint.get("/reports/<name>")
@login_required
def show(name: str) -> Response | tuple[str, int]:
    """One stored report: HTML inline under REPORT_POLICY, CSV and JSON as downloads; 404 if absent."""
    try:
        week, extension = split_name(name, request.args.get("format"))
    except ValueError as error:
        return error_page(404, "No such report", f"{error}. Reports are named by ISO week, such as "
                                                 "/reports/2026-W48, /reports/2026-W48.csv or .json.")
    with session_scope(current_runtime(), read_only=True) as session:
        stored = stored_text(session, week, extension)
    if stored is None:
        return error_page(404, "No such report", f"There is no stored {extension.upper()} report of {week}. "
                          "An admin can build this week's or last week's from the reports page; "
                          f"python app.py report --week {week} prints that week's on the server.")
    inline = extension == "html"
    response = Response(stored.text, mimetype=FORMATS[extension])
    response.headers.set("Content-Disposition", "inline" if inline else "attachment",
                         filename=f"ricochet-report-{week}.{extension}")
    response.last_modified = stored.built_at
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-cache"
    if inline:
        response.headers["Content-Security-Policy"] = REPORT_POLICY
    return response


@blueprint.post("/reports/build")
@admin_required
def build() -> Response | tuple[str, int]:
    """Build and store this week's report so far (``week=this``) or last week's (``week=last``)."""
    now = utcnow()
    weeks = {"this": this_week(now), "last": last_week(now)}
    week = weeks.get(request.form.get("week", ""))
    if week is None:
        return error_page(400, "Which week?", "The form names no week: use the buttons of the reports page "
                                              "(this week or last week).")
    runtime = current_runtime()
    # A report is a long read: a deferred SQLite transaction, so it does not hold the write lock.
    readers = session_factory(runtime.engine.execution_options(sqlite_begin="DEFERRED"))
    build_and_store(readers, week, runtime.settings.reputation.rules, now)
    flash(f"Built the report of {week}.", "ok")
    return redirect(url_for("archive.index"), code=303)
