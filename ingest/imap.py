"""The IMAP collector: complaints and bounces from the provider's FBL and bounce mailboxes.

For each configured mailbox (config/imap.py), one run:

1. connects (ingest/imap_server.py), selects the folder and reads its UIDVALIDITY. When it differs
   from the stored one (storage.ImapState), the UIDs we remembered mean nothing any more (RFC 3501
   section 2.3.1.1): collection starts again from UID 1, and the pipeline's SHA-256 deduplication
   absorbs the messages stored before.
2. for each message, in UID order and at most ``batch_size`` per run: FETCH BODY.PEEK[] (so the
   server marks nothing \\Seen before we are done), ``pipeline.ingest`` with the last UID in the same
   transaction, COMMIT; only then MOVE it to the processed (or quarantine) folder, or flag it.

Why nothing is lost or doubled when the process dies anywhere: before the commit, neither the
message nor the new last UID is stored and the message is still in the folder, so the next run
takes it again; after the commit and before the MOVE, the message is stored and sits in the folder
at or below the last UID, so the next run finds it as "left over", ingests it again (the pipeline
says duplicate: no second row) and moves it. tests/test_imap_crash.py kills the process to check.

Connection failures are retried with exponential backoff (``backoff_seconds`` doubled per attempt,
capped at ``backoff_max_seconds``), a refused login or a missing folder is not; a mailbox that
failed is skipped by later scheduled runs for a backoff that grows with its failures. One
mailbox's failure never stops the others.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from sqlalchemy.orm import Session, sessionmaker

from config.imap import ImapMailbox, ImapSettings
from ingest.imap_server import (
    Connect,
    ImapFailure,
    ImapRetry,
    acknowledge,
    connect,
    ensure_folder,
    keywords_allowed,
    pending_uids,
    server_folder,
)
from ingest.pipeline import IngestResult, Pipeline
from storage import MessageStatus, find_raw_message, imap_state, sha256_hex

__all__ = ["ImapCollector", "MailboxReport"]

log = logging.getLogger(__name__)

# Messages fetched per FETCH command: fewer round trips, bounded memory (each may be megabytes).
FETCH_CHUNK = 10


@dataclass
class MailboxReport:
    """What one run did with one mailbox."""

    name: str
    fetched: int = 0  # messages read from the server
    new: int = 0  # stored for the first time
    duplicates: int = 0  # already stored (same bytes, or the same complaint)
    quarantined: int = 0  # stored, but could not be parsed
    moved: int = 0  # moved to the processed or quarantine folder
    flagged: int = 0  # flagged done instead of moved
    error: str | None = None  # why the run failed (what was done before the failure still counts)
    skipped: bool = False  # not tried: the mailbox is waiting out its backoff after failures
    uidvalidity: int | None = None
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for people: the counts, then the error if any."""
        if self.skipped:
            return f"{self.name}: skipped, waiting after earlier failures ({self.error})"
        counts = (f"{self.name}: fetched {self.fetched}, new {self.new}, duplicates {self.duplicates}, "
                  f"quarantined {self.quarantined}, moved {self.moved}")
        if self.flagged:
            counts += f", flagged {self.flagged}"
        return counts + (f"; FAILED: {self.error}" if self.error else "")


@dataclass
class _Health:
    failures: int = 0
    retry_at: float = 0.0


