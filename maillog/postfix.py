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
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

from maillog.model import LedgerFact, ReadCounts, bare_message_id

__all__ = ["DAEMONS", "PostfixCorrelator"]

# The daemons whose lines matter (the last part of the syslog program name: "postfix/smtpd",
# "postfix/submission/smtpd", "postfix-out/smtpd" for a second instance).
DAEMONS = frozenset({"smtpd", "pickup", "cleanup", "qmgr"})

# Short ids: hex; long ids (enable_long_queue_ids): 10 or more letters and digits. "NOQUEUE"
# (a rejected RCPT) is neither.
_QID = r"(?P<qid>[0-9A-F]{6,20}|[0-9A-Za-z]{10,24}): "
_CLIENT = re.compile(_QID + r"client=(?P<name>[^\[\s]*)\[(?P<ip>[^\]\s]*)\](?::\d+)?(?P<rest>(?:, .*)?)")
_SASL_USER = re.compile(r", sasl_username=(?P<user>.*?)(?=, [a-z_]+=|$)")
_PICKUP = re.compile(_QID + r"uid=(?P<uid>\d+) from=<(?P<sender>[^>]*)>")
_MESSAGE_ID = re.compile(_QID + r"message-id=(?P<id>.*)")
_FROM = re.compile(_QID + r"from=<(?P<sender>[^>]*)>, size=\d+, nrcpt=\d+.*")
_REMOVED = re.compile(_QID + r"removed")


@dataclass
class _Pending:
    """What is known so far of one queue id."""

    account: str = ""
    script: str = ""
    client: str = ""
    sender: str = ""
    message_id: str = ""
    queued: bool = False  # qmgr's from= line was seen


class PostfixCorrelator:
    """Joins Postfix's lines by queue id and gives out a ``LedgerFact`` per message."""

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

    def feed(self, daemon: str, text: str) -> tuple[bool, list[LedgerFact]]:
        """Read one line's text from ``daemon``: (was the line used, the facts it completed)."""
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
        return False, []

    def flush(self) -> list[LedgerFact]:
        """At the end of the input: the facts of every message whose Message-ID is known; forget all."""
        facts = []
        while self._pending:
            qid, pending = self._pending.popitem(last=False)
            facts += self._finish(qid, pending)
        return facts

    def _origin(self, found: re.Match[str] | None, daemon: str) -> tuple[bool, list[LedgerFact]]:
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
        self._pending.pop(qid, None)  # a short queue id can come back after its "removed"
        self._pending[qid] = pending
        facts: list[LedgerFact] = []
        while len(self._pending) > self._max_pending:
            old_qid, old = self._pending.popitem(last=False)
            facts += self._finish(old_qid, old)
        return True, facts

    def _update(self, found: re.Match[str] | None, queued: bool) -> tuple[bool, list[LedgerFact]]:
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
        if pending.message_id and pending.queued:
            del self._pending[qid]
            return True, self._finish(qid, pending)
        return True, []

    def _removed(self, found: re.Match[str] | None) -> tuple[bool, list[LedgerFact]]:
        if found is None:
            return False, []
        pending = self._pending.pop(found["qid"], None)
        if pending is None:
            return False, []
        return True, self._finish(found["qid"], pending)

    def _finish(self, qid: str, pending: _Pending) -> list[LedgerFact]:
        if not pending.message_id:
            self._counts.dropped += 1
            return []
        return [LedgerFact(pending.message_id, "postfix", qid, account=pending.account, script=pending.script,
                           client=pending.client, sender=pending.sender)]
