"""SMTP enhanced status codes (RFC 3463) and reply codes (RFC 5321): finding them, and what they mean.

Heuristics after Sisimai::SMTP::Status, Sisimai::SMTP::Reply and Sisimai::SMTP::Error
(BSD-2-Clause), with the status -> reason table of Sisimai 5 (authfailure, requireptr,
failedstarttls...). The codes are those of the IANA "SMTP Enhanced Status Codes" registry; each
entry names the RFC that defines it.
"""

from __future__ import annotations

import re

from bounces.model import Reason

__all__ = [
    "STATUS_REASONS",
    "find_reply_code",
    "find_status",
    "is_permanent",
    "pseudo_status",
    "reason_for_status",
]

R = Reason
# Status code -> reason. Codes that say too little (x.0.0, 4.3.0, 4.4.0, 4.5.0, 4.7.0...) are left
# out on purpose: the reply code and the text decide those (Sisimai::SMTP::Status StandardCode).
STATUS_REASONS: dict[str, Reason] = {
    "2.1.5": R.DELIVERED,       # RFC 3463: destination address valid
    # Temporary (4.x.x)
    "4.1.6": R.HASMOVED,        # RFC 3463: mailbox has moved, no forwarding address
    "4.1.7": R.REJECTED,        # RFC 3463: bad sender's mailbox address syntax
    "4.1.8": R.REJECTED,        # RFC 3463: bad sender's system address
    "4.1.9": R.SYSTEMERROR,     # RFC 3886: message relayed to non-compliant mailer
    "4.2.1": R.SUSPEND,         # RFC 3463: mailbox disabled, not accepting messages
    "4.2.2": R.MAILBOXFULL,     # RFC 3463: mailbox full
    "4.2.3": R.EXCEEDLIMIT,     # RFC 3463: message length exceeds administrative limit
    "4.2.4": R.FILTERED,        # RFC 3463: mailing list expansion problem
    "4.3.1": R.SYSTEMFULL,      # RFC 3463: mail system full
    "4.3.2": R.NOTACCEPT,       # RFC 3463: system not accepting network messages
    "4.3.3": R.SYSTEMERROR,     # RFC 3463: system not capable of selected features
    "4.3.5": R.SYSTEMERROR,     # RFC 3463: system incorrectly configured
    "4.4.1": R.EXPIRED,         # RFC 3463: no answer from host
    "4.4.2": R.NETWORKERROR,    # RFC 3463: bad connection
    "4.4.4": R.NETWORKERROR,    # RFC 3463: unable to route
    "4.4.5": R.SYSTEMFULL,      # RFC 3463: mail system congestion
    "4.4.6": R.NETWORKERROR,    # RFC 3463: routing loop detected
    "4.4.7": R.EXPIRED,         # RFC 3463: delivery time expired
    "4.5.3": R.SYSTEMERROR,     # RFC 3463: too many recipients
    "4.5.5": R.SYSTEMERROR,     # RFC 3463: wrong protocol version
    "4.6.0": R.CONTENTERROR,    # RFC 3463: other or undefined media error
    "4.6.2": R.CONTENTERROR,    # RFC 3463: conversion required and prohibited
    "4.6.5": R.CONTENTERROR,    # RFC 3463: conversion failed
    "4.7.1": R.BLOCKED,         # RFC 3463: delivery not authorized, message refused
    "4.7.2": R.BLOCKED,         # RFC 3463: mailing list expansion prohibited
    "4.7.5": R.SECURITYERROR,   # RFC 3463: cryptographic failure
    "4.7.6": R.SECURITYERROR,   # RFC 3463: cryptographic algorithm not supported
    "4.7.7": R.SECURITYERROR,   # RFC 3463: message integrity failure
    "4.7.12": R.SECURITYERROR,  # RFC 4954: a password transition is needed
    "4.7.15": R.SECURITYERROR,  # RFC 6710: priority level is too low
    "4.7.16": R.MESGTOOBIG,     # RFC 6710: message is too big for the specified priority
    "4.7.24": R.AUTHFAILURE,    # RFC 7372: SPF validation error
    "4.7.25": R.REQUIREPTR,     # RFC 7372: reverse DNS validation failed
    "4.7.28": R.SPEEDING,       # IANA registry: mail flood detected
    # Permanent (5.x.x)
    "5.1.0": R.USERUNKNOWN,     # RFC 3463: other address status
    "5.1.1": R.USERUNKNOWN,     # RFC 3463: bad destination mailbox address
    "5.1.2": R.HOSTUNKNOWN,     # RFC 3463: bad destination system address
    "5.1.3": R.USERUNKNOWN,     # RFC 3463: bad destination mailbox address syntax
    "5.1.4": R.FILTERED,        # RFC 3463: destination mailbox address ambiguous
    "5.1.6": R.HASMOVED,        # RFC 3463: mailbox has moved, no forwarding address
    "5.1.7": R.REJECTED,        # RFC 3463: bad sender's mailbox address syntax
    "5.1.8": R.REJECTED,        # RFC 3463: bad sender's system address
    "5.1.9": R.SYSTEMERROR,     # RFC 3886: message relayed to non-compliant mailer
    "5.1.10": R.NOTACCEPT,      # RFC 7505: recipient address has null MX
    "5.2.0": R.FILTERED,        # RFC 3463: other or undefined mailbox status
    "5.2.1": R.FILTERED,        # RFC 3463: mailbox disabled, not accepting messages
    "5.2.2": R.MAILBOXFULL,     # RFC 3463: mailbox full
    "5.2.3": R.EXCEEDLIMIT,     # RFC 3463: message length exceeds administrative limit
    "5.2.4": R.FILTERED,        # RFC 3463: mailing list expansion problem
    "5.3.0": R.SYSTEMERROR,     # RFC 3463: other or undefined mail system status
    "5.3.1": R.SYSTEMFULL,      # RFC 3463: mail system full
    "5.3.2": R.NOTACCEPT,       # RFC 3463: system not accepting network messages
    "5.3.3": R.SYSTEMERROR,     # RFC 3463: system not capable of selected features
    "5.3.4": R.MESGTOOBIG,      # RFC 3463: message too big for system
    "5.3.5": R.SYSTEMERROR,     # RFC 3463: system incorrectly configured
    "5.4.0": R.NETWORKERROR,    # RFC 3463: other or undefined network or routing status
    "5.4.3": R.SYSTEMERROR,     # RFC 3463: directory server failure
    "5.4.4": R.HOSTUNKNOWN,     # RFC 3463: unable to route
    "5.5.3": R.TOOMANYCONN,     # RFC 3463: too many recipients
    "5.5.4": R.SYSTEMERROR,     # RFC 3463: invalid command arguments
    "5.5.5": R.SYSTEMERROR,     # RFC 3463: wrong protocol version
    "5.5.6": R.SECURITYERROR,   # RFC 4954: authentication exchange line is too long
    "5.6.0": R.CONTENTERROR,    # RFC 3463: other or undefined media error
    "5.6.1": R.CONTENTERROR,    # RFC 3463: media not supported
    "5.6.2": R.CONTENTERROR,    # RFC 3463: conversion required and prohibited
    "5.6.3": R.CONTENTERROR,    # RFC 3463: conversion required but not supported
    "5.6.5": R.CONTENTERROR,    # RFC 3463: conversion failed
    "5.6.6": R.CONTENTERROR,    # RFC 4468: message content not available
    "5.6.7": R.CONTENTERROR,    # RFC 6531: non-ASCII addresses not permitted
    "5.6.8": R.CONTENTERROR,    # RFC 6531: UTF-8 string reply required but not permitted
    "5.6.9": R.CONTENTERROR,    # RFC 6531: UTF-8 header cannot be transferred
    "5.7.0": R.SECURITYERROR,   # RFC 3463: other or undefined security status
    "5.7.1": R.SECURITYERROR,   # RFC 3463: delivery not authorized, message refused
    "5.7.2": R.SECURITYERROR,   # RFC 3463: mailing list expansion prohibited
    "5.7.3": R.SECURITYERROR,   # RFC 3463: security conversion required but not possible
    "5.7.4": R.SECURITYERROR,   # RFC 3463: security features not supported
    "5.7.5": R.SECURITYERROR,   # RFC 3463: cryptographic failure
    "5.7.6": R.SECURITYERROR,   # RFC 3463: cryptographic algorithm not supported
    "5.7.7": R.SECURITYERROR,   # RFC 3463: message integrity failure
    "5.7.8": R.SECURITYERROR,   # RFC 4954: authentication credentials invalid
    "5.7.9": R.SECURITYERROR,   # RFC 4954: authentication mechanism is too weak
    "5.7.10": R.FAILEDSTARTTLS,  # RFC 5248: encryption needed
    "5.7.11": R.FAILEDSTARTTLS,  # RFC 4954: encryption required for the authentication mechanism
    "5.7.13": R.SUSPEND,        # RFC 5248: user account disabled
    "5.7.14": R.SECURITYERROR,  # RFC 5248: trust relationship required
    "5.7.15": R.SECURITYERROR,  # RFC 6710: priority level is too low
    "5.7.16": R.MESGTOOBIG,     # RFC 6710: message is too big for the specified priority
    "5.7.17": R.HASMOVED,       # RFC 7293: mailbox owner has changed
    "5.7.18": R.HASMOVED,       # RFC 7293: domain owner has changed
    "5.7.19": R.SECURITYERROR,  # RFC 7293: RRVS test cannot be completed
    "5.7.20": R.AUTHFAILURE,    # RFC 7372: no passing DKIM signature found
    "5.7.21": R.AUTHFAILURE,    # RFC 7372: no acceptable DKIM signature found
    "5.7.22": R.AUTHFAILURE,    # RFC 7372: no valid author-matched DKIM signature found
    "5.7.23": R.AUTHFAILURE,    # RFC 7372: SPF validation failed
    "5.7.24": R.AUTHFAILURE,    # RFC 7372: SPF validation error
    "5.7.25": R.REQUIREPTR,     # RFC 7372: reverse DNS validation failed
    "5.7.26": R.AUTHFAILURE,    # RFC 7372: multiple authentication checks failed
    "5.7.27": R.NOTACCEPT,      # RFC 7505: sender address has null MX
    "5.7.28": R.SPEEDING,       # IANA registry: mail flood detected
    "5.7.30": R.FAILEDSTARTTLS,  # RFC 8689: REQUIRETLS support required
}
del R

