"""Mimecast (mimecast.com): reply code plus wording.

After Sisimai::Rhost::Mimecast (BSD-2-Clause); wordings from
https://community.mimecast.com/s/article/Mimecast-SMTP-Error-Codes-842605754.
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"(?:^|\.)mimecast\.com$")
R = Reason
_RULES: tuple[tuple[str, str, Reason], ...] = (
    ("421", "sender address blocked", R.BLOCKED),
    ("451", "recipient temporarily unavailable", R.BLOCKED),
    ("451", "ip temporarily blacklisted", R.BLOCKED),
    ("451", "internal resources are temporarily unavailable", R.BLOCKED),
    ("550", "local ct ip reputation - (reject)", R.BADREPUTATION),
    ("550", "spf sender invalid - envelope rejected", R.AUTHFAILURE),
    ("550", "dkim sender invalid - envelope rejected", R.AUTHFAILURE),
    ("550", "dmarc sender invalid - envelope rejected", R.AUTHFAILURE),
    ("554", "maximum email size exceeded", R.MESGTOOBIG),
    ("554", "mail loop detected", R.NETWORKERROR),
    ("451", "open relay not allowed", R.NORELAYING),
    ("451", "account inbounds disabled", R.NOTACCEPT),
    ("451", "account outbounds disabled", R.ONHOLD),
    ("451", "hostname is not authorized", R.ONHOLD),
    ("550", "journal message past expiration", R.ONHOLD),
    ("550", "anti-spoofing policy - inbound not allowed", R.POLICYVIOLATION),
    ("550", "rejected by header-based anti-spoofing policy", R.POLICYVIOLATION),
    ("550", "message bounced due to content examination policy", R.POLICYVIOLATION),
    ("554", "host network not allowed", R.POLICYVIOLATION),
    ("550", "administrative prohibition envelope blocked", R.REJECTED),
    ("550", "envelope blocked – user entry", R.REJECTED),
    ("550", "envelope blocked – user domain entry", R.REJECTED),
    ("550", "rejected by header-based manually blocked senders", R.REJECTED),
    ("550", "rejected by header-based blocked senders", R.REJECTED),
    ("550", "envelope rejected - block policy for envelope from address", R.REJECTED),
    ("535", "incorrect authentication data", R.SECURITYERROR),
    ("550", "submitter failed to disabled", R.SECURITYERROR),
    ("553", "this route requires encryption (tls)", R.FAILEDSTARTTLS),
    ("553", "this route requires tls version 1.2 or greater", R.FAILEDSTARTTLS),
    ("553", "this route requires high-strength ciphers", R.FAILEDSTARTTLS),
    ("554", "configuration is invalid for this certificate", R.SECURITYERROR),
    ("451", "unable to process connection at this time", R.SYSTEMERROR),
    ("451", "message ended early", R.SYSTEMERROR),
    ("451", "unable to process command", R.SYSTEMERROR),
    ("451", "unable to process an email at this time", R.SYSTEMERROR),
    ("451", "account service is temporarily unavailable", R.TOOMANYCONN),
    ("452", "too many recipients", R.TOOMANYCONN),
    ("550", "exceeding outbound thread limit", R.TOOMANYCONN),
    ("501", "invalid address", R.USERUNKNOWN),
    ("503", "user unknown", R.USERUNKNOWN),
    ("550", "invalid recipient", R.USERUNKNOWN),
    ("554", "email rejected due to security policies", R.VIRUSDETECTED),
)


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for a Mimecast rejection: the reply code and the wording must both match."""
    reply = draft.reply_code
    for code, phrase, found in _RULES:
        if reply == code and phrase in text:
            return found
    return None
