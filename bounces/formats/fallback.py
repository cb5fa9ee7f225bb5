"""Last resort: flufl.bounce finds the failed addresses of a bounce nobody else read.

flufl.bounce knows many old formats (GroupWise, Netscape, SMTP32, LLNL...) but
gives only addresses, no status or reason, so it never decides alone: it runs
only on messages that look like a bounce (from a mailer daemon, or with a
delivery-failure subject), and the reason comes from the text around each
address, classified like any other diagnostic.
"""

from __future__ import annotations

import logging
import re

from flufl.bounce import all_failures

from bounces.formats.rfc3464 import explanation_for
from bounces.model import Draft, FormatResult
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "fallback"

log = logging.getLogger(__name__)

_BOUNCE_FROM = re.compile(r"mailer-daemon|postmaster|mail delivery (?:system|subsystem)|mdaemon", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|delivery (?:status|failure|notification|report|problem)|failure notice|"
    r"mail delivery|could not be delivered|non remis|unzustellbar|non recapitabile|"
    r"nondeliverable|delivery has failed|failed delivery",
    re.I,
)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts for the addresses flufl.bounce finds in a bounce-looking message."""
    if not (_BOUNCE_FROM.search(mail.sender) or _BOUNCE_SUBJECT.search(mail.subject)):
        return None
    try:
        permanent, temporary = all_failures(mail.message)
    except Exception:
        log.debug("flufl.bounce could not scan a message", exc_info=True)
        return None
    drafts = []
    for address, action in [(a, "failed") for a in sorted(permanent)] + [
            (a, "delayed") for a in sorted(temporary - permanent)]:
        recipient = address.decode("utf-8", "replace") if isinstance(address, bytes) else str(address)
        if "@" not in recipient:
            continue
        drafts.append(Draft(recipient=recipient, action=action,
                            diagnostic=explanation_for(mail.text, recipient)))
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822"))
