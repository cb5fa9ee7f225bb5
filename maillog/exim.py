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
"""

from __future__ import annotations

import ipaddress
import re

from maillog.model import LedgerFact, bare_message_id

__all__ = ["arrival", "mainlog_arrival"]

_MAINLOG = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})?(?: [+-]\d{4})?(?: \[\d+\])? (?P<text>.*)")
_ARRIVAL = re.compile(
    r"(?P<id>[0-9A-Za-z]{6}-(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{2}|[0-9A-Za-z]{11}-[0-9A-Za-z]{4}))"
    r" <= (?P<sender>\S+)(?P<rest>(?: .*)?)")
_HOST = re.compile(r" H=(?:[^\s(\[]\S* )?(?:\(.*?\) )?\[(?P<ip>[0-9A-Fa-f:.]+)\]")
_FIELDS = {name: re.compile(rf" {name}=(?P<value>\S+)") for name in ("A", "U", "P", "id")}


def mainlog_arrival(line: str) -> tuple[bool, LedgerFact | None]:
    """A line of Exim's own main log: (is it an arrival line, its fact when it has a Message-ID)."""
    found = _MAINLOG.fullmatch(line)
    return arrival(found["text"]) if found else (False, None)


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
