"""How every dashboard page shows a time: the ``utc`` template filter (registered by init_dashboard).

People compare times across pages (an event, the pause it caused, the webhook that told of it),
so there is one form, UTC to the minute, "2026-11-30T04:38Z", in a ``<time>`` element whose
``datetime`` attribute keeps the exact instant (to the second, for a tooltip or a script).
The database gives aware times on PostgreSQL and naive UTC ones on SQLite; the data modules
sometimes hand over ISO strings (events_data, identity_data): all of them are accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup

__all__ = ["SHOWN", "utc"]

SHOWN = "%Y-%m-%dT%H:%MZ"  # what people read
EXACT = "%Y-%m-%dT%H:%M:%SZ"  # the datetime attribute


def _instant(at: datetime | str) -> datetime:
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    # SQLite's DateTime columns come back naive: Ricochet stores UTC only.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc(at: datetime | str | None) -> Markup:
    """``at`` as ``<time datetime="2026-11-30T04:38:01Z">2026-11-30T04:38Z</time>``; nothing for None, ""."""
    if at is None or at == "":
        return Markup("")
    moment = _instant(at)
    return Markup('<time datetime="{}">{}</time>').format(moment.strftime(EXACT), moment.strftime(SHOWN))