class ImapCollector:
    """Collects the configured mailboxes into the pipeline; one instance per process."""

    def __init__(self, sessions: sessionmaker[Session], pipeline: Pipeline, settings: ImapSettings, *,
                 connect: Connect = connect, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``connect``, ``sleep`` and ``clock`` are seams for tests; the defaults are the real ones."""
        self.sessions = sessions
        self.pipeline = pipeline
        self.settings = settings
        self._connect = connect
        self._sleep = sleep
        self._clock = clock
        self._health: dict[str, _Health] = {}

    def mailbox(self, name: str) -> ImapMailbox:
        """The configured mailbox called ``name`` (KeyError when there is none)."""
        for mailbox in self.settings.mailboxes:
            if mailbox.name == name:
                return mailbox
        raise KeyError(name)

    def collect_all(self) -> list[MailboxReport]:
        """One run over every configured mailbox, one after the other; never raises for one of them."""
        return [self.collect(mailbox) for mailbox in self.settings.mailboxes]

    def collect(self, mailbox: ImapMailbox, *, wait_backoff: bool = True) -> MailboxReport:
        """One run over ``mailbox``: up to ``batch_size`` messages. Failures end up in the report.

        ``wait_backoff``: skip the mailbox while it waits out the backoff of earlier failed runs
        (the scheduler's behaviour); False tries it anyway.
        """
        report = MailboxReport(mailbox.name)
        health = self._health.setdefault(mailbox.name, _Health())
        if wait_backoff and self._clock() < health.retry_at:
            report.skipped = True
            wait = health.retry_at - self._clock()
            report.error = f"{health.failures} failed run(s); next try in {wait:.0f} s"
            return report
        try:
            self._attempts(mailbox, report)
        except ImapFailure as failure:
            report.error = str(failure)
        except Exception as error:  # a bug or a database failure: this mailbox only, logged whole
            log.exception("imap:%s: collecting failed", mailbox.name)
            report.error = f"{type(error).__name__}: {error}"
        if report.error is None:
            health.failures, health.retry_at = 0, 0.0
            self._log_success(report)
        else:
            health.failures += 1
            delay = self._delay(health.failures)
            health.retry_at = self._clock() + delay
            log.error("imap:%s: %s (%d failed run(s) in a row; the scheduler tries again in %.0f s)",
                      mailbox.name, report.line(), health.failures, delay)
        return report

    def _attempts(self, mailbox: ImapMailbox, report: MailboxReport) -> None:
        """Run, reconnecting after a broken connection up to ``connect_attempts`` times in all."""
        attempts = self.settings.connect_attempts
        for attempt in range(1, attempts + 1):
            try:
                self._run(mailbox, report)
                return
            except ImapRetry as retry:
                if attempt == attempts:
                    raise ImapFailure(f"{retry} (gave up after {attempts} attempt(s))") from None
                delay = self._delay(attempt)
                log.warning("imap:%s: %s; attempt %d of %d, next in %.1f s", mailbox.name, retry, attempt,
                            attempts, delay)
                self._sleep(delay)

    def _delay(self, attempt: int) -> float:
        """Exponential backoff: backoff_seconds, doubled per attempt, capped."""
        doubled = self.settings.backoff_seconds * 2 ** (attempt - 1)
        return float(min(doubled, self.settings.backoff_max_seconds))

    def _run(self, mailbox: ImapMailbox, report: MailboxReport) -> None:
        client = self._connect(mailbox, float(self.settings.timeout_seconds))
        try:
            with _transport_errors(mailbox):
                self._collect_connected(client, mailbox, report)
        finally:
            with contextlib.suppress(OSError, IMAPClientError):
                client.logout()

    def _collect_connected(self, client: IMAPClient, mailbox: ImapMailbox, report: MailboxReport) -> None:
        folder = server_folder(client, mailbox.folder)
        targets: dict[bool, str | None] = {False: None, True: None}  # by "quarantined"; None: flag
        if not mailbox.flag_instead_of_move:
            for quarantined, name in ((False, mailbox.processed_folder), (True, mailbox.quarantine_folder)):
                target = targets[quarantined] = server_folder(client, name)
                ensure_folder(client, target)
        try:
            selected = client.select_folder(folder)
        except IMAPClientError as error:
            raise ImapFailure(f"cannot open folder {folder!r} ({error}); check folder") from None
        uidvalidity = int(selected[b"UIDVALIDITY"])
        report.uidvalidity = uidvalidity
        last_uid = self._start(mailbox, uidvalidity)
        keywords = keywords_allowed(selected)
        flagging = mailbox.flag_instead_of_move
        leftover, new = pending_uids(client, last_uid, flagging=flagging, keywords=keywords)
        batch = (leftover + new)[:mailbox.batch_size]
        if leftover:
            log.info("imap:%s: %d message(s) stored earlier but not yet %s; finishing them", mailbox.name,
                     len(leftover), "flagged" if mailbox.flag_instead_of_move else "moved")
        for uids in _chunks(batch, FETCH_CHUNK):
            fetched = client.fetch(uids, ["BODY.PEEK[]"])
            for uid in uids:
                raw = fetched.get(uid, {}).get(b"BODY[]")
                if raw is None:  # expunged by someone else since the SEARCH
                    continue
                report.fetched += 1
                quarantined = self._store(mailbox, uidvalidity, uid, raw, report)
                done = acknowledge(client, uid, target=targets[quarantined], quarantined=quarantined,
                                   keywords=keywords)
                if done == "moved":
                    report.moved += 1
                else:
                    report.flagged += 1

    def _start(self, mailbox: ImapMailbox, uidvalidity: int) -> int:
        """The last UID collected under ``uidvalidity``: 0 when it is new (and remembered as such)."""
        with self.sessions() as session:
            state = imap_state(session, mailbox.name)
            if state.uidvalidity == uidvalidity:
                last_uid = state.last_uid
                session.commit()
                return last_uid
            if state.uidvalidity is not None:
                log.warning("imap:%s: UIDVALIDITY changed from %s to %s (the folder was recreated or "
                            "migrated); collecting it again from the start, known messages count as "
                            "duplicates", mailbox.name, state.uidvalidity, uidvalidity)
            state.uidvalidity = uidvalidity
            state.last_uid = 0
            session.commit()
            return 0

    def _store(self, mailbox: ImapMailbox, uidvalidity: int, uid: int, raw: bytes,
               report: MailboxReport) -> bool:
        """Ingest one message and advance the last UID, in one transaction; True if quarantined."""
        with self.sessions() as session:
            result = self.pipeline.ingest(session, raw, source=mailbox.source,
                                          source_ref=f"{uidvalidity}:{uid}")
            quarantined = _quarantined(session, result, raw)
            state = imap_state(session, mailbox.name)
            if state.uidvalidity == uidvalidity and uid > state.last_uid:
                state.last_uid = uid
            session.commit()
        if result.created and result.status != MessageStatus.DUPLICATE.value:
            report.new += 1
        else:
            report.duplicates += 1
        if quarantined:
            report.quarantined += 1
            log.warning("imap:%s: UID %s quarantined as raw message %s: %s", mailbox.name, uid,
                        result.stored_id or result.message_id, (result.error or "").splitlines()[:1])
        return quarantined

    def _log_success(self, report: MailboxReport) -> None:
        level = logging.INFO if report.fetched else logging.DEBUG
        log.log(level, "imap:%s", report.line())


def _quarantined(session: Session, result: IngestResult, raw: bytes) -> bool:
    """Whether the stored copy of ``raw`` is quarantined (for a duplicate: the earlier copy's status)."""
    if result.status == MessageStatus.QUARANTINED.value:
        return True
    if result.created:
        return False
    stored = find_raw_message(session, sha256_hex(raw))
    return stored is not None and stored.status == MessageStatus.QUARANTINED.value


@contextlib.contextmanager
def _transport_errors(mailbox: ImapMailbox) -> Iterator[None]:
    """A dropped connection in the middle of a run becomes ImapRetry; the server's NO stays a failure."""
    where = f"{mailbox.host}:{mailbox.port}"
    try:
        yield
    except (OSError, IMAPClientAbortError) as error:
        raise ImapRetry(f"the connection to {where} broke ({type(error).__name__}: {error})") from None
    except IMAPClientError as error:
        raise ImapFailure(f"{where} answered an error ({error})") from None


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
