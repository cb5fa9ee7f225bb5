"""The notification delivery log: /notifications (``deliveries.index``), read by viewers and admins.

``?status=pending|delivered|failed`` filters it, ``?before=<id>`` pages back through it; the rows
come from web.dashboard.deliveries_data (docs/dashboard.md, "Notifications").
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from storage.notify_models import DeliveryStatus
from web.dashboard.access import error_page, login_required
from web.dashboard.deliveries_data import delivery_log
from web.database import current_runtime, session_scope

__all__ = ["blueprint", "index"]

blueprint = Blueprint("deliveries", __name__)


@blueprint.get("/notifications")
@login_required
def index() -> str | tuple[str, int]:
    """The deliveries of webhooks and e-mails, newest first, optionally of one status."""
    wanted = request.args.get("status") or None
    try:
        status = DeliveryStatus(wanted) if wanted else None
    except ValueError:
        return error_page(400, "Unknown status", f"{wanted!r} is not a delivery status; filter by one of "
                          f"{', '.join(state.value for state in DeliveryStatus)}.")
    before = request.args.get("before", type=int)
    with session_scope(current_runtime(), read_only=True) as session:
        log = delivery_log(session, status, before)
    return render_template("dashboard/deliveries/index.html", log=log,
                           statuses=[state.value for state in DeliveryStatus])
