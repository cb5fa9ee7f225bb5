"""Postfix: one message's facts are spread over several lines, joined by their queue id.

A message submitted over SMTP (postconf(5), the daemons' manual pages; the lines of a real
Postfix 3.7 in tests/test_maillog_postfix.py; one line each in the log)::

    postfix/smtpd[31026]: 7DAC3226316: client=localhost[127.0.0.1], sasl_method=PLAIN,
        sasl_username=alice@example.com
    postfix/cleanup[31030]: 7DAC3226316: message-id=<probe.1@example.com>
    postfix/qmgr[31024]: 7DAC3226316: from=<alice@example.com>, size=306, nrcpt=1 (queue active)
    postfix/qmgr[31024]: 7DAC3226316: removed

``sasl_username`` is there only after SMTP AUTH (``smtpd_sasl_auth_enable``) or XCLIENT LOGIN; a
local submission (``sendmail``, PHP ``mail()``) starts with ``postfix/pickup[..]: QID: uid=33
from=<www-data>`` instead of the smtpd line. Queue ids are hex (``7DAC3226316``) or, with
``enable_long_queue_ids = yes``, longer and alphanumeric (``4Fq3Yb2XZmz9sQ``).

A message is followed from its smtpd or pickup line only: Postfix's own bounces and mail
re-queued after a restart have no such line here, and are none of the ledger's business. The
fact is given out at the ``qmgr`` ``from=`` line (the envelope sender, after rewriting), or at
``removed``, or when the message is pushed out of the bounded state, as long as the Message-ID
is known by then. The state is an LRU of at most ``max_pending`` queue ids: a queue id whose
lines never complete costs memory only until newer messages push it out.

Delivery failures (postconf(5) and the delivery agents' manual pages; the wording of Postfix's
``smtp``, ``local``, ``virtual`` and ``error`` agents; one line each)::

    postfix/smtp[31040]: 7DAC3226316: to=<bob@example.net>, relay=mx.example.net[203.0.113.5]:25,
        delay=1.2, delays=0.1/0/0.6/0.5, dsn=5.1.1, status=bounced (host mx.example.net[203.0.113.5]
        said: 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown (in reply to
        RCPT TO command))
    postfix/error[31041]: 9B1C4226318: to=<x@example.org>, relay=none, delay=0.2, delays=0.1/0/0/0.1,
        dsn=5.0.0, status=bounced (User unknown)

arrive after the ``from=`` line that gives the fact, and before ``removed``: so a queue id stays
in the state until ``removed`` (or until pushed out), its fact given once, and a failure line is
joined with its Message-ID and sender. ``status=deferred`` is given out as a deferral once per
queue id, recipient and status code (a message retried 30 times in 5 days with the same answer
is one soft bounce, not 30; a new answer is a new fact), keeping at most ``_MAX_REPORTED`` keys
per queue id. A failure of a queue id not followed from its start (Postfix's own bounces, the
log's beginning) is skipped like its other lines: it names nobody of ours.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field

from maillog.envelope import SyslogLine
from maillog.model import DeliveryFailure, Fact, LedgerFact, ReadCounts
from rfc822 import bare_message_id

__all__ = ["DAEMONS", "DELIVERY_AGENTS", "PostfixCorrelator"]

# The daemons whose lines matter (the last part of the syslog program name: "postfix/smtpd",
# "postfix/submission/smtpd", "postfix-out/smtpd" for a second instance).
DAEMONS = frozenset({"smtpd", "pickup", "cleanup", "qmgr"})
# The delivery agents, whose "to=<...>, ..., status=..." lines say how each recipient fared.
DELIVERY_AGENTS = frozenset({"smtp", "lmtp", "local", "virtual", "pipe", "error", "retry"})

# Short ids: hex; long ids (enable_long_queue_ids): 10 or more letters and digits. "NOQUEUE"
# (a rejected RCPT) is neither.
_QID = r"(?P<qid>[0-9A-F]{6,20}|[0-9A-Za-z]{10,24}): "
_CLIENT = re.compile(_QID + r"client=(?P<name>[^\[\s]*)\[(?P<ip>[^\]\s]*)\](?::\d+)?(?P<rest>(?:, .*)?)")
_SASL_USER = re.compile(r", sasl_username=(?P<user>.*?)(?=, [a-z_]+=|$)")
_PICKUP = re.compile(_QID + r"uid=(?P<uid>\d+) from=<(?P<sender>[^>]*)>")
_MESSAGE_ID = re.compile(_QID + r"message-id=(?P<id>.*)")
_FROM = re.compile(_QID + r"from=<(?P<sender>[^>]*)>, size=\d+, nrcpt=\d+.*")
_REMOVED = re.compile(_QID + r"removed")
_DELIVERY = re.compile(_QID + r"to=<(?P<rcpt>[^>]*)>(?:, orig_to=<(?P<orig>[^>]*)>)?"
                       r", relay=(?P<relay>[^,\s]+)(?P<fields>(?:, [a-z_]+=[^,\s]+)*)"
                       r", status=(?P<status>bounced|deferred) \((?P<text>.*)\)")
_DSN = re.compile(r", dsn=(?P<dsn>[245]\.\d{1,3}\.\d{1,3})\b")
_RELAY_HOST = re.compile(r"(?P<name>[^\[\]]*)\[(?P<ip>[^\]]*)\]")
# The smtp/lmtp client's wording for a remote reply: "host NAME[IP] said: REPLY (in reply to ...)",
# or at the greeting "host NAME[IP] refused to talk to me: REPLY".
_REMOTE_REPLY = re.compile(r"host (?P<name>[^\s\[]*)\[[^\]]*\] (?:said|refused to talk to me): (?P<reply>.*)")
_MAX_REPORTED = 1000  # (recipient, status) keys remembered per queue id, to report a deferral once


@dataclass
class _Pending:
    """What is known so far of one queue id."""

    account: str = ""
    script: str = ""
    client: str = ""
    sender: str = ""
    message_id: str = ""
    queued: bool = False  # qmgr's from= line was seen
    given: bool = False  # its LedgerFact was given out; it is kept for its delivery lines until "removed"
    reported: set[tuple[str, bool, str]] = field(default_factory=set)  # (recipient, bounced, status)


class PostfixCorrelator:
    """Joins Postfix's lines by queue id; gives out each message's ``LedgerFact`` and ``DeliveryFailure``s."""

    def __init__(self, counts: ReadCounts, max_pending: int = 10_000) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._counts = counts
        self._max_pending = max_pending
        self._pending: OrderedDict[str, _Pending] = OrderedDict()

    @property
    def pending(self) -> int:
        """Queue ids waiting for more lines."""
        return len(self._pending)

    def feed(self, daemon: str, text: str, line: SyslogLine | None = None,
             raw: str = "") -> tuple[bool, list[Fact]]:
        """Read one line's text from ``daemon``: (was the line used, the facts it completed).

        ``line`` and ``raw`` (the syslog parts and the whole line) are the evidence a failure keeps.
        """
        if daemon == "smtpd":
            return self._origin(_CLIENT.fullmatch(text), "smtpd")
        if daemon == "pickup":
            return self._origin(_PICKUP.fullmatch(text), "pickup")
        if daemon == "cleanup":
            return self._update(_MESSAGE_ID.fullmatch(text), queued=False)
        if daemon == "qmgr":
            found = _FROM.fullmatch(text)
            if found is not None:
                return self._update(found, queued=True)
            return self._removed(_REMOVED.fullmatch(text))
        if daemon in DELIVERY_AGENTS:
            return self._delivery(_DELIVERY.fullmatch(text), line, raw)
        return False, []

    def flush(self) -> list[Fact]:
        """At the end of the input: the facts of every message whose Message-ID is known; forget all."""
        facts: list[Fact] = []
        while self._pending:
            qid, pending = self._pending.popitem(last=False)
            facts += self._finish(qid, pending)
        return facts

    def _origin(self, found: re.Match[str] | None, daemon: str) -> tuple[bool, list[Fact]]:
        if found is None:
            return False, []
        pending = _Pending()
        if daemon == "smtpd":
            pending.client = found["ip"]
            user = _SASL_USER.search(found["rest"])
            pending.account = user["user"].strip() if user else ""
        else:
            pending.script = f"uid:{found['uid']}"
            pending.sender = found["sender"]  # qmgr's from= has it rewritten, with the domain
        qid = found["qid"]
        facts: list[Fact] = []
        earlier = self._pending.pop(qid, None)  # a short queue id can come back after its "removed"
        if earlier is not None:
            facts += self._finish(qid, earlier)
        self._pending[qid] = pending
        while len(self._pending) > self._max_pending:
            old_qid, old = self._pending.popitem(last=False)
            facts += self._finish(old_qid, old)
        return True, facts

    def _update(self, found: re.Match[str] | None, queued: bool) -> tuple[bool, list[Fact]]:
        if found is None:
            return False, []
        qid = found["qid"]
        pending = self._pending.get(qid)
        if pending is None:  # not followed from its start (a bounce, a requeue, the log's beginning)
            return False, []
        self._pending.move_to_end(qid)
        if queued:  # qmgr: from=<...>
            pending.queued = True
            pending.sender = found["sender"]
        else:  # cleanup: message-id=...
            pending.message_id = pending.message_id or bare_message_id(found["id"])
        if pending.message_id and pending.queued and not pending.given:
            return True, self._finish(qid, pending)
        return True, []

    def _removed(self, found: re.Match[str] | None) -> tuple[bool, list[Fact]]:
        if found is None:
            return False, []
        pending = self._pending.pop(found["qid"], None)
        if pending is None:
            return False, []
        return True, self._finish(found["qid"], pending)

    def _delivery(self, found: re.Match[str] | None, line: SyslogLine | None,
                  raw: str) -> tuple[bool, list[Fact]]:
        if found is None:
            return False, []
        qid = found["qid"]
        pending = self._pending.get(qid)
        if pending is None or not pending.message_id:  # not ours, or nothing to join it with
            return False, []
        self._pending.move_to_end(qid)
        bounced = found["status"] == "bounced"
        code = _DSN.search(found["fields"])
        status = code["dsn"] if code else ("5.0.0" if bounced else "4.0.0")
        key = (found["rcpt"], bounced, status)
        if key in pending.reported or len(pending.reported) >= _MAX_REPORTED:
            return True, []
        pending.reported.add(key)
        facts = [] if pending.given else self._finish(qid, pending)  # the ledger's fact first
        text = found["text"]
        reply = _REMOTE_REPLY.fullmatch(text)  # else Postfix's own words: "User unknown", "connect to ..."
        return True, [*facts, DeliveryFailure(
            "postfix", qid, found["rcpt"], bounced, status, reply["reply"] if reply else text,
            remote_mta=_remote_mta(found["relay"]), original_recipient=found["orig"] or "",
            message_id=pending.message_id, account=pending.account, script=pending.script,
            client=pending.client, sender=pending.sender, host=line.host if line else "",
            logged_at=line.time if line else "", lines=(raw,) if raw else ())]

    def _finish(self, qid: str, pending: _Pending) -> list[Fact]:
        if pending.given:
            return []
        if not pending.message_id:
            self._counts.dropped += 1
            return []
        pending.given = True
        return [LedgerFact(pending.message_id, "postfix", qid, account=pending.account, script=pending.script,
                           client=pending.client, sender=pending.sender)]


def _remote_mta(relay: str) -> str:
    """The host that answered: ``relay=mx.example.net[203.0.113.5]:25`` gives its name, else its address.

    ``relay=none`` (no connection), ``local``, ``virtual`` or a socket path give ''.
    """
    found = _RELAY_HOST.match(relay)
    if found is None:
        return ""
    name = found["name"]
    return name if name and name != "unknown" else found["ip"]
