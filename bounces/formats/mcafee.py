"""McAfee Email and Web Security Appliance bounces: left to the RFC 3464 reader.

Sisimai::Lhost::McAfee (BSD-2-Clause) reads these "Delivery Status" messages
(X-NAI-Header "Modified by McAfee ...") as an RFC 3464 report plus a readable
line ``<user@domain>   (Unknown user ...)``. The shared RFC 3464 reader
already does both (fields first, the readable line about the recipient when
the Diagnostic-Code is missing), and it reads every corpus sample right, so
this module recognises nothing of its own.
"""

from __future__ import annotations

from bounces.model import FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "mcafee"


def parse(mail: Mail) -> FormatResult | None:
    """Always None: bounces.formats.rfc3464 reads these."""
    return None
