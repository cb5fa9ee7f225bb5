"""Microsoft: Exchange Online (outlook.com, protection.outlook.com) and Exchange Server.

After Sisimai::Rhost::ExchangeOnline (BSD-2-Clause), with Sisimai 5's reasons for the same texts
(5.7.509 DMARC -> authfailure, 4.7.650 IP reputation -> badreputation, 5.7.25 -> requireptr);
wordings from https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online.
A rule is (status, lowest, highest, phrase, reason): with lowest == highest == 0 the status must be
equal; otherwise it is a prefix and the last number of the status must lie in [lowest, highest].
"""

from __future__ import annotations

import re

from bounces.model import Draft, Reason

__all__ = ["HOSTS", "reason"]

HOSTS = re.compile(r"\.(?:prod|protection)\.outlook\.com$|(?:^|\.)(?:outlook\.com|hotmail\.com|live\.com"
                   r"|msn\.com|onmicrosoft\.com|exchangelabs\.com)$")
R = Reason
_RULES: tuple[tuple[str, int, int, str, Reason], ...] = (
    ("5.7.509", 0, 0, "does not pass dmarc verification", R.AUTHFAILURE),
    ("5.7.515", 0, 0, "doesn't meet the required authentication level", R.AUTHFAILURE),
    ("5.7.23", 0, 0, "the message was rejected because of sender policy framework violation", R.AUTHFAILURE),
    ("4.7.26", 0, 0, "must pass either spf or dkim validation", R.AUTHFAILURE),
    ("4.7.650", 0, 0, "has been temporarily rate limited due to ip reputation", R.BADREPUTATION),
    ("5.7.25", 0, 0, "must have a reverse dns record", R.REQUIREPTR),
    ("4.4.2", 0, 0, "connection dropped", R.BLOCKED),
    ("4.7.", 850, 899, "access denied, please try again later", R.BLOCKED),
    ("5.7.506", 0, 0, "access denied, bad helo", R.BLOCKED),
    ("5.7.507", 0, 0, "access denied, rejected by recipient", R.BLOCKED),
    ("5.7.510", 0, 0, "does not accept email over ipv6", R.BLOCKED),
    ("5.7.511", 0, 0, "access denied, banned sender", R.BLOCKED),
    ("5.7.513", 0, 0, "using customer block list", R.BLOCKED),
    ("5.7.", 606, 649, "access denied, banned sending ip ", R.BLOCKED),
    ("4.7.", 500, 699, "access denied, please try again later", R.BLOCKED),
    ("5.7.1", 0, 0, "part of their network is on our block list (s3150)", R.BLOCKED),
    ("5.3.0", 0, 0, "too many related errors", R.CONTENTERROR),
    ("5.6.11", 0, 0, "invalid characters", R.CONTENTERROR),
    ("5.2.3", 0, 0, "message too large for this recipient", R.EXCEEDLIMIT),
    ("4.4.1", 0, 0, "connection timed out", R.EXPIRED),
    ("4.4.7", 0, 0, "message delayed", R.EXPIRED),
    ("4.4.7", 0, 0, "message expired", R.EXPIRED),
    ("5.4.300", 0, 0, "message expired", R.EXPIRED),
    ("5.2.2", 0, 0, "mailbox full", R.MAILBOXFULL),
    ("5.3.4", 0, 0, "message size exceeds fixed maximum message size", R.MESGTOOBIG),
    ("5.3.4", 0, 0, "message too big for system", R.MESGTOOBIG),
    ("5.4.4", 0, 0, "smtpsend.dns.nonexistentdomain; nonexistent domain", R.NETWORKERROR),
    ("5.4.6", 0, 0, "hop count exceeded - possible mail loop", R.NETWORKERROR),
    ("4.4.316", 0, 0, "connection refused", R.NETWORKERROR),
    ("5.4.6", 0, 0, "routing loop detected", R.NETWORKERROR),
    ("5.4.14", 0, 0, "routing loop detected", R.NETWORKERROR),
    ("5.7.1", 0, 0, "unable to relay", R.NORELAYING),
    ("5.4.1", 0, 0, "relay access denied", R.NORELAYING),
    ("5.7.64", 0, 0, "tenantattribution; relay access denied", R.NORELAYING),
    ("4.3.2", 0, 0, "system not accepting network messages", R.NOTACCEPT),
    ("5.0.350", 0, 0, "x-dg-ref header is too long", R.POLICYVIOLATION),
    ("5.0.350", 0, 0, "policy violation detected (as345)", R.POLICYVIOLATION),
    ("5.7.", 900, 999, "delivery not authorized, message refused", R.POLICYVIOLATION),
    ("5.1.7", 0, 0, "invalid address", R.REJECTED),
    ("5.1.7", 0, 0, "unknown sender address", R.REJECTED),
    ("5.1.0", 0, 0, "sender denied", R.REJECTED),
    ("5.1.8", 0, 0, "access denied, bad outbound sender", R.REJECTED),
    ("5.7.1", 0, 0, "delivery not authorized", R.REJECTED),
    ("5.7.12", 0, 0, "sender was not authenticated by organization", R.REJECTED),
    ("5.7.", 501, 503, "access denied, spam abuse detected", R.REJECTED),
    ("5.7.512", 0, 0, "message must be rfc 5322 section 3.6.2 compliant", R.NOTCOMPLIANTRFC),
    ("5.7.750", 0, 0, "client blocked from sending from unregistered domains", R.REJECTED),
    ("5.7.3", 0, 0, "cannot achieve exchange server authentication", R.SECURITYERROR),
    ("4.7.321", 0, 0, "starttls-not-supported", R.FAILEDSTARTTLS),
    ("5.7.321", 0, 0, "starttls-not-supported", R.FAILEDSTARTTLS),
    ("5.7.1", 0, 0, "client was not authenticated", R.SECURITYERROR),
    ("5.7.57", 0, 0, "client was not authenticated to send anonymous mail", R.SECURITYERROR),
    ("5.2.1", 0, 0, "content filter agent quarantined this message", R.SPAMDETECTED),
    ("5.7.504", 0, 0, "recipient address rejected: access denied", R.SUSPEND),
    ("5.7.505", 0, 0, "access denied, banned recipient", R.SUSPEND),
    ("5.2.1", 0, 0, "mailbox cannot be accessed", R.SUSPEND),
    ("5.3.3", 0, 0, "unrecognized command", R.SYNTAXERROR),
    ("5.5.2", 0, 0, "send hello first", R.SYNTAXERROR),
    ("4.3.2", 0, 0, "service not available", R.SYSTEMERROR),
    ("5.3.5", 0, 0, "system incorrectly configured", R.SYSTEMERROR),
    ("5.2.14", 0, 0, "misconfigured forwarding address", R.SYSTEMERROR),
    ("4.7.500", 0, 0, "server busy. please try again later from ", R.SYSTEMERROR),
    ("4.3.1", 0, 0, "insufficient system resources", R.SYSTEMFULL),
    ("5.5.3", 0, 0, "too many recipients", R.TOOMANYCONN),
    ("4.5.3", 0, 0, "too many recipients", R.TOOMANYCONN),
    ("5.2.122", 0, 0, "the recipient has exceeded their limit for", R.TOOMANYCONN),
    ("5.2.2", 0, 0, "submission quota exceeded", R.SPEEDING),
    ("5.7.508", 0, 0, "has exceeded permitted limits within", R.SPEEDING),
    ("5.7.", 700, 749, "access denied, tenant has exceeded threshold", R.SPEEDING),
    ("5.7.", 700, 749, "access denied, traffic not accepted from this ip", R.BLOCKED),
    ("5.1.1", 0, 0, "resolver.adr.exrecipnotfound; not found", R.USERUNKNOWN),
    ("5.1.1", 0, 0, "user unknown", R.USERUNKNOWN),
    ("5.1.3", 0, 0, "storedrv.submit; invalid recipient address", R.USERUNKNOWN),
    ("5.1.1", 0, 0, "bad destination mailbox address", R.USERUNKNOWN),
    ("5.1.10", 0, 0, "recipient not found", R.USERUNKNOWN),
    ("5.4.1", 0, 0, "recipient address rejected: access denied", R.USERUNKNOWN),
    ("5.5.0", 0, 0, "requested action not taken: mailbox unavailable", R.USERUNKNOWN),
    ("5.1.2", 0, 0, "invalid x.400 address", R.USERUNKNOWN),
)


def _applies(status: str, code: str, lowest: int, highest: int) -> bool:
    if lowest == highest == 0:
        return status == code
    if not status.startswith(code):
        return False
    last = status.rpartition(".")[2]
    return last.isdigit() and lowest <= int(last) <= highest


def reason(draft: Draft, text: str) -> Reason | None:
    """The reason for an Exchange Online / Exchange Server rejection (needs a real status)."""
    if not text or not draft.status:
        return None
    for code, lowest, highest, phrase, found in _RULES:
        if phrase in text and _applies(draft.status, code, lowest, highest):
            return found
    return None
