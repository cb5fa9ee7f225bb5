"""au by KDDI's EZweb (ezweb.ne.jp / au.com): "Mail System Error - Returned Mail".

Heuristics after Sisimai::Lhost::EZweb (BSD-2-Clause). Two of these must hold: From
Postmaster@ezweb.ne.jp or Postmaster@au.com, that Subject, a Received header "ezweb.ne.jp
(EZweb Mail) with" or ".au.com (", a Message-ID ending in ".ezweb.ne.jp>" or ".au.com>".
A Japanese paragraph (ISO-2022-JP) comes first, then an English one that names the reason
("The user(s) account is disabled.", "Your message was not delivered within ..."), the
address in angle brackets, and for a remote refusal the dialogue (">>> RCPT TO:<...>",
"<<< 550 ..."). The reasons of those fixed texts are EZweb's own; a refusal at RCPT is an
unknown user; ``X-SPASIGN: NG`` marks mail EZweb's spam filter refused.
"""

from __future__ import annotations

import re

from bounces.formats._providers import has_received
from bounces.formats.rfc3464 import drafts_from_report
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail

__all__ = ["NAME", "parse"]

NAME = "ezweb"

_BACKBONE = re.compile(r"^(?:-{50}|Content-Type:[ ]*message/rfc822)", re.M)
_STARTS = re.compile(r"^(?:The user\(s\) |Your message |Each of the following|<[^ ]+@[^ ]+>$)")
_RECIPIENT = re.compile(r"^<([^ <>]+@[^ <>]+)>:?(.*)$|^[ \t]+Recipient: <([^ <>]+@[^ <>]+)>")
_COMMAND = re.compile(r"^[ \t]+>{3}[ \t]+([A-Z]{4})")
_REPLY = re.compile(r"^[ \t]+<{3}[ \t]+(.+)$")
_FAILURES: dict[Reason, tuple[re.Pattern[str], ...]] = {
    Reason.MAILBOXFULL: (re.compile(r"The user\(s\) account is temporarily over quota"),),
    # The recipient may be an unpaid user (naruhodo-au.kddi.com qa3429203).
    Reason.SUSPEND: (re.compile(r"The user\(s\) account is disabled\."),
                     re.compile(r"The user\(s\) account is temporarily limited\.")),
    Reason.EXPIRED: (re.compile(r"Your message was not delivered within "),),
    Reason.ONHOLD: (re.compile(r"Each of the following recipients was rejected by a remote mail server"),),
}


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an EZweb returned-mail notice, else None."""
    if _score(mail) < 2:
        return None
    notice = mail.body[: m.start()] if (m := _BACKBONE.search(mail.body)) else mail.body
    begin = next((i for i, line in enumerate(notice.split("\n")) if _STARTS.match(line)), -1)
    if begin < 0:
        return None
    lines = notice.split("\n")[begin:]
    message = _fixed_message(lines)
    drafts: list[Draft] = []
    for line in lines:
        recipient = _RECIPIENT.match(line)
        command, reply = _COMMAND.match(line), _REPLY.match(line)
        if recipient:
            drafts.append(Draft(recipient=recipient.group(1) or recipient.group(3), action="failed",
                                diagnostic=(recipient.group(2) or "").strip()))
        elif drafts and command:
            drafts[-1].command = command.group(1)
        elif drafts and reply:
            drafts[-1].diagnostic = (drafts[-1].diagnostic + " " + reply.group(1)).strip()
    fields = {d.recipient.lower(): d for d in drafts_from_report(mail.section("message/delivery-status"))}
    spam = mail.header("X-SPASIGN") == "NG"
    for draft in drafts:
        known = fields.get(draft.recipient.lower())
        if known is not None:
            draft.status, draft.reporting_mta = known.status, known.reporting_mta
        draft.diagnostic = " ".join(f"{message} {draft.diagnostic}".split())
        draft.reason = _reason(draft, message, spam)
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822"))


def _score(mail: Mail) -> int:
    sender, message_id = mail.sender, mail.header("Message-ID")
    score = sum((
        "postmaster@ezweb.ne.jp" in sender,
        "postmaster@au.com" in sender,
        mail.subject == "Mail System Error - Returned Mail",
        has_received(mail, "ezweb.ne.jp (EZweb Mail) with"),
        has_received(mail, ".au.com ("),
        message_id.endswith(".ezweb.ne.jp>"),
        message_id.endswith(".au.com>"),
    ))
    # Every test above also needs one of these in the raw bytes (an encoded header could hide
    # them); looked for last, as it costs a pass over the whole message.
    if score < 2:
        return score
    if b"ezweb.ne.jp" not in mail.raw and b"au.com" not in mail.raw and b"Mail System Error" not in mail.raw:
        return 0
    return score


def _fixed_message(lines: list[str]) -> str:
    """The English paragraph that states EZweb's reason, joined, or ''."""
    paragraphs = "\n".join(lines).split("\n\n")
    for paragraph in paragraphs:
        flat = " ".join(paragraph.split())
        if any(p.search(flat) for patterns in _FAILURES.values() for p in patterns):
            return flat
    return ""


def _reason(draft: Draft, message: str, spam: bool) -> Reason | None:
    if spam:
        return Reason.FILTERED
    if draft.command == "RCPT":
        return Reason.USERUNKNOWN
    for reason, patterns in _FAILURES.items():
        if any(p.search(message) for p in patterns):
            return reason
    if re.search(r"@(?:ezweb\.ne\.jp|au\.com)$", draft.recipient):
        return None
    # Sisimai::Lhost::EZweb: a refusal of another domain's address is an unknown user.
    return Reason.USERUNKNOWN