# Sisimai::SMTP::Status InternalCode: made-up codes in the unassigned x.0.9xx range for a reason
# when the bounce carries no status at all. Reasons missing from the temporary table use the
# permanent one (as Sisimai's `code` does).
_PSEUDO_PERMANENT: dict[str, str] = {
    "blocked": "971", "contenterror": "960", "exceedlimit": "923", "expired": "947",
    "filtered": "910", "hasmoved": "916", "hostunknown": "912", "mailboxfull": "922",
    "mailererror": "939", "mesgtoobig": "934", "networkerror": "944", "norelaying": "909",
    "notaccept": "932", "onhold": "901", "policyviolation": "972", "rejected": "918",
    "securityerror": "970", "spamdetected": "980", "suspend": "921", "systemerror": "930",
    "systemfull": "931", "syntaxerror": "902", "toomanyconn": "945", "userunknown": "911",
    "undefined": "900", "virusdetected": "971", "requireptr": "973", "authfailure": "974",
    "badreputation": "975", "failedstarttls": "976", "notcompliantrfc": "961", "speeding": "946",
}
_PSEUDO_TEMPORARY = frozenset({
    "blocked", "contenterror", "expired", "filtered", "mailboxfull", "networkerror", "notaccept",
    "onhold", "rejected", "securityerror", "spamdetected", "systemerror", "systemfull", "toomanyconn",
    "undefined", "requireptr", "authfailure", "badreputation", "failedstarttls", "speeding",
})

