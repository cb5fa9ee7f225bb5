"""Mailing the weekly report to the admins, and retrying it until the relay takes it.

The message is multipart/alternative (RFC 2046 section 5.1.4): a plain-text summary first, the HTML
report (inline SVG, as rendered) last, the richer part a mail client shows; the CSV and the JSON
go as attachments. It is made from the files the weekly job stored, so what is mailed is what the
archive holds, and a retry needs no database.

Retries are the report's own, not the notification queue's: the delivery log
(``notify_deliveries``) only knows state changes and blocklistings, and its rows carry a JSON
payload, not a report. Beside the three files, ``.mail/<week>.json`` in the report directory says
who got it, who still has to, how many attempts were made, the last error and when to try next; the
scheduler's ``reports:mail`` job retries what is due with [notify].retry_seconds' delays, and after
the last one gives up (``failed``, logged as an error). A failure never touches the stored report.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, NamedTuple

from config import NotifySettings, Settings
from notify.deliver import retry_at
from notify.mail import send_mail
from notify.webhook import DeliveryError
from reports.build import Report, parse_week, report_file
from reports.render import percent, render_csv, render_html, render_json

__all__ = ["MailState", "NotMailed", "ReportMailer", "ReportTexts", "report_message", "report_subject",
           "report_summary"]

log = logging.getLogger(__name__)

_SUMMARY_ROWS = (("Sends", "sends"), ("Complaints", "complaints"), ("Bounces", "bounces"),
                 ("Hard bounces", "hard_bounces"))
_WORST = 10  # senders listed in the plain-text summary (the HTML has 25 per kind, the attachments all)


class NotMailed(DeliveryError):
    """Some recipients did not get the report (``str(error)`` says why); ``delivered`` did."""

    def __init__(self, message: str, delivered: list[str]) -> None:
        super().__init__(message)
        self.delivered = delivered


class ReportTexts(NamedTuple):
    """One week's report in its three formats, as stored."""

    html: str
    csv: str
    json: str

    @classmethod
    def rendered(cls, report: Report) -> ReportTexts:
        """Rendered from a built report."""
        return cls(render_html(report), render_csv(report), render_json(report))

    @classmethod
    def stored(cls, directory: Path, week: str) -> ReportTexts:
        """Read from ``directory`` (reports/archive.py wrote them); OSError when one is missing."""
        # As bytes: read_text would turn the CSV's CRLF line ends (RFC 4180) into LF.
        return cls(*(report_file(directory, week, extension).read_bytes().decode("utf-8")
                     for extension in ("html", "csv", "json")))


def _rate_line(name: str, week: float | None, previous: float | None, limits: str) -> str:
    return f"{name}: {percent(week)} (last week {percent(previous)}; {limits})"


def _provider(data: dict[str, Any]) -> list[str]:
    week, previous, limits = data["provider"]["week"], data["provider"]["previous"], data["thresholds"]
    bounce_limits = f"review {percent(limits['bounce_review'])}, pause {percent(limits['bounce_pause'])}"
    return [f"{label}: {week[key]} (last week {previous[key]})" for label, key in _SUMMARY_ROWS] + [
        _rate_line("Complaint rate", week["complaint_rate"], previous["complaint_rate"],
                   f"threshold {percent(limits['complaint_rate'])}"),
        _rate_line("Bounce rate", week["bounce_rate"], previous["bounce_rate"], bounce_limits)]


def _sender(sender: dict[str, Any]) -> str:
    week = sender["week"]
    return (f"{sender['kind']} {sender['value']}: {week['sends']} sends, {week['complaints']} complaints "
            f"({percent(week['complaint_rate'])}), {week['hard_bounces']} hard bounces "
            f"({percent(week['bounce_rate'])})")


def _ip(ip: dict[str, Any]) -> str:
    named = ", ".join(f"{name} ({count})" for name, count in ip["blocklists"].items())
    return f"{ip['ip']}: {ip['block_bounces']} block bounces; {named or 'no list named'}"


def _section(title: str, lines: list[str]) -> list[str]:
    return ["", f"{title}:", *(f"  {line}" for line in lines or ["none this week"])]


def report_summary(data: dict[str, Any]) -> str:
    """The plain-text part: the provider's figures against last week and the thresholds, the worst
    senders, the senders acted on, blocklisted IPs and scripts (numbers as in the JSON)."""
    lines = [f"Ricochet weekly reputation report, {data['week']} "
             f"({data['start'][:10]} to {data['end'][:10]}, UTC)", "", *_provider(data)]
    lines += _section("Worst senders", [_sender(s) for s in data["senders"][:_WORST]])
    lines += _section("Senders acted on", [f"{d['kind']} {d['value']}: {d['state']} by "
                                           f"{d['rule'] or 'an admin'}, ended: {d['ended']}"
                                           for d in data["decisions"]])
    lines += _section("Outbound IPs named by blocklists", [_ip(ip) for ip in data["ips"]])
    lines += _section("Scripts with the most complaints",
                      [f"{s['script']}: {s['complaints']}" for s in data["scripts"]])
    lines += ["", "The whole report is the HTML part of this message; the CSV and the JSON are attached."]
    return "\n".join(lines) + "\n"


def report_subject(data: dict[str, Any]) -> str:
    """One line with the week and its two rates."""
    week = data["provider"]["week"]
    return (f"[Ricochet] weekly report {data['week']}: {week['sends']} sends, complaint rate "
            f"{percent(week['complaint_rate'])}, bounce rate {percent(week['bounce_rate'])}")


