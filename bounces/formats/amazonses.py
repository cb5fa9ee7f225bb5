"""Amazon SES (sending): JSON notifications through SNS, and SES's own bounce e-mails.

Heuristics after Sisimai::Lhost::AmazonSES (BSD-2-Clause). Two shapes:

- An SNS e-mail subscription delivers the notification as JSON in a text/plain body
  (``x-amz-sns-message-id`` header), either the SES object itself or the SNS envelope whose
  ``Message`` field holds it as a string. ``notificationType`` (``eventType`` for SES event
  publishing) is ``Bounce``, ``Delivery`` or ``Complaint``; complaints belong to fbl/, so
  they are "not mine" here. Notification contents are documented in the SES developer guide
  ("Amazon SES notification contents").
- SES's own DSN (``X-SES-Outgoing`` / ``X-AWS-Outgoing`` headers, "The following message to
  <...> was undeliverable." or "An error occurred while trying to deliver the mail to the
  following recipients:"), read as RFC 3464 fields, where SES puts a generic status first
  and quotes the remote reply.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bounces.formats._providers import bracketed_reply_code, refine_generic_status
from bounces.formats.rfc3464 import drafts_from_report, explanation_for
from bounces.model import Draft, FormatResult, Reason
from rfc822 import Mail, first_address

__all__ = ["NAME", "parse"]

NAME = "amazonses"

_STARTS = ("The following message to <", "An error occurred while trying to deliver the mail ")
# bounceType/bounceSubType values that name the reason outright (SES developer guide,
# "bounce types"); the others leave it to the status and the diagnostic.
_SUBTYPES: dict[tuple[str, str], Reason] = {
    ("Transient", "MailboxFull"): Reason.MAILBOXFULL,
    ("Transient", "MessageTooLarge"): Reason.MESGTOOBIG,
    ("Permanent", "NoEmail"): Reason.USERUNKNOWN,
}
# SES's own bounce address when a relay stripped the X-SES-Outgoing header (rhost-spectrum-01 shows it).
_SES_DAEMON = re.compile(r"^mailer-daemon@(?:[a-z0-9-]+\.)*amazonses\.com$")
_TYPED = re.compile(r"^\s*([A-Za-z0-9-]+)\s*;\s*(.*)$", re.S)
_JSON_END = re.compile(r"^--\s*$", re.M)


def parse(mail: Mail) -> FormatResult | None:
    """Drafts from an SES bounce/delivery notification or an SES DSN, else None."""
    if mail.header("x-amz-sns-message-id") or "sns.amazonaws.com" in mail.sender:
        body = mail.text.lstrip()
        if body.startswith("{"):
            return _from_json(body)
    ses_daemon = _SES_DAEMON.match(first_address(mail.sender))
    if not (mail.header("X-SES-Outgoing") or mail.header("X-AWS-Outgoing") or ses_daemon):
        return None
    if "Amazon WorkMail" in (mail.header("X-Mailer") + mail.header("X-Original-Mailer")):
        return None
    return _from_email(mail)


def _from_email(mail: Mail) -> FormatResult | None:
    text = mail.text
    start = min((i for i in (text.find(s) for s in _STARTS) if i >= 0), default=-1)
    if start < 0:
        return None
    report = mail.section("message/delivery-status") or text[start:]
    drafts = drafts_from_report(report)
    for draft in drafts:
        if not draft.diagnostic:
            draft.diagnostic = explanation_for(text, draft.recipient)
        refine_generic_status(draft)
        draft.reply_code = draft.reply_code or bracketed_reply_code(draft.diagnostic)
        if "Delivery expired" in draft.diagnostic:
            draft.reason = Reason.EXPIRED
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=mail.section("message/rfc822"))


def _from_json(body: str) -> FormatResult | None:
    payload = _load_json(body)
    if payload is None:
        return None
    kind = str(payload.get("notificationType") or payload.get("eventType") or "")
    found = payload.get("mail")
    mail_part: dict[str, Any] = found if isinstance(found, dict) else {}
    if kind == "Bounce":
        drafts = _bounce_drafts(payload.get("bounce"))
    elif kind == "Delivery":
        drafts = _delivery_drafts(payload.get("delivery"))
    else:
        # "Complaint" is a feedback report (fbl/ reads it); anything else is not a bounce.
        return None
    if not drafts:
        return None
    return FormatResult(drafts=drafts, original=_original_headers(mail_part))


def _load_json(body: str) -> dict[str, Any] | None:
    """The SES object in the body, unwrapped from the SNS envelope when there is one."""
    end = _JSON_END.search(body)
    text = _unfold(body[: end.start()] if end else body)
    try:
        outer = json.loads(text)
        if isinstance(outer, dict) and isinstance(outer.get("Message"), str):
            outer = json.loads(outer["Message"])
    except ValueError:
        return None
    return outer if isinstance(outer, dict) else None


def _unfold(text: str) -> str:
    """Undo sendmail's long-line folding: a line ending in '!' continues on the next, after one space.

    Sendmail breaks lines longer than its L= limit this way; lhost-amazonses-09/-10 show it.
    """
    lines = text.split("\n")
    out: list[str] = []
    folded = False
    for line in lines:
        if folded and line.startswith(" "):
            line = line[1:]
        joined_to_previous = folded
        folded = line.endswith("!")
        if folded:
            line = line[:-1]
        if joined_to_previous and out:
            out[-1] += line
        else:
            out.append(line)
    return "\n".join(out)


def _bounce_drafts(bounce: object) -> list[Draft]:
    if not isinstance(bounce, dict):
        return []
    reason = _SUBTYPES.get((str(bounce.get("bounceType", "")), str(bounce.get("bounceSubType", ""))))
    reporting = str(bounce.get("reportingMTA") or "")
    typed = _TYPED.match(reporting)
    reporting = typed.group(2) if typed else reporting
    drafts = []
    for entry in bounce.get("bouncedRecipients") or []:
        if not isinstance(entry, dict) or "@" not in str(entry.get("emailAddress", "")):
            continue
        diagnostic, spec = str(entry.get("diagnosticCode") or ""), ""
        typed = _TYPED.match(diagnostic)
        if typed and " " not in typed.group(1):
            spec, diagnostic = typed.group(1).upper(), typed.group(2)
        drafts.append(Draft(
            recipient=str(entry["emailAddress"]),
            action=str(entry.get("action") or "failed"),
            status=str(entry.get("status") or ""),
            diagnostic=diagnostic,
            spec=spec,
            reason=reason,
            reporting_mta=reporting.strip(),
            date=str(bounce.get("timestamp") or ""),
        ))
    return drafts


def _delivery_drafts(delivery: object) -> list[Draft]:
    if not isinstance(delivery, dict):
        return []
    response = str(delivery.get("smtpResponse") or "")
    return [
        Draft(recipient=str(address), action="delivered", diagnostic=response, reason=Reason.DELIVERED,
              reporting_mta=str(delivery.get("reportingMTA") or ""),
              date=str(delivery.get("timestamp") or ""), spec="SMTP")
        for address in delivery.get("recipients") or [] if "@" in str(address)
    ]


def _original_headers(mail_part: dict[str, Any]) -> str:
    """The sent message's headers as text, from the notification's ``mail.headers`` list."""
    lines = []
    for header in mail_part.get("headers") or []:
        if isinstance(header, dict) and header.get("name"):
            lines.append(f"{header['name']}: {header.get('value', '')}")
    if not any(line.lower().startswith("message-id:") for line in lines) and mail_part.get("messageId"):
        lines.append(f"Message-ID: {mail_part['messageId']}")
    if mail_part.get("source") and not any(line.lower().startswith("from:") for line in lines):
        lines.append(f"From: {mail_part['source']}")
    return "\n".join(lines) + ("\n" if lines else "")
