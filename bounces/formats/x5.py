"""X5: an unnamed gateway that wraps a Sendmail DSN in its own notice (Sisimai's X5 family).

Sisimai::Lhost::X5 (BSD-2-Clause) recognises it by To "NotificationRecipients"
and a From / Subject MIME-encoded "Mail Delivery Subsystem", then reads the RFC
3464 fields of the wrapped DSN. Our flattened body already exposes that
message/delivery-status part, and the generic reader (``rfc3464``) gets every
field of the corpus sample (lhost-x5-01) right, so this module claims nothing:
it stays in the registry to document the family and returns None.
"""

from __future__ import annotations

from bounces.model import FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "x5"


def parse(mail: Mail) -> FormatResult | None:
    """Always None: the rfc3464 module reads this family (see the module docstring)."""
    return None
