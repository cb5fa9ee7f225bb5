"""Feedback-loop complaints: raw message in, ``FeedbackReport`` out.

Pure: no I/O, no clock, no configuration. ``parse`` never raises on bad
input; a message that is not a complaint gives a report whose ``format``
is empty. The formats and their order are in ``fbl.formats.FORMATS``.
"""

from __future__ import annotations

from dataclasses import replace

from fbl.formats import FORMATS, Format
from fbl.model import FeedbackReport
from rfc822 import Mail, load

__all__ = ["FORMATS", "FeedbackReport", "Format", "parse", "parse_mail"]


def parse(raw: bytes) -> FeedbackReport:
    """Read a raw message as a complaint; ``is_complaint`` is False when it is none."""
    return parse_mail(load(raw))


def parse_mail(mail: Mail) -> FeedbackReport:
    """Read an already loaded message as a complaint (see ``parse``)."""
    for fmt in FORMATS:
        report = fmt.parse(mail)
        if report is not None:
            return replace(report, errors=(*_mail_errors(mail), *report.errors))
    return FeedbackReport(errors=_mail_errors(mail))


def _mail_errors(mail: Mail) -> tuple[str, ...]:
    # A bare JSON body (an SES notification posted to a webhook) is not a
    # MIME message: what the email parser says about its "headers" is noise.
    if mail.raw.lstrip()[:1] == b"{":
        return ()
    return tuple(mail.errors)