def report_message(texts: ReportTexts, sender: str, recipient: str) -> EmailMessage:
    """The report's message to ``recipient``: summary and HTML as alternatives, CSV and JSON attached."""
    data = json.loads(texts.json)
    # Long lines are left to the content manager, which encodes them (RFC 5322 section 2.1.1).
    message = EmailMessage(policy=policy.default.clone(max_line_length=998))
    message["From"], message["To"], message["Subject"] = sender, recipient, report_subject(data)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(report_summary(data))
    message.add_alternative(texts.html, subtype="html")
    # As bytes (base64), so the CSV keeps its CRLF line ends (RFC 4180) and the JSON its bytes.
    name = f"ricochet-report-{data['week']}"
    message.add_attachment(texts.csv.encode("utf-8"), maintype="text", subtype="csv", filename=f"{name}.csv")
    message.add_attachment(texts.json.encode("utf-8"), maintype="application", subtype="json",
                           filename=f"{name}.json")
    return message


@dataclass
class MailState:
    """Where the mailing of one week's report stands (``<directory>/.mail/<week>.json``)."""

    week: str
    pending: list[str]
    delivered: list[str] = field(default_factory=list)
    attempts: int = 0
    next_attempt_at: str | None = None  # ISO 8601, UTC; None once delivered or failed
    last_error: str | None = None
    status: str = "pending"  # pending | delivered | failed

    @staticmethod
    def path(directory: Path, week: str) -> Path:
        """Its file, in a hidden folder so that a listing of the archive's ``<week>.<format>`` files
        does not meet it."""
        return directory / ".mail" / f"{week}.json"

    def save(self, directory: Path) -> None:
        """Write it (to a temporary name, then renamed: never half a file)."""
        path = self.path(directory, self.week)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> MailState:
        """Read one; ValueError or OSError when it cannot be."""
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def due(self, now: datetime) -> bool:
        """Pending and its next attempt has come."""
        return self.status == "pending" and (self.next_attempt_at is None
                                             or datetime.fromisoformat(self.next_attempt_at) <= now)


@dataclass(frozen=True)
class ReportMailer:
    """Who gets the report, and through which relay."""

    notify: NotifySettings
    recipients: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportMailer | None:
        """[reports].mail_to, else [notify].admins, through [notify]'s relay; None when there is no
        relay or nobody to mail."""
        recipients = tuple(settings.reports.mail_to or settings.notify.admins)
        if not settings.notify.smtp_host or not recipients:
            return None
        return cls(settings.notify, recipients)

    def send(self, texts: ReportTexts, recipients: tuple[str, ...] | None = None) -> list[str]:
        """Mail ``texts`` now, one message per recipient; returns who got it, raises NotMailed (naming
        the others and why) when anyone did not."""
        delivered, errors = [], []
        for recipient in recipients or self.recipients:
            try:
                send_mail(self.notify, report_message(texts, self.notify.mail_from, recipient), [recipient])
            except DeliveryError as error:
                errors.append(f"{recipient}: {error}")
            else:
                delivered.append(recipient)
        if errors:
            raise NotMailed("; ".join(errors), delivered)
        return delivered

    def queue(self, directory: Path, week: str, now: datetime) -> MailState:
        """Owe ``week``'s report stored in ``directory`` to every recipient from ``now`` on (a rebuild
        mails it again)."""
        state = MailState(week=parse_week(week), pending=list(self.recipients),
                          next_attempt_at=now.isoformat())
        state.save(directory)
        return state

    def send_due(self, directory: Path, now: datetime) -> list[MailState]:
        """Attempt every week stored in ``directory`` whose mailing is due (the ``reports:mail`` job);
        never raises on a delivery."""
        done = []
        for path in sorted((directory / ".mail").glob("*.json")):
            try:
                state = MailState.load(path)
            except (OSError, ValueError, TypeError) as error:
                log.error("reports: cannot read %s (%s); delete it to stop mailing that week", path, error)
                continue
            if state.due(now):
                self._attempt(directory, state, now)
                done.append(state)
        return done

    def _attempt(self, directory: Path, state: MailState, now: datetime) -> None:
        state.attempts += 1
        try:
            texts = ReportTexts.stored(directory, state.week)
        except OSError as error:
            self._failed(state, f"the stored report cannot be read ({error.strerror or error}); mail it "
                                f"by hand with `python app.py report --week {state.week} --mail`", now)
            state.save(directory)
            return
        try:
            got = self.send(texts, tuple(state.pending))
        except NotMailed as error:
            state.delivered += error.delivered
            state.pending = [r for r in state.pending if r not in error.delivered]
            self._failed(state, str(error), now)
            state.save(directory)
            return
        state.delivered += got
        state.pending, state.status, state.next_attempt_at, state.last_error = [], "delivered", None, None
        state.save(directory)
        log.info("reports: mailed the report of %s to %s", state.week, ", ".join(got))

    def _failed(self, state: MailState, error: str, now: datetime) -> None:
        """Write the failed attempt: retried after the next delay of [notify].retry_seconds, else given up."""
        state.last_error = error
        again = retry_at(self.notify, state.attempts, now)
        if again is None:
            state.status, state.next_attempt_at = "failed", None
            log.error("reports: giving up mailing the report of %s to %s after %d attempts: %s", state.week,
                      ", ".join(state.pending), state.attempts, error)
        else:
            state.next_attempt_at = again.isoformat()
            log.warning("reports: mailing the report of %s, attempt %d of %d, failed: %s; next at %s",
                        state.week, state.attempts, self.notify.max_attempts, error, state.next_attempt_at)
