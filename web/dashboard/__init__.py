"""The admin dashboard: server-rendered pages (Flask + Jinja, little JavaScript) for people.

The API (/v1/...) is for programs and takes bearer tokens; the dashboard is for admins and
viewers who log in with a user name and a password (``python app.py user add``), keep a session
cookie, and post forms that carry a CSRF token (web.dashboard.access).

One blueprint per page, each in its own module:

- ``account``: /login, /logout;
- ``overview``: / (who is stopped now and why, top identities, provider-wide rates, IP health);
- ``identity_page``: /identities/<kind>/<value> (timeline, decisions, overrides, actions);
- ``events``: /events, /quarantine, /messages/<id> (search, raw message and parse, re-process);
- ``rules_page``: /rules (rules in force, how often each fired, precision from verdicts);
- ``archive``: /reports (the weekly reports);
- ``deliveries``: /notifications (the delivery log of webhooks and e-mails).

Templates live in ``templates/dashboard/`` and extend ``dashboard/base.html``; charts are inline
SVG from web.dashboard.charts; every time is shown through the ``utc`` filter (web.dashboard.times).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Flask

from web.dashboard import (
    access,
    account,
    archive,
    deliveries,
    events,
    identity_page,
    overview,
    rules_page,
    times,
)

if TYPE_CHECKING:
    from ingest.runtime import Runtime

__all__ = ["init_dashboard"]

# Templates and the stylesheet of every page.
assets = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/static/dashboard")

PAGES = (account, overview, identity_page, events, rules_page, archive, deliveries)


def init_dashboard(app: Flask, runtime: Runtime) -> None:
    """Register the dashboard's pages on ``app`` (after the API: see access.init_app for CSRF)."""
    app.register_blueprint(assets)
    app.add_template_filter(times.utc, "utc")  # the one form of a time on every page
    for page in PAGES:
        app.register_blueprint(page.blueprint)
    access.init_app(app, runtime)
