"""Bounce parsing: a raw DSN, NDR or auto-reply -> one Delivery per recipient.

Pure: no Flask, database, config or clock. ``parse`` never raises on bad
input; a message that is not a bounce gives a report without deliveries.
"""

from bounces.core import parse, parse_mail
from bounces.model import BounceReport, Delivery, Draft, FormatResult, Reason, SignalGroup

__all__ = [
    "BounceReport", "Delivery", "Draft", "FormatResult", "Reason", "SignalGroup", "parse", "parse_mail",
]
