"""Why one recipient bounced: status code first, then reply code, then the diagnostic text.

Heuristics after Sisimai::Reason, Sisimai::Reason::* (`true` methods) and Sisimai::SMTP::Error
(BSD-2-Clause), with the reason order of Sisimai 5, which produced the corpus answers
(shared/corpus). The phrases live in ``bounces.phrases``, the status table in
``bounces.status``, the rules of particular receiving providers in ``bounces.rhosts``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

from bounces import phrases
from bounces.model import Draft, Reason
from bounces.rhosts import reason_from_rhost
from bounces.status import find_reply_code, find_status, pseudo_status, reason_for_status

__all__ = [
    "classify",
    "find_reply_code",
    "find_status",
    "is_hard_bounce",
    "pseudo_status",
    "reason_from_text",
]

R = Reason
# Sisimai::Reason->retry: reasons a format module may set that are worth a second look.
RETRY = frozenset({R.UNDEFINED, R.ONHOLD, R.SYSTEMERROR, R.SECURITYERROR, R.NETWORKERROR,
                   R.HOSTUNKNOWN, R.USERUNKNOWN})
# Sisimai 5 Reason.pm ClassOrder[1]: the phrase-only pass when the status did not decide.
# NotAccept comes before NetworkError here (a null MX, RFC 7505, is reported as a DNS answer), and
# FailedSTARTTLS before SecurityError.
_TEXT_ORDER = (R.MAILBOXFULL, R.AUTHFAILURE, R.BADREPUTATION, R.SPEEDING, R.SPAMDETECTED,
               R.VIRUSDETECTED, R.POLICYVIOLATION, R.NORELAYING, R.FAILEDSTARTTLS, R.NOTACCEPT, R.SYSTEMERROR,
               R.NETWORKERROR, R.SUSPEND, R.CONTENTERROR, R.SYSTEMFULL, R.EXPIRED, R.SECURITYERROR,
               R.MAILERERROR)
# Sisimai 5 Reason.pm ClassOrder[2]: classifying a bare text (Sisimai::Reason->match).
_BARE_TEXT_ORDER = (R.MAILBOXFULL, R.MESGTOOBIG, R.EXCEEDLIMIT, R.SUSPEND, R.USERUNKNOWN, R.FILTERED,
                    R.REJECTED, R.HOSTUNKNOWN, R.SPAMDETECTED, R.SPEEDING, R.TOOMANYCONN, R.BLOCKED,
                    R.AUTHFAILURE, R.REQUIREPTR, R.BADREPUTATION, R.FAILEDSTARTTLS, R.SECURITYERROR,
                    R.SYSTEMERROR, R.NETWORKERROR, R.EXPIRED, R.CONTENTERROR, R.HASMOVED, R.SYSTEMFULL,
                    R.NOTACCEPT, R.MAILERERROR, R.NORELAYING, R.POLICYVIOLATION, R.VIRUSDETECTED,
                    R.NOTCOMPLIANTRFC)
# Phrases of these reasons mean the recipient exists although the status says 5.1.1
# (Sisimai::Reason::UserUnknown `true`, "prematches").
_NOT_USERUNKNOWN = (R.NORELAYING, R.BLOCKED, R.MAILBOXFULL, R.HASMOVED, R.REJECTED, R.NOTACCEPT,
                    R.REQUIREPTR, R.AUTHFAILURE, R.BADREPUTATION)
# Diagnostic types that carry an SMTP reply or say nothing (Sisimai::Fact defaults the type to SMTP).
_SMTP_LIKE = frozenset({"SMTP", "", "UNKNOWN"})
_BEFORE_DATA = frozenset({"CONN", "EHLO", "HELO", "MAIL", "RCPT"})
# RFC 5321 section 4.2.2/4.2.3: 500-507 are syntax errors (Sisimai::Reason::SyntaxError).
_SYNTAX_REPLY = re.compile(r"^[45]0[0-7]$")
_HARD = frozenset({R.USERUNKNOWN, R.HOSTUNKNOWN, R.HASMOVED})


# A multi-line reply quoted on one line repeats "550-5.7.1" before every line (Gmail, Outlook):
# Sisimai::Fact removes the repetitions so that a phrase broken over two lines matches again.
# ("(?<![\w.])550-5.7.1 " or "(?<![\w.])550-", written digit first so that the engine skips to digits.)
_REPLY_PREFIX = re.compile(r"[245](?<![\w.][245])\d\d(?:(?:-#?|[ ]#?)[245]\.\d{1,3}\.\d{1,3}\s+|-(?=\S))")
_COMMAND_IN_TEXT = re.compile(
    r"(?:in reply to|after|>>>) (rcpt to|mail from|end of data|data|helo|ehlo)\b")
# Gmail's "Address not found" notice summarises a recipient refused at RCPT TO (corpus rfc3464-65,
# rhost-gsuite-02), even when it quotes no reply.
_REFUSED_AT_RCPT = ("because the address couldn't be found",)
_COMMAND_NAMES = {"rcpt to": "RCPT", "mail from": "MAIL", "end of data": "DATA", "data": "DATA",
                  "helo": "HELO", "ehlo": "EHLO"}


def classify(draft: Draft) -> Reason:
    """The reason for one recipient; never raises, says UNDEFINED or ONHOLD rather than guess."""
    if draft.reason is not None and draft.reason not in RETRY:
        return draft.reason
    if draft.status.startswith("2.") or draft.action == "delivered":
        return R.DELIVERED
    text = _clean(draft.diagnostic.lower())
    draft = _completed(draft, text)
    said = phrases.Said(text)
    found = reason_from_rhost(draft, text)
    if found is not None:
        return found
    given = draft.reason  # None, or a retry reason that the format module set
    if draft.spec in _SMTP_LIKE:
        found = _by_status_and_text(draft, said, given)
        if found is not None:
            return found
    if given is not None and given is not R.UNDEFINED:
        return given  # Sisimai::Reason->anotherone keeps a reason the format already gave
    found = _another_one(draft, said)
    if found is not None:
        return found
    if draft.action in ("delayed", "expired"):
        return R.EXPIRED
    if said(R.VACATION):
        return R.VACATION
    return R.ONHOLD if text.strip() else R.UNDEFINED


def _clean(text: str) -> str:
    """The diagnostic without the reply prefixes that a quoted multi-line reply repeats."""
    found = _REPLY_PREFIX.search(text)
    if found is None or _REPLY_PREFIX.search(text, found.end()) is None:
        return text
    return " ".join((text[:found.end()] + _REPLY_PREFIX.sub(" ", text[found.end():])).split())


def _completed(draft: Draft, text: str) -> Draft:
    """A copy with what the text says when the format left it out: the SMTP command, and "SMTP"
    as the diagnostic type when Postfix quotes the remote server's reply under X-Postfix."""
    command = draft.command
    if not command:
        found = _COMMAND_IN_TEXT.search(text)
        command = _COMMAND_NAMES[found.group(1)] if found else ""
    if not command and any(phrase in text for phrase in _REFUSED_AT_RCPT):
        command = "RCPT"
    spec = draft.spec
    if spec == "X-POSTFIX" and draft.reply_code:
        spec = "SMTP"
    if command == draft.command and spec == draft.spec:
        return draft
    return replace(draft, command=command, spec=spec)


