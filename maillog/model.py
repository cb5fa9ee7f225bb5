"""What a mail log tells the ledger: one ``LedgerFact`` per message our MTA accepted.

The ledger (``message_ledger``) maps the Message-ID of a message we sent to who sent it; a
complaint or bounce that quotes that Message-ID later is attributed through it (docs/ingest.md).
The facts carry only what the MTA itself logged, so they need no trust boundary: a header can be
forged by the sender, the MTA's own log line cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeliveryFailure", "Fact", "LedgerFact", "ReadCounts"]

@dataclass(frozen=True)
class LedgerFact:
    """Who sent the message with ``message_id`` (no angle brackets), as the MTA logged it ('' = unknown).

    ``account`` is the SMTP AUTH user (Postfix ``sasl_username``, Exim ``A=``) or, for an Exim
    local submission, the Unix user (``U=``, what docs/mta.md's ``acl_not_smtp`` sends as the
    account); ``script`` is ``uid:N`` for a Postfix local submission (``pickup`` logs the
    submitting uid, not a name); ``client`` the IP address of the SMTP client; ``sender`` the
    envelope sender. ``mta`` and ``queue_id`` say where the fact comes from.
    """

    message_id: str
    mta: str
    queue_id: str
    account: str = ""
    script: str = ""
    client: str = ""
    sender: str = ""

    @property
    def authenticated(self) -> bool:
        """True when the MTA knew who submitted it: SMTP AUTH, or a local user."""
        return bool(self.account or self.script)


@dataclass(frozen=True)
class DeliveryFailure:
    """One recipient our MTA could not deliver to, as its log says (a bounce it sent to the sender).

    ``bounced`` is False for a deferral (Postfix ``status=deferred``, Exim ``==``): the MTA will
    try again. ``status`` is the RFC 3463 code (Postfix's ``dsn=``, else the first one in the
    text, else 5.0.0 / 4.0.0); ``diagnostic`` the reason the MTA logged (the remote reply when
    there is one); ``remote_mta`` the host that answered ('' when none did). The sender's
    identity (``message_id``, ``account``, ``script``, ``client``, ``sender``) comes from the same
    message's earlier lines, as in its ``LedgerFact``. ``host`` is the logging host (syslog; ''
    in Exim's own main log), ``logged_at`` the log line's time stamp as written, ``lines`` the
    log line(s) that say it, the evidence.
    """

    mta: str
    queue_id: str
    recipient: str
    bounced: bool
    status: str
    diagnostic: str
    remote_mta: str = ""
    original_recipient: str = ""
    message_id: str = ""
    account: str = ""
    script: str = ""
    client: str = ""
    sender: str = ""
    host: str = ""
    logged_at: str = ""
    lines: tuple[str, ...] = ()

    @property
    def authenticated(self) -> bool:
        """True when the MTA knew who submitted the failed message: SMTP AUTH, or a local user."""
        return bool(self.account or self.script)


Fact = LedgerFact | DeliveryFailure  # what a log reader gives out


@dataclass
class ReadCounts:
    """What a reader saw: ``lines`` = ``used`` + ``skipped``.

    ``used``: a Postfix or Exim line the reader needs (client, message-id, from, removed, arrival,
    a failure or deferral of a message it follows);
    ``skipped``: anything else (other programs, other Postfix lines, garbage, over-long lines);
    ``facts``: ledger facts given out; ``failures``: delivery failures given out; ``dropped``:
    messages forgotten without a Message-ID (never completed, or pushed out of the bounded
    correlation state).
    """

    lines: int = 0
    used: int = 0
    skipped: int = 0
    facts: int = 0
    failures: int = 0
    dropped: int = 0
