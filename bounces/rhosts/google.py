"""Google (Gmail, Google Workspace MX): status plus wording.

After Sisimai::Rhost::GoogleApps (BSD-2-Clause) with the reasons Sisimai 5 gives the same texts
(requireptr, authfailure, badreputation...); wordings from https://support.google.com/a/answer/3726730.
A rule applies when the status starts with its class and subject and the text contains the phrase.
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"(?:aspmx|gmail-smtp-in)\.l\.google\.com$|(?:^|\.)googlemail\.com$")
R = Reason
_RULES: tuple[tuple[str, str, Reason], ...] = (
    ("4.7.0", "ip not in whitelist for rcpt domain, closing connection.", R.BLOCKED),
    ("4.7.0", "try again later, closing connection.", R.BLOCKED),
    ("5.5.4", "helo/ehlo argument is invalid", R.BLOCKED),
    ("4.7.0", "unusual rate of unsolicited mail originating from your ip address", R.BLOCKED),
    ("5.7.1", "unusual rate of unsolicited mail originating from your ip address", R.BLOCKED),
    ("5.7.1", "not authorized to send email directly to our servers", R.BLOCKED),
    ("5.7.25", "does not have a ptr record setup", R.REQUIREPTR),
    ("5.7.26", "is not accepted due to domain's dmarc policy", R.AUTHFAILURE),
    ("5.7.", "fails to pass authentication checks", R.AUTHFAILURE),
    ("5.7.26", "fails to pass spf checks", R.AUTHFAILURE),
    ("5.7.", "unauthenticated email is not accepted from this domain", R.AUTHFAILURE),
    ("", "very low reputation of the sending", R.BADREPUTATION),
    ("5.6.0", "mail message is malformed. not accepted", R.CONTENTERROR),
    ("5.2.3", "your message exceeded google's message size limits", R.EXCEEDLIMIT),
    ("4.4.2", "timeout - closing connection", R.EXPIRED),
    ("", "the email account that you tried to reach is over quota", R.MAILBOXFULL),
    ("5.7.1", "email quota exceeded", R.MAILBOXFULL),
    ("5.6.0", "message exceeded 50 hops, this may indicate a mail loop", R.NETWORKERROR),
    ("5.7.0", "mail relay denied", R.NORELAYING),
    ("5.7.1", "messages with multiple addresses in from: header are not accepted", R.NOTCOMPLIANTRFC),
    ("5.7.1", "is not rfc 5322 compliant", R.NOTCOMPLIANTRFC),
    ("5.7.1", "has a policy that prohibited", R.POLICYVIOLATION),
    ("5.7.0", "our system detected an illegal attachment on your message", R.POLICYVIOLATION),
    ("5.7.0", "its content presents a potential security issue", R.POLICYVIOLATION),
    ("5.7.0", "mail sending denied", R.REJECTED),
    ("4.7.0", "tls required for rcpt domain, closing connection", R.FAILEDSTARTTLS),
    ("5.7.0", "must issue a starttls command first", R.FAILEDSTARTTLS),
    ("5.5.1", "authentication required.", R.SECURITYERROR),
    ("5.7.1", "application-specific password required", R.SECURITYERROR),
    ("5.7.1", "username and password not accepted", R.SECURITYERROR),
    ("5.7.1", "invalid credentials for relay", R.SECURITYERROR),
    ("5.7.1", "this message is likely unsolicited mail", R.SPAMDETECTED),
    ("5.2.1", "the email account that you tried to reach is disabled", R.SUSPEND),
    ("", "the email account that you tried to reach is inactive", R.SUSPEND),
    ("4.5.0", "smtp protocol violation", R.SYNTAXERROR),
    ("5.5.1", "unrecognized command", R.SYNTAXERROR),
    ("4.3.0", "temporary system problem", R.SYSTEMERROR),
    ("4.7.0", "temporary system problem", R.SYSTEMERROR),
    ("4.4.5", "server busy", R.SYSTEMERROR),
    ("4.3.0", "mail server temporarily rejected message", R.SYSTEMERROR),
    ("4.5.3", "your message has too many recipients", R.TOOMANYCONN),
    ("4.2.1", "is receiving mail too quickly", R.SPEEDING),
    ("", "is receiving mail at a rate that prevents additional messages from being delivered", R.SPEEDING),
    ("4.7.28", "unusual rate of", R.SPEEDING),
    ("5.4.5", "daily sending quota exceeded", R.SPEEDING),
    ("5.1.1", "the email account that you tried to reach does not exist", R.USERUNKNOWN),
    ("5.1.2", "we weren't able to find the recipient domain", R.HOSTUNKNOWN),
)


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for a Gmail / Google Workspace rejection."""
    for status, phrase, found in _RULES:
        if phrase in text and draft.status.startswith(status):
            return found
    return None
