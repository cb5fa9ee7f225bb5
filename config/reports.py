"""The [reports] section: when the scheduler builds last week's report, who gets it, and where it
also writes it as files.

The reports are stored in the database (``weekly_reports``). ``directory`` was where versions before
migration 0006 kept them; it is kept, so that configuration files that set it still load, with a
meaning close to the old one: when set, the weekly job also writes each report there as files (an
export; nothing reads them back), and ``python app.py report import-files`` imports an old archive
from there. Empty (the default): no files.

The report is mailed through [notify]'s SMTP relay (smtp_host, its AUTH and TLS) to ``mail_to``, or
to [notify].admins when ``mail_to`` is empty: the people who get the alerts usually want the
summary too, and a separate list lets a manager get the report without the alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from config.checks import addresses

__all__ = ["REPORTS_INTEGER_KEYS", "REPORTS_SCHEMA", "WEEKDAYS", "ReportsSettings", "reports_settings"]

# APScheduler CronTrigger's day_of_week names.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class ReportsSettings:
    """[reports]: the weekly report's run time (UTC), its export directory and its recipients."""

    weekday: str
    hour: int
    directory: str  # "" for no files
    mail_to: list[str] = field(default_factory=list)  # [] for [notify].admins


def _weekday(value: object) -> str:
    if not isinstance(value, str) or value.strip().lower()[:3] not in WEEKDAYS:
        raise ValueError(f"must be a day of the week: one of {', '.join(WEEKDAYS)}")
    return value.strip().lower()[:3]


def _hour(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 23:
        raise ValueError("must be an hour between 0 and 23 (UTC)")
    return value


def _directory(value: object) -> str:
    if not isinstance(value, str) or (value and not value.strip()):
        raise ValueError('must be a directory path in quotes, such as "var/reports", or "" for no files')
    return value


_MAIL_TO = addresses('["noc@example.net"] ([] for [notify].admins)')

# Validators of each key; they raise ValueError with the end of the sentence after '[reports].key'.
REPORTS_SCHEMA: dict[str, Callable[[object], object]] = {
    "weekday": _weekday,
    "hour": _hour,
    "directory": _directory,
    "mail_to": _MAIL_TO,
}
REPORTS_INTEGER_KEYS = frozenset({"hour"})


def reports_settings(values: Mapping[str, object]) -> ReportsSettings:
    """The validated [reports] section (each value has passed REPORTS_SCHEMA)."""
    return ReportsSettings(weekday=str(values["weekday"]), hour=int(str(values["hour"])),
                           directory=str(values["directory"]), mail_to=list(_MAIL_TO(values["mail_to"])))
