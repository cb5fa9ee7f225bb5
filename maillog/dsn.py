"""A ``DeliveryFailure`` read from the log, written as the RFC 3464 DSN the MTA sent to the sender.

Postfix and Exim send their bounces to the customer's envelope sender, not to us: what we see is
the log line. Written as a DSN, that line goes through the same pipeline as a bounce that came
back (``Pipeline.ingest``): its bytes are kept (the evidence), the bounce parsers classify it
from its status code and diagnostic text as they would the MTA's own DSN, and attribution finds
the sender through the ledger from the returned headers' Message-ID.

The report (RFC 3464 section 2; RFC 6522 multipart/report)::

    multipart/report; report-type=delivery-status
      text/plain               the log line(s), quoted: the evidence
      message/delivery-status  Reporting-MTA: dns; <log host>; X-<MTA>-Queue-ID
                               Final-Recipient, Original-Recipient, Action: failed | delayed,
                               Status (RFC 3463), Remote-MTA, Diagnostic-Code, Final-Log-ID,
                               Last-Attempt-Date (when the log's time has a year and a zone)
      text/rfc822-headers      Message-ID, From and Return-Path (the envelope sender)

The bytes depend only on the failure (its log lines included), never on a clock or randomness:
the boundary and the report's own Message-ID are made from a SHA-256 of the content, so reading
a log twice gives the same bytes, which the pipeline stores once.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from email.charset import QP, Charset
from email.message import Message
from email.policy import SMTPUTF8
from email.utils import format_datetime

from maillog.model import DeliveryFailure

__all__ = ["delivery_report"]

# C0 and C1 controls and Unicode line separators (str.splitlines breaks on \x85 and \u2028), and lone
# surrogates, which UTF-8 cannot encode.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]+")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})")
_REPLY = re.compile(r"[245]\d\d\b")  # a remote SMTP reply, quoted as such (Diagnostic-Code: smtp; ...)
_ZONED = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d| [+-]\d{4})")


def delivery_report(failure: DeliveryFailure) -> bytes:
    """The DSN that says what ``failure`` says; the same bytes for the same failure."""
    host = _host(failure.host)
    digest = hashlib.sha256(repr(failure).encode("utf-8", "surrogatepass")).hexdigest()
    report = Message()
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{host}>"
    if failure.sender:
        report["To"] = _clean(failure.sender)
    report["Subject"] = ("Undelivered Mail Returned to Sender" if failure.bounced
                         else "Delayed Mail (still being retried)")
    report["Message-ID"] = f"<maillog.{digest[:40]}@{host}>"
    report["Auto-Submitted"] = "auto-replied"
    report["MIME-Version"] = "1.0"
    report["Content-Type"] = "multipart/report"
    report.set_param("report-type", "delivery-status")
    report.set_boundary(f"maillog.{digest[:32]}")
    report.attach(_evidence(failure, host))
    report.attach(_status(failure, host))
    report.attach(_headers(failure))
    return report.as_bytes(policy=SMTPUTF8.clone(max_line_length=998))  # RFC 6532: UTF-8 fields


def _evidence(failure: DeliveryFailure, host: str) -> Message:
    what = "could not be delivered" if failure.bounced else "was deferred; the MTA will try again"
    lines = [f"This report was made by Ricochet from the {failure.mta.capitalize()} log of {host}:",
             f"the message {failure.queue_id} to {_clean(failure.recipient)} {what}.", "",
             "The log says:", "", *(f"  {_clean(line)}" for line in failure.lines), ""]
    utf8 = Charset("utf-8")
    utf8.body_encoding = QP  # 7-bit whatever the log held
    part = Message()
    part["Content-Description"] = "Notification"
    part.set_payload("\n".join(lines), utf8)
    return part


def _status(failure: DeliveryFailure, host: str) -> Message:
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {host}"
    per_message[f"X-{failure.mta.capitalize()}-Queue-ID"] = _clean(failure.queue_id)
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {_clean(failure.recipient)}"
    if failure.original_recipient:
        per_recipient["Original-Recipient"] = f"rfc822; {_clean(failure.original_recipient)}"
    per_recipient["Action"] = "failed" if failure.bounced else "delayed"
    per_recipient["Status"] = failure.status
    if failure.remote_mta:
        per_recipient["Remote-MTA"] = f"dns; {_clean(failure.remote_mta)}"
    diagnostic = _clean(failure.diagnostic)
    spec = "smtp" if _REPLY.match(diagnostic) else f"x-{failure.mta}"
    per_recipient["Diagnostic-Code"] = f"{spec}; {diagnostic}"
    per_recipient["Final-Log-ID"] = _clean(failure.queue_id)
    when = _date(failure.logged_at)
    if when:
        per_recipient["Last-Attempt-Date"] = when
    part = Message()
    part["Content-Type"] = "message/delivery-status"
    part["Content-Description"] = "Delivery report"
    part.set_payload([per_message, per_recipient])
    return part


def _headers(failure: DeliveryFailure) -> Message:
    fields = [f"Message-ID: <{_clean(failure.message_id)}>"]
    if failure.sender:
        fields += [f"From: <{_clean(failure.sender)}>", f"Return-Path: <{_clean(failure.sender)}>"]
    part = Message()
    part["Content-Type"] = "text/rfc822-headers"
    part["Content-Description"] = "Undelivered Message Headers"
    # An SMTPUTF8 sender or Message-ID stays UTF-8 (RFC 6532): bytes carried through as the generator
    # writes 8-bit payloads, with surrogateescape.
    part.set_payload(("\n".join(fields) + "\n").encode("utf-8").decode("ascii", "surrogateescape"))
    return part


def _clean(value: str) -> str:
    # Log text is foreign input: no control character may end a field or start a new one.
    return _CONTROL.sub(" ", value).strip()


def _host(value: str) -> str:
    found = _HOST.fullmatch(value)
    return found.group() if found else "localhost"


def _date(logged_at: str) -> str:
    """An RFC 5322 date for a time stamp that says its year and zone; '' for the others (BSD syslog)."""
    if not _ZONED.fullmatch(logged_at):
        return ""
    try:
        return format_datetime(datetime.fromisoformat(logged_at.replace(" +", "+").replace(" -", "-")))
    except ValueError:
        return ""
