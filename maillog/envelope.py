"""The syslog wrapper around a daemon's log text: ``<time> <host> <program>[<pid>]: <text>``.

Two time stamps are met on mail servers:

- the traditional BSD form ``Nov 30 08:01:02`` (RFC 3164; rsyslog's ``RSYSLOG_TraditionalFileFormat``,
  and what Postfix's own ``maillog_file`` writes: ``Nov 30 08:01:02 host postfix/smtpd[123]: ...``);
- RFC 3339 ``2026-11-30T08:01:02.123456+00:00`` (rsyslog's default file format on Debian 12 and
  later, ``RSYSLOG_FileFormat``).

Correlation is by queue id, and the ledger records when it learnt: the time is kept as text only,
as the evidence of a delivery failure (a BSD time stamp has no year, so it is not made a date).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SyslogLine", "split_syslog"]

_SYSLOG = re.compile(
    r"(?P<time>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"  # Nov 30 08:01:02 (a one-digit day is space-padded)
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)"  # RFC 3339
    r" (?P<host>\S+) (?P<program>[\w.@/-]+?)(?:\[(?P<pid>\d+)\])?: (?P<text>.*)")


@dataclass(frozen=True)
class SyslogLine:
    """One syslog line's program (``postfix/smtpd``, ``postfix/submission/smtpd``, ``exim``) and text."""

    host: str
    program: str
    text: str
    time: str = ""  # as written


def split_syslog(line: str) -> SyslogLine | None:
    """The parts of a syslog line, or None when ``line`` is not one."""
    found = _SYSLOG.fullmatch(line)
    if found is None:
        return None
    return SyslogLine(found["host"], found["program"], found["text"], found["time"])
