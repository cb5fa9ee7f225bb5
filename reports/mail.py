"""Mailing the weekly report to the admins, and retrying it until the relay takes it.

The message is multipart/alternative (RFC 2046 section 5.1.4): a plain-text summary first, the HTML
report (inline SVG, as rendered) last, the richer part a mail client shows; the CSV and the JSON
go as attachments. It is made from the renderings stored in ``weekly_reports``, so what is mailed
is what the archive holds.

Retries are the report's own, not the notification queue's: the delivery log
(``notify_deliveries``) only knows state changes and blocklistings, and its rows carry a JSON
payload, not a report. The week's row of ``report_mailings`` (storage/report_models.py) says who
got it, who still has to, how many attempts were made, the last error and when to try next; the
scheduler's ``reports:mail`` job retries what is due with [notify].retry_seconds' delays, and after
the last one gives up (``failed``, logged as an error). A failure never touches the stored report.

Each attempt is claimed before anything is sent: one transaction moves the row's attempts from the
number read to the next one and writes ahead what a failure of this attempt would leave (the next
attempt's time, at least the attempt's own length away, or ``failed`` after the last delay), then
commits. Another run (the weekly job's own try, the minute job, a scheduler that took over after a
fail-over) no longer finds the row due, and of two runs that read it at once only one moves it. Each
recipient the relay accepted is then written at once, in its own transaction, so a scheduler that
dies in the middle leaves only the others pending. What is not guaranteed (docs/reports.md): a
process that dies between the relay's acceptance and that write makes the recipient get it again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, NamedTuple

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from config import NotifySettings, Settings
from notify.deliver import retry_at
from notify.mail import send_mail
from notify.webhook import DeliveryError
from reports.build import Report
from reports.render import percent, render_csv, render_html, render_json
from storage.report_models import MailingStatus, ReportMailing, WeeklyReport, due_mailings, queue_mailing

__all__ = ["NotMailed", "ReportMailer", "ReportTexts", "report_message", "report_subject", "report_summary"]

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
    def stored(cls, session: Session, week: str) -> ReportTexts | None:
        """As stored in ``weekly_reports`` (reports/archive.py wrote them); None when the week has no row."""
        row = session.get(WeeklyReport, week)
        return None if row is None else cls(row.html, row.csv, row.json)


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


# An SMTP transaction is a connection and about this many commands (EHLO, STARTTLS, EHLO, AUTH, MAIL,
# RCPT, DATA, the data, QUIT), each bounded by [notify].timeout_seconds: a claim lasts at least this
# many timeouts per recipient, so that it outlives an attempt on a slow relay.
_STEPS_PER_RECIPIENT = 10
_INTERRUPTED = ("attempt {attempt} did not finish (the scheduler stopped while mailing); the recipients "
                "left are retried")


@dataclass(frozen=True)
class _Claim:
    """One attempt that this run owns: the week, its number, who to mail and what."""

    week: str
    attempt: int
    pending: tuple[str, ...]
    texts: ReportTexts


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

    def send(self, texts: ReportTexts, recipients: tuple[str, ...] | None = None,
             on_delivered: Callable[[str], None] | None = None) -> list[str]:
        """Mail ``texts`` now, one message per recipient, calling ``on_delivered(recipient)`` as each is
        accepted; returns who got it, raises NotMailed (naming the others and why) when anyone did not."""
        delivered, errors = [], []
        for recipient in self.recipients if recipients is None else recipients:
            try:
                send_mail(self.notify, report_message(texts, self.notify.mail_from, recipient), [recipient])
            except DeliveryError as error:
                errors.append(f"{recipient}: {error}")
            else:
                delivered.append(recipient)
                if on_delivered is not None:
                    on_delivered(recipient)
        if errors:
            raise NotMailed("; ".join(errors), delivered)
        return delivered

    def queue(self, session: Session, week: str, now: datetime) -> None:
        """Owe ``week``'s stored report to every recipient from ``now`` on (a rebuild mails it again);
        the caller commits, with the report it stored."""
        queue_mailing(session, week, list(self.recipients), now)

    def send_due(self, sessions: sessionmaker[Session], now: datetime) -> list[str]:
        """Attempt every week whose mailing is due at ``now`` and that this run could claim (the
        ``reports:mail`` job); returns those weeks. Never raises on a delivery."""
        with sessions() as session:
            seen = [(row.week, row.attempts) for row in due_mailings(session, now)]
        attempted = []
        for week, attempts in seen:
            claim = self._claim(sessions, week, attempts, now)
            if claim is not None:
                self._attempt(sessions, claim, now)
                attempted.append(week)
        return attempted

    def _claim(self, sessions: sessionmaker[Session], week: str, attempts: int,
               now: datetime) -> _Claim | None:
        """Take attempt ``attempts + 1`` of ``week``, writing ahead what its failure would leave; None
        when another run took it first (or it is no longer due)."""
        attempt = attempts + 1
        again = retry_at(self.notify, attempt, now)
        if again is not None:
            held = self.notify.timeout_seconds * _STEPS_PER_RECIPIENT * max(len(self.recipients), 1)
            again = max(again, now + timedelta(seconds=held))
        with sessions() as session:
            status = MailingStatus.PENDING if again is not None else MailingStatus.FAILED
            claimed = session.execute(
                update(ReportMailing)
                .where(ReportMailing.week == week, ReportMailing.attempts == attempts,
                       ReportMailing.status == MailingStatus.PENDING.value,
                       ReportMailing.next_attempt_at <= now)
                .values(attempts=attempt, next_attempt_at=again, status=status.value,
                        last_error=_INTERRUPTED.format(attempt=attempt))
                .execution_options(synchronize_session=False))
            if getattr(claimed, "rowcount", 0) != 1:
                session.rollback()
                return None
            # Read after the update, in its transaction: the row is this run's until it commits, and
            # the report cannot go meanwhile (ON DELETE CASCADE would have to change the row).
            row = session.get(ReportMailing, week)
            pending = tuple(row.pending) if row is not None else ()
            texts = ReportTexts.stored(session, week)
            session.commit()
        if texts is None:  # not while the claim held the row; a report deleted since takes its mailing
            return None
        return _Claim(week, attempt, pending, texts)

    def _attempt(self, sessions: sessionmaker[Session], claim: _Claim, now: datetime) -> None:
        # With nobody pending (an attempt that mailed everyone and stopped before it wrote so), nobody
        # is mailed and the row is written delivered.
        try:
            got = self.send(claim.texts, claim.pending,
                            lambda recipient: _delivered(sessions, claim.week, recipient))
        except NotMailed as error:
            self._failed(sessions, claim, str(error), now)
            return
        with sessions() as session:
            session.execute(update(ReportMailing).where(ReportMailing.week == claim.week).values(
                status=MailingStatus.DELIVERED.value, next_attempt_at=None, last_error=None))
            session.commit()
        log.info("reports: mailed the report of %s to %s", claim.week, ", ".join(got))

    def _failed(self, sessions: sessionmaker[Session], claim: _Claim, error: str, now: datetime) -> None:
        """Write the failed attempt: retried after the next delay of [notify].retry_seconds, else given up."""
        again = retry_at(self.notify, claim.attempt, now)
        status = MailingStatus.PENDING if again is not None else MailingStatus.FAILED
        with sessions() as session:
            row = session.get(ReportMailing, claim.week)
            pending = list(row.pending) if row is not None else []
            session.execute(update(ReportMailing).where(ReportMailing.week == claim.week).values(
                status=status.value, next_attempt_at=again, last_error=error))
            session.commit()
        if again is None:
            log.error("reports: giving up mailing the report of %s to %s after %d attempts: %s", claim.week,
                      ", ".join(pending), claim.attempt, error)
        else:
            log.warning("reports: mailing the report of %s, attempt %d of %d, failed: %s; next at %s",
                        claim.week, claim.attempt, self.notify.max_attempts, error, again.isoformat())


def _delivered(sessions: sessionmaker[Session], week: str, recipient: str) -> None:
    """Write at once that ``recipient`` got ``week``'s report, so that no later attempt mails it again."""
    with sessions() as session:
        row = session.get(ReportMailing, week)
        if row is None:  # the report was deleted meanwhile: nothing left to owe
            return
        row.pending = [address for address in row.pending if address != recipient]
        row.delivered = [*row.delivered, recipient]
        session.commit()
