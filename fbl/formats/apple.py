"""Apple Mail / iCloud "Unsubscribe" requests: an opt-out, not an ARF report.

When a user presses Unsubscribe in Apple Mail (macOS, iOS, iCloud web), Mail
sends a message from the user to the ``mailto:`` address of the list's
``List-Unsubscribe`` header (RFC 2369 section 3.2) and marks it with
``X-Apple-Unsubscribe: true``. It is the recipient's request to stop the
mail, so it comes out as feedback type ``opt-out`` about the sender of the
message: the complained-about recipient is the unsubscriber (From), and the
address it was sent to is kept as the reported ``mailto:`` URI, since it
often encodes the list or the original recipient. Only the header counts:
an ordinary "unsubscribe" e-mail typed by a person is not a complaint.
Heuristics after Sisimai 5's ARF module (BSD-2-Clause), which reads the
same header; the corpus has no such message (rhost-apple-*.eml are bounces).
"""

from __future__ import annotations

from fbl.model import FeedbackReport
from rfc822 import Mail, first_address

__all__ = ["NAME", "parse"]

NAME = "apple"


def parse(mail: Mail) -> FeedbackReport | None:
    """An Apple Mail unsubscribe request; None for any other message."""
    if mail.header("X-Apple-Unsubscribe").strip().lower() != "true":
        return None
    if mail.content_type == "multipart/report":
        # A bounce of such a request carries the header in the returned copy
        # only, but a report is never the request itself.
        return None
    unsubscriber = first_address(mail.header("From"))
    target = first_address(mail.header("To"))
    errors = () if unsubscriber else ("apple: the unsubscribe request has no From address",)
    return FeedbackReport(
        format=NAME,
        feedback_type="opt-out",
        user_agent=mail.header("X-Mailer"),
        original_rcpt_to=(unsubscriber,) if unsubscriber else (),
        arrival_date=mail.header("Date"),
        reported_uri=(f"mailto:{target}",) if target else (),
        reporter=unsubscriber,
        date=mail.header("Date"),
        errors=errors,
    )
