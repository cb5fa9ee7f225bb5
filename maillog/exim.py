"""Exim: one arrival line (``<=``) in the main log has everything the ledger needs.

From a real Exim 4.96 (tests/test_maillog_exim.py) and the Exim specification, chapter "Log
files", section "Logging message reception"::

    2026-11-30 08:53:49 1xXx8v-0008TR-0i <= alice@example.com H=(client.example) [192.0.2.7]
        P=esmtpa A=plain:alice@example.com S=296 id=probe.2@example.com
    2026-11-30 08:53:49 1xXx8v-0008TT-0l <= root@exim-test.localdomain U=webuser1 P=local S=352
        id=local.1@example.com

(one line each in the log).
``<=`` is followed by the envelope sender (``<>`` for a bounce); ``H=`` names the client (host
name, then the HELO name in parentheses, then the address in brackets, with ``:port`` under
``+incoming_port``); ``A=authenticator:id`` is the SMTP AUTH id (logged by default); ``U=`` is the
submitting user, which for a local submission (``P=local...``) is the Unix user and is used as
the account, as docs/mta.md's ``acl_not_smtp`` does (on an SMTP line it is an RFC 1413 ident, or
the caller of ``exim -bs``: not an account). ``id=`` is the Message-ID, logged without brackets;
a message without one gives no fact. Under ``+subject`` a ``T="..."`` follows it: everything from
there on is ignored, so a subject cannot add fields.

Exim message ids: ``1xXx8v-0008TR-0i`` (6-6-2 base-62) up to 4.96, and ``1xXx8v-00000008TR-0iAB``
(6-11-4) from 4.97. The main log's time may carry milliseconds (``+millisec``) and a zone
(``log_timezone``), and a ``[pid]`` may follow (``+pid``). With ``log_file_path = syslog`` the
same text comes after ``exim[pid]:`` in syslog; ``split_syslog`` removes that.

Delivery failures (the specification, "Log files", "Logging deliveries" and "Deferred
deliveries"; one line each)::

    2026-11-30 08:53:50 1xXx8v-0008TR-0i ** bob@example.net R=dnslookup T=remote_smtp
        H=mx.example.net [203.0.113.5]: SMTP error from remote mail server after RCPT
        TO:<bob@example.net>: 550 5.1.1 User unknown
    2026-11-30 08:53:50 1xXx8v-0008TR-0i == carol@example.org R=dnslookup T=remote_smtp defer (-44)
        H=mx.example.org [203.0.113.6]: SMTP error from remote mail server after RCPT
        TO:<carol@example.org>: 452 4.2.2 Mailbox full
    2026-11-30 08:53:50 1xXx8v-0008TR-0i ** nobody@example.com: Unrouteable address

``**`` is a permanent failure, ``==`` a deferral; an ``<original address>`` may follow the address
(after a redirection). They are joined with the message's arrival line by the Exim message id:
``EximCorrelator`` keeps each arrival's fact until the message's ``Completed`` line (or until
pushed out of its bounded state), and gives a deferral once per message id, recipient and status.
``== ... retry time not reached`` is no attempt at all and is skipped.
"""

from __future__ import annotations

import ipaddress
import re
from collections import OrderedDict
from dataclasses import dataclass, field

from maillog.model import DeliveryFailure, Fact, LedgerFact
from rfc822 import bare_message_id

__all__ = ["EximCorrelator", "arrival", "mainlog_arrival"]

_MAINLOG = re.compile(r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})?(?: [+-]\d{4})?)(?: \[\d+\])?"
                      r" (?P<text>.*)")
_EXIM_ID = r"(?P<id>[0-9A-Za-z]{6}-(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{2}|[0-9A-Za-z]{11}-[0-9A-Za-z]{4}))"
_ARRIVAL = re.compile(_EXIM_ID + r" <= (?P<sender>\S+)(?P<rest>(?: .*)?)")
_FAILURE = re.compile(_EXIM_ID + r" (?P<flag>\*\*|==) (?P<rcpt>[^\s:<>]+)(?: <(?P<orig>[^<>\s]*)>)?"
                      # R=, T=, H=name [ip]:port, X=TLS1.3:..., defer (-44), then ": " and the error.
                      r"(?P<head>(?: (?:[A-Za-z]+=\S*?|defer \(-?\d+\)"
                      r"|\[[0-9A-Fa-f:.]+\](?::\d+)?|\([^()]*\)))*)"
                      r": (?P<text>.*)")
_COMPLETED = re.compile(_EXIM_ID + r" Completed(?: .*)?")
_REMOTE_HOST = re.compile(r"(?:^| )H=(?P<name>[^\s\[]+)(?: \([^)]*\))? \[(?P<ip>[0-9A-Fa-f:.]+)\]")
# "SMTP error from remote mail server after RCPT TO:<bob@example.net>: 550 5.1.1 User unknown"
# (transports/smtp.c; "pipelined" with PIPELINING, "end of data", "initial connection").
_SMTP_ERROR = re.compile(r"SMTP error from remote (?:mail )?server after (?:pipelined )?(?P<command>.+?): "
                         r"(?P<reply>[245]\d\d\b.*)")
