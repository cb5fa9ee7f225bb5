"""The /rules page (``rules_page.index``): the rules in force, their firings and their precision.

The figures come from web.dashboard.rules_page_data (docs/dashboard.md, "Rules").
"""

from __future__ import annotations

from flask import Blueprint, render_template

from storage.types import utcnow
from web.dashboard.access import login_required
from web.dashboard.rules_page_data import rules_page
from web.database import current_runtime, session_scope

__all__ = ["blueprint", "index"]

blueprint = Blueprint("rules_page", __name__)


@blueprint.get("/rules")
@login_required
def index() -> str:
    """The rules in force, their firings over four weeks and their precision."""
    runtime = current_runtime()
    with session_scope(runtime, read_only=True) as session:
        page = rules_page(session, runtime.settings.reputation, utcnow())
    return render_template("dashboard/rules_page/index.html", page=page)