def reason_from_text(text: str) -> Reason:
    """The reason a bare error text names (Sisimai::Reason->match), for formats with no fields."""
    lowered = text.lower()
    found = phrases.first_match(_BARE_TEXT_ORDER, lowered)
    if found is not None:
        return found
    if lowered.lstrip().startswith("x-unix;"):
        return R.MAILERERROR
    return reason_for_status(find_status(text)) or R.UNDEFINED


def is_hard_bounce(reason: Reason, status: str, reply_code: str) -> bool:
    """Sisimai 5's hard bounce: the address itself is bad (shared/reasons.md).

    userunknown, hostunknown and hasmoved are hard whatever the code (Sisimai 5
    SMTP::Failure->is_hardbounce); notaccept only with a permanent (5xx / 5.x.x) code or none.
    """
    if reason in _HARD:
        return True
    if reason is not R.NOTACCEPT:
        return False
    code = status or reply_code
    return code[:1] != "4"


class _Facts(NamedTuple):
    """What the first loop looks at, computed once per recipient."""

    named: Reason | None  # the reason the status means by itself
    status: str
    command: str
    given: Reason | None  # a retry reason the format module set
    said: phrases.Said  # what the diagnostic text says, each reason looked up once


def _named_or_said(reason: Reason) -> Callable[[_Facts], bool]:
    """The most common `true`: the status means this reason, or the text says it."""
    return lambda f: f.named is reason or f.said(reason)


