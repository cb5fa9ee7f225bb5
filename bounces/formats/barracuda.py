"""Barracuda Spam Firewall bounces: left to the RFC 3464 reader.

Sisimai::Lhost::Barracuda (BSD-2-Clause) recognises the subject "... our bulk
email filter" and then reads nothing but the RFC 3464 fields of the
delivery-status part, which the shared RFC 3464 reader already does (and it
reads the corpus sample right), so this module recognises nothing of its own.
"""

from __future__ import annotations

from bounces.model import FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "barracuda"


def parse(mail: Mail) -> FormatResult | None:
    """Always None: bounces.formats.rfc3464 reads these."""
    return None
