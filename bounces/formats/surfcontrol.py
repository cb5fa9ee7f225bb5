"""SurfControl E-mail Filter bounces: left to the RFC 3464 reader.

Sisimai::Lhost::SurfControl (BSD-2-Clause) reads these (X-SEF-Processed,
X-Mailer "SurfControl E-mail Filter") as RFC 3464 fields plus the readable
lines "Addressed To: user@domain" and ``user@domain: [ip], reply``. The
delivery-status part carries the same recipient and reply, and the shared
RFC 3464 reader reads every corpus sample right, so this module recognises
nothing of its own.
"""

from __future__ import annotations

from bounces.model import FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "surfcontrol"


def parse(mail: Mail) -> FormatResult | None:
    """Always None: bounces.formats.rfc3464 reads these."""
    return None