# An IPv4 address: masked before looking for codes, so that "192.0.2.25" gives neither a
# status "2.0.2" nor a reply code "192" (Sisimai::SMTP::Reply->find does the same).
#   The patterns below start with the digit they look for and check what precedes it after it
# ("[245](?<![\w.][245])" rather than "(?<![\w.])[245]"): the same matches, but a pattern that
# starts with a character set lets the regular expression engine skip to the candidates.
_IPV4 = re.compile(r"\d(?<!\w\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}\b")  # \b(?:\d{1,3}\.){3}\d{1,3}\b
# RFC 3463 section 2: class "." subject "." detail, subject and detail of 1 to 3 digits. A code
# glued to letters, dots or digits is a version number, a date or part of an address, not a status.
_CODE = r"([245])\.(\d{1,3})\.(\d{1,3})(?![\w-]|\.\d)"
_STATUS_AFTER_REPLY = re.compile(r"([245])(?<!\d[245])\d\d[ -]#?" + _CODE)
_STATUS_QMAIL = re.compile(r"\(#([245])\.(\d{1,3})\.(\d{1,3})\)")  # qmail: "... (#5.1.1)"
_STATUS_ANY = re.compile(r"([245])(?<![\w.\-/][245])\.(\d{1,3})\.(\d{1,3})(?![\w-]|\.\d)")  # see _CODE
# RFC 5321 section 4.2: a reply starts with a three digit code, then a space or a hyphen.
_REPLY_WITH_STATUS = re.compile(r"([245](?<![\w.\-][245])[0-5]\d)[ -]#?([245])\.\d{1,3}\.\d{1,3}")
_REPLY_AT_START = re.compile(
    r"(?:^|[\s:;(>\]\"'])([245][0-5]\d)(?:-|[ ]+[A-Za-z<#(\[]|$)", re.MULTILINE)