# Sisimai 5 Reason.pm ClassOrder[0] with each reason's `true` method; evaluated lazily, in order.
_FIRST_LOOP: tuple[tuple[Reason, Callable[[_Facts], bool]], ...] = (
    (R.MAILBOXFULL, _named_or_said(R.MAILBOXFULL)),
    (R.MESGTOOBIG, lambda f: _mesg_too_big(f.status, f.named, f.said)),
    (R.EXCEEDLIMIT, _named_or_said(R.EXCEEDLIMIT)),
    (R.SUSPEND, _named_or_said(R.SUSPEND)),
    (R.HASMOVED, _named_or_said(R.HASMOVED)),
    (R.NORELAYING, lambda f: f.given not in (R.SECURITYERROR, R.SYSTEMERROR, R.UNDEFINED)
     and f.command not in ("CONN", "EHLO", "HELO") and f.said(R.NORELAYING)),
    (R.AUTHFAILURE, _named_or_said(R.AUTHFAILURE)),
    (R.USERUNKNOWN, lambda f: f.given is R.USERUNKNOWN or _user_unknown(f.named, f.command, f.said)),
    (R.FILTERED, lambda f: _filtered(f.named, f.command, f.said)),
    (R.REQUIREPTR, _named_or_said(R.REQUIREPTR)),
    (R.NOTCOMPLIANTRFC, lambda f: f.said(R.NOTCOMPLIANTRFC)),
    (R.BADREPUTATION, lambda f: f.said(R.BADREPUTATION)),
    (R.REJECTED, lambda f: _rejected(f.named, f.command, f.said)),
    (R.HOSTUNKNOWN, lambda f: f.given is R.HOSTUNKNOWN or _host_unknown(f.named, f.said)),
    (R.SPAMDETECTED, lambda f: f.named is R.SPAMDETECTED
     or (f.command not in _BEFORE_DATA and f.said(R.SPAMDETECTED))),
    (R.SPEEDING, _named_or_said(R.SPEEDING)),
    (R.TOOMANYCONN, _named_or_said(R.TOOMANYCONN)),
    (R.BLOCKED, _named_or_said(R.BLOCKED)),
)


def _by_status_and_text(draft: Draft, said: phrases.Said, given: Reason | None) -> Reason | None:
    """Sisimai 5 Reason->find, first loop: each reason's `true` in ClassOrder[0].

    A retry reason the format gave (userunknown, hostunknown) holds unless an earlier reason matches.
    """
    facts = _Facts(reason_for_status(draft.status), draft.status, draft.command, given, said)
    for reason, true in _FIRST_LOOP:
        if true(facts):
            return reason
    return None


def _mesg_too_big(status: str, named: Reason | None, said: phrases.Said) -> bool:
    if named is R.MESGTOOBIG:
        return True
    if named is R.EXCEEDLIMIT or status == "5.2.3":
        return False
    return said(R.MESGTOOBIG)


def _user_unknown(named: Reason | None, command: str, said: phrases.Said) -> bool:
    if named is R.SUSPEND:
        return False
    if named is R.USERUNKNOWN:
        return not any(said(other) for other in _NOT_USERUNKNOWN)
    return command == "RCPT" and said(R.USERUNKNOWN)


def _filtered(named: Reason | None, command: str, said: phrases.Said) -> bool:
    """A recipient that exists but refuses: after DATA, or with a 5.2.x status."""
    if named is R.SUSPEND:
        return False
    if named is R.FILTERED:
        return said(R.USERUNKNOWN) or said(R.FILTERED)
    if command in _BEFORE_DATA:
        return False
    return said(R.FILTERED) or said(R.USERUNKNOWN)


def _rejected(named: Reason | None, command: str, said: phrases.Said) -> bool:
    """The envelope sender was refused: at MAIL FROM, or said so after DATA."""
    if named is R.REJECTED:
        return True
    if command == "MAIL":
        return said(R.REJECTED)
    if command == "DATA":
        return named is not R.USERUNKNOWN and said(R.REJECTED)
    if named in (None, R.ONHOLD, R.UNDEFINED, R.SECURITYERROR, R.SYSTEMERROR):
        return said(R.REJECTED)
    return False


def _host_unknown(named: Reason | None, said: phrases.Said) -> bool:
    if named is R.HOSTUNKNOWN:
        return not said(R.NETWORKERROR)
    return said(R.HOSTUNKNOWN)


def _another_one(draft: Draft, said: phrases.Said) -> Reason | None:
    """Sisimai 5 Reason->anotherone: the status table, then phrases, then the status class."""
    named = reason_for_status(draft.status)
    if named is not None and named not in RETRY and named is not R.EXPIRED and draft.spec in _SMTP_LIKE:
        return named
    found = said.first(_TEXT_ORDER)
    if found is not None:
        return found
    if draft.command == "MAIL" and (named is None or named in RETRY):
        # RFC 5321 section 3.3: MAIL FROM carries only the reverse-path; refusing it refuses the
        # sender (Sisimai's definition of "rejected"), e.g. "550 5.7.1 Access denied" at MAIL.
        return R.REJECTED
    if named is not None:
        return named
    subject = draft.status[:3]
    if subject in ("4.6", "5.6"):
        return R.CONTENTERROR            # RFC 3463 X.6.X: message content or media status
    if subject in ("4.7", "5.7"):
        return R.SECURITYERROR           # RFC 3463 X.7.X: security or policy status
    if draft.spec in ("X-UNIX", "X-POSTFIX"):
        return R.MAILERERROR             # a local delivery program failed
    if draft.command in ("EHLO", "HELO", "CONN"):
        return R.BLOCKED                 # refused at the greeting (qmail "my name was rejected")
    if _SYNTAX_REPLY.match(draft.reply_code):
        return R.SYNTAXERROR
    if draft.action in ("delayed", "expired"):
        return R.EXPIRED
    return None