_STATUS = re.compile(r"\b(?P<status>[245]\.\d{1,3}\.\d{1,3})\b")
_MAX_REPORTED = 1000  # (recipient, bounced, status) keys remembered per message, to report a deferral once
_HOST = re.compile(r" H=(?:[^\s(\[]\S* )?(?:\(.*?\) )?\[(?P<ip>[0-9A-Fa-f:.]+)\]")
_FIELDS = {name: re.compile(rf" {name}=(?P<value>\S+)") for name in ("A", "U", "P", "id")}


def mainlog_arrival(line: str) -> tuple[bool, LedgerFact | None]:
    """A line of Exim's own main log: (is it an arrival line, its fact when it has a Message-ID)."""
    found = _MAINLOG.fullmatch(line)
    return arrival(found["text"]) if found else (False, None)


@dataclass
class _Held:
    fact: LedgerFact
    reported: set[tuple[str, bool, str]] = field(default_factory=set)


class EximCorrelator:
    """Exim's lines of one message, joined by message id: the arrival's fact, then its failures."""

    def __init__(self, max_pending: int = 10_000) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._max_pending = max_pending
        self._held: OrderedDict[str, _Held] = OrderedDict()

    @property
    def pending(self) -> int:
        """Messages held for their delivery lines."""
        return len(self._held)

    def mainlog(self, line: str) -> tuple[bool, list[Fact]] | None:
        """A line of Exim's own main log: (was it used, its facts); None when it is not one of Exim's."""
        found = _MAINLOG.fullmatch(line)
        if found is None:
            return None
        answer = self.feed(found["text"], host="", time=found["time"], line=line)
        return None if answer == (False, []) else answer

    def feed(self, text: str, host: str = "", time: str = "", line: str = "") -> tuple[bool, list[Fact]]:
        """One line's text after the time stamp: (was it used, the facts it gives)."""
        is_arrival, fact = arrival(text)
        if is_arrival:
            if fact is None:
                return True, []
            self._held.pop(fact.queue_id, None)
            self._held[fact.queue_id] = _Held(fact)
            while len(self._held) > self._max_pending:
                self._held.popitem(last=False)
            return True, [fact]
        found = _FAILURE.fullmatch(text)
        if found is not None:
            return self._failure(found, host, time, line)
        completed = _COMPLETED.fullmatch(text)
        if completed is not None and self._held.pop(completed["id"], None) is not None:
            return True, []
        return False, []

    def flush(self) -> None:
        """At the end of the input: forget every message held."""
        self._held.clear()

    def _failure(self, found: re.Match[str], host: str, time: str, line: str) -> tuple[bool, list[Fact]]:
        held = self._held.get(found["id"])
        text = found["text"]
        if held is None or "retry time not reached" in text:
            return False, []
        self._held.move_to_end(found["id"])
        bounced = found["flag"] == "**"
        smtp = _SMTP_ERROR.search(text)
        diagnostic = f"{smtp['reply']} (after {smtp['command']})" if smtp else text
        code = _STATUS.search(smtp["reply"] if smtp else text)
        status = code["status"] if code else ("5.0.0" if bounced else "4.0.0")
        key = (found["rcpt"], bounced, status)
        if key in held.reported or len(held.reported) >= _MAX_REPORTED:
            return True, []
        held.reported.add(key)
        remote = _REMOTE_HOST.search(found["head"])
        fact = held.fact
        return True, [DeliveryFailure(
            "exim", fact.queue_id, found["rcpt"], bounced, status, diagnostic,
            remote_mta=remote["name"] if remote else "", original_recipient=found["orig"] or "",
            message_id=fact.message_id, account=fact.account, client=fact.client, sender=fact.sender,
            host=host, logged_at=time, lines=(line,) if line else ())]


def arrival(text: str) -> tuple[bool, LedgerFact | None]:
    """An arrival line's text after the time stamp: (is it one, its fact when it has a Message-ID)."""
    found = _ARRIVAL.fullmatch(text)
    if found is None:
        return False, None
    rest = found["rest"].split(' T="', 1)[0]
    fields = {name: match["value"] for name, pattern in _FIELDS.items() if (match := pattern.search(rest))}
    message_id = bare_message_id(fields.get("id", ""))
    if not message_id:
        return True, None
    sender = found["sender"]
    return True, LedgerFact(message_id, "exim", found["id"], account=_account(fields), client=_client(rest),
                            sender="" if sender == "<>" else sender)


def _account(fields: dict[str, str]) -> str:
    # "A=plain:alice@example.com": the authenticator's name, then the id it set (server_set_id).
    if "A" in fields:
        return fields["A"].partition(":")[2]
    if fields.get("P", "").startswith("local"):
        return fields.get("U", "")
    return ""


def _client(rest: str) -> str:
    found = _HOST.search(rest)
    if found is None:
        return ""
    try:
        return str(ipaddress.ip_address(found["ip"]))
    except ValueError:
        return ""