_REPLY_ANYWHERE = re.compile(r"([45](?<![\w.\-/#][45])[0-5]\d)(?![\w.\-/]|\.\d)")


def find_status(text: str) -> str:
    """The RFC 3463 enhanced status code in a diagnostic text ('5.1.1'), or ''.

    A code that follows a reply code ('550 5.1.1', '550-5.1.1') wins, then a qmail-style
    '(#5.1.1)', then any other well-formed code; version numbers and IP addresses are ignored.
    """
    if not text or "." not in text:
        return ""
    masked = _IPV4.sub("***.***.***.***", text) if _IPV4.search(text) else text
    # RFC 3463 section 3.1: the class of the status agrees with the first digit of the reply code,
    # so "554 4.4.7 ... <421 4.4.2 Connection timed out>" (Amazon SES) names 4.4.2.
    paired = [m.groups() for m in _STATUS_AFTER_REPLY.finditer(masked)]
    candidates = [g[1:] for g in paired if g[0] == g[1]] + [g[1:] for g in paired if g[0] != g[1]]
    for pattern in (_STATUS_QMAIL, _STATUS_ANY):
        candidates += [m.groups() for m in pattern.finditer(masked)]
    for klass, subject, detail in candidates:
        # RFC 3463 subjects are 0..7; a success code must look like one (2.1.5, 2.0.0).
        if int(subject) > 7 or (klass == "2" and (int(detail) > 7 or len(detail) > 1)):
            continue
        return f"{klass}.{int(subject)}.{int(detail)}"
    return ""


def find_reply_code(text: str) -> str:
    """The SMTP reply code (RFC 5321 section 4.2: [245][0-5][0-9]) at the start of a reply, or ''."""
    if not text or "x-unix;" in text.lower():
        return ""
    masked = _IPV4.sub("***.***.***.***", text) if _IPV4.search(text) else text
    paired = [m.groups() for m in _REPLY_WITH_STATUS.finditer(masked)]
    for reply, klass in paired:
        if reply[0] == klass:
            return reply
    if paired:
        return paired[0][0]
    match = _REPLY_AT_START.search(masked)
    if match:
        return match.group(1)
    match = _REPLY_ANYWHERE.search(masked)
    return match.group(1) if match else ""


def reason_for_status(status: str) -> Reason | None:
    """The reason a status code means by itself (Sisimai::SMTP::Status->name), or None."""
    return STATUS_REASONS.get(status)


def pseudo_status(reason: Reason, temporary: bool) -> str:
    """A made-up status for a reason when the bounce has none (Sisimai::SMTP::Status->code)."""
    detail = _PSEUDO_PERMANENT.get(reason.value, "")
    if not detail:
        return ""
    klass = "4" if temporary and reason.value in _PSEUDO_TEMPORARY else "5"
    return f"{klass}.0.{detail}"


def is_permanent(text: str) -> bool | None:
    """True for a permanent failure, False for a temporary one, None when the text does not say.

    After Sisimai::SMTP::Error->is_permanent: the class of the status or reply code, else the
    words 'temporar'/'persistent' or 'permanent'.
    """
    code = find_status(text) or find_reply_code(text)
    if code[:1] == "5":
        return True
    if code[:1] == "4":
        return False
    if code[:1] == "2":
        return None
    lowered = text.lower()
    if "temporar" in lowered or "persistent" in lowered:
        return False
    if "permanent" in lowered:
        return True
    return None
