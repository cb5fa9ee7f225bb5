"""The complaint formats, one module each, in the order they are tried.

Most authoritative first, first match wins (flufl.bounce's detector list,
Sisimai's ``order``): the standard MIME reports (RFC 6591 before the
general RFC 5965 ARF, because it is the narrower claim), then the
self-describing SES JSON, then the non-ARF formats recognised by their
sender and wording. Every module's ``parse`` returns None for a message
that is not its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from fbl.formats import apple, arf, jmrp, rfc6591, ses
from fbl.model import FeedbackReport
from rfc822 import Mail

__all__ = ["FORMATS", "Format"]


class Format(NamedTuple):
    """One complaint format: its name (``FeedbackReport.format``) and its parser."""

    name: str
    parse: Callable[[Mail], FeedbackReport | None]


FORMATS: tuple[Format, ...] = (
    Format(rfc6591.NAME, rfc6591.parse),
    Format(arf.NAME, arf.parse),
    Format(ses.NAME, ses.parse),
    Format(jmrp.NAME, jmrp.parse),
    Format(apple.NAME, apple.parse),
)
