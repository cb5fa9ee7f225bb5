"""RFC 6591 authentication-failure reports: ARF with ``Feedback-Type: auth-failure``.

The DMARC failure reports that receivers send (RFC 7489 section 7.3) use this
format: OpenDMARC, NetEase and ecelerity-based reporters in arf-18.eml to
arf-20.eml. The fields of RFC 6591 section 3.1 (Auth-Failure, Delivery-Result,
DKIM-Domain, DKIM-Identity, DKIM-Selector, SPF-DNS, Identity-Alignment) are
read by ``fbl.fields`` together with the ARF ones; this module only claims
the reports of that type, so that they are told apart from spam complaints.
Heuristics after Sisimai::ARF (BSD-2-Clause), which reads these reports as ARF.
"""

from __future__ import annotations

from fbl.formats import arf
from fbl.model import FeedbackReport
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "rfc6591"


def parse(mail: Mail) -> FeedbackReport | None:
    """An authentication-failure report; None for any other message, other ARF reports included."""
    parts = arf.find_report(mail)
    if parts is None:
        return None
    report = arf.build(mail, parts, NAME)
    # Only the type decides: RFC 6591 section 3.1 requires Auth-Failure too,
    # but NetEase's reports leave it out (arf-19.eml).
    return report if report.feedback_type == "auth-failure" else None
