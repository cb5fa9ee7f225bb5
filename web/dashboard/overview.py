"""The Overview page (/): where reputation stands, at a glance.

Who is throttled, paused, held or blocked now and why; the identities with the most complaints,
block bounces and sends over the last 24 hours; the provider-wide complaint and bounce rates per
day for 30 days against the receivers' thresholds; the outbound IPs' block bounces and the
blocklists named. The figures come from web.dashboard.overview_data (docs/dashboard.md says where
each one comes from); this module only renders them.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from markupsafe import Markup

from reports.build import Thresholds
from storage.types import utcnow
from web.dashboard import charts
from web.dashboard.access import login_required
from web.dashboard.charts import Series
from web.dashboard.overview_data import Overview, overview
from web.database import current_runtime, session_scope

__all__ = ["blueprint", "rate_charts", "threshold_lines"]

blueprint = Blueprint("overview", __name__)

_Lines = tuple[tuple[str, float], ...]


def _percent(rate: float) -> str:
    """0.003 -> '0.3 %', 0.1 -> '10 %': the way the receivers write their limits."""
    return f"{rate * 100:g} %"


def threshold_lines(thresholds: Thresholds) -> tuple[_Lines, _Lines]:
    """The named lines drawn on the complaint chart and on the bounce chart.

    Gmail's and Yahoo's bulk-sender rules (February 2024) ask for a complaint rate below 0.3 %;
    Amazon SES reviews an account at a 5 % bounce rate and may pause it at 10 %. The values are
    those of the rules in force (reports.build.Thresholds.from_rules), so the label says the value.
    """
    complaint = ((f"Gmail/Yahoo {_percent(thresholds.complaint_rate)}", thresholds.complaint_rate),)
    bounce = ((f"SES review {_percent(thresholds.bounce_review)}", thresholds.bounce_review),
              (f"SES pause {_percent(thresholds.bounce_pause)}", thresholds.bounce_pause))
    return complaint, bounce


def rate_charts(data: Overview) -> tuple[Markup, Markup]:
    """The complaint-rate and bounce-rate line charts (days without sends leave a gap)."""
    labels = tuple(day.day.isoformat() for day in data.days)
    complaint_lines, bounce_lines = threshold_lines(data.thresholds)
    complaint = charts.line_chart(
        [Series("complaint rate", tuple(day.figures.complaint_rate for day in data.days))],
        labels=labels, thresholds=complaint_lines, percent=True,
        title="Complaint rate per day (complaints / sends)")
    bounce = charts.line_chart(
        [Series("bounce rate", tuple(day.figures.bounce_rate for day in data.days))],
        labels=labels, thresholds=bounce_lines, percent=True,
        title="Bounce rate per day (hard bounces / sends)")
    return complaint, bounce


@blueprint.get("/")
@login_required
def index() -> str:
    """The Overview page, as of now."""
    runtime = current_runtime()
    with session_scope(runtime, read_only=True) as session:
        data = overview(session, utcnow(), runtime.settings.reputation.rules)
    complaint_chart, bounce_chart = rate_charts(data)
    complaint_lines, bounce_lines = threshold_lines(data.thresholds)
    return render_template("dashboard/overview/index.html", data=data, complaint_chart=complaint_chart,
                           bounce_chart=bounce_chart, complaint_lines=complaint_lines,
                           bounce_lines=bounce_lines)
