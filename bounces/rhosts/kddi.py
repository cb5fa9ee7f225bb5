"""au by KDDI (ezweb.ne.jp, au.com): "550 <addr>: User unknown" versus "550 : User unknown".

After Sisimai::Rhost::KDDI (BSD-2-Clause): KDDI answers an empty address in the reply when the
recipient's own filter refused the sender, the address when it does not exist.
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"(?:^|\.)(?:ezweb\.ne\.jp|au\.com)$")


def reason(draft: Draft, text: str) -> Reason | None:
    """userunknown or filtered from KDDI's reply."""
    if "550 : user unknown" in text:
        return Reason.FILTERED
    if ">: user unknown" in text:
        return Reason.USERUNKNOWN
    return None
