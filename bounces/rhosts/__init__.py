"""Rules of particular receiving providers, chosen by the remote MTA's name or the recipient's domain.

After Sisimai::Rhost and Sisimai::Rhost::* (BSD-2-Clause) and Sisimai 5's provider list. Big
providers publish their own error codes (Cox "AUP#CXBL", Orange "OFR_102", GoDaddy "IB103") or use
one wording for several causes; their rules run before the generic classification and win when
they match. Each provider is one module with ``HOSTS`` (a pattern on a lower-case host name) and
``reason(draft, text)`` (``text`` is the lower-case diagnostic); None means "no rule here".
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import bounces.rhosts.cox as cox
import bounces.rhosts.facebook as facebook
import bounces.rhosts.franceptt as franceptt
import bounces.rhosts.godaddy as godaddy
import bounces.rhosts.google as google
import bounces.rhosts.iua as iua
import bounces.rhosts.kddi as kddi
import bounces.rhosts.microsoft as microsoft
import bounces.rhosts.mimecast as mimecast
import bounces.rhosts.nttdocomo as nttdocomo
import bounces.rhosts.spectrum as spectrum
import bounces.rhosts.tencent as tencent
import bounces.rhosts.yahoo as yahoo
import bounces.rhosts.zoho as zoho
from bounces.model import Draft, Reason

__all__ = ["PROVIDERS", "reason_from_rhost"]

# Most specific first: a host matches at most one provider.
PROVIDERS: tuple[ModuleType, ...] = (
    cox, facebook, franceptt, godaddy, google, iua, kddi, microsoft, mimecast, nttdocomo, spectrum,
    tencent, yahoo, zoho,
)
Rule = Callable[[Draft, str], Reason | None]


def _host(value: str) -> str:
    """'dns; mx.example.org [192.0.2.1]' -> 'mx.example.org' (Sisimai::Fact cleans rhost the same way)."""
    value = value.split(";")[-1].strip().lower()
    value = value.split("=")[-1]
    for char in "[]()<>":
        value = value.replace(char, " ")
    words = value.split()
    return words[0].rstrip(".") if words else ""


def reason_from_rhost(draft: Draft, text: str) -> Reason | None:
    """The reason a provider rule gives for this recipient, or None when no provider rule applies.

    The remote MTA is tried first, then the recipient's domain (Sisimai 5 matches both).
    """
    candidates = (_host(draft.remote_mta), draft.recipient.rpartition("@")[2].lower().strip(">"))
    for host in candidates:
        if not host:
            continue
        for provider in PROVIDERS:
            if provider.HOSTS.search(host):
                rule: Rule = provider.reason
                found = rule(draft, text)
                if found is not None:
                    return found
                break
    return None
