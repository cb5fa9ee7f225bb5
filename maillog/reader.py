"""Mail log lines in, ledger facts and delivery failures out, whatever mix of Postfix and Exim lines.

Formats, tried in this order (STYLE.md habit 1), first match wins:

1. Exim's own main log (``log_file_path``): ``2026-11-30 08:01:02 <exim id> <= ...``;
2. syslog (``/var/log/mail.log``, Postfix's ``maillog_file``): a Postfix daemon's line goes to the
   Postfix correlator, an ``exim``/``exim4`` line to the Exim arrival parser.

Anything else (other programs, garbage, a line cut short) is counted as skipped and never
raises: a log is foreign input. A line longer than ``max_line`` characters is skipped unread, so
a runaway line costs no regex time. Memory is bounded by the Postfix and Exim correlators'
``max_pending`` each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from maillog import exim
from maillog.envelope import SyslogLine, split_syslog
from maillog.model import DeliveryFailure, Fact, ReadCounts
from maillog.postfix import DAEMONS, DELIVERY_AGENTS, PostfixCorrelator

__all__ = ["MAX_LINE", "LogReader", "read_facts"]

MAX_LINE = 8192  # Postfix and syslog cut lines at 2048 or 8192 by default; longer is not theirs.
_EXIM_PROGRAMS = frozenset({"exim", "exim4"})

Format = Callable[["LogReader", str], "tuple[bool, list[Fact]] | None"]


class LogReader:
    """Reads a mail log line by line; keeps the counts and the bounded Postfix correlation state."""

    def __init__(self, max_pending: int = 10_000, max_line: int = MAX_LINE) -> None:
        self.counts = ReadCounts()
        self._postfix = PostfixCorrelator(self.counts, max_pending)
        self._exim = exim.EximCorrelator(max_pending)
        self._max_line = max_line

    @property
    def pending(self) -> int:
        """Postfix queue ids and Exim messages waiting for more lines."""
        return self._postfix.pending + self._exim.pending

    def feed(self, line: str) -> list[Fact]:
        """Read one line (with or without its line ending); the facts and failures it completes."""
        self.counts.lines += 1
        line = line.rstrip("\r\n")
        used = False
        facts: list[Fact] = []
        if len(line) <= self._max_line:
            for read in FORMATS:
                answer = read(self, line)
                if answer is not None:
                    used, facts = answer
                    break
        if used:
            self.counts.used += 1
        else:
            self.counts.skipped += 1
        self._count(facts)
        return facts

    def flush(self) -> list[Fact]:
        """At the end of the input: the facts still held whose Message-ID is known."""
        facts = self._postfix.flush()
        self._exim.flush()
        self._count(facts)
        return facts

    def _count(self, facts: list[Fact]) -> None:
        failures = sum(isinstance(fact, DeliveryFailure) for fact in facts)
        self.counts.failures += failures
        self.counts.facts += len(facts) - failures

    def _exim_mainlog(self, line: str) -> tuple[bool, list[Fact]] | None:
        return self._exim.mainlog(line)

    def _syslog(self, line: str) -> tuple[bool, list[Fact]] | None:
        parts = split_syslog(line)
        return None if parts is None else self._program(parts, line)

    def _program(self, parts: SyslogLine, line: str) -> tuple[bool, list[Fact]]:
        family, _, daemon = parts.program.rpartition("/")
        if family and (daemon in DAEMONS or daemon in DELIVERY_AGENTS):
            return self._postfix.feed(daemon, parts.text, parts, line)
        if parts.program in _EXIM_PROGRAMS:
            return self._exim.feed(parts.text, parts.host, parts.time, line)
        return False, []


FORMATS: tuple[Format, ...] = (LogReader._exim_mainlog, LogReader._syslog)


def read_facts(lines: Iterable[str], reader: LogReader | None = None) -> Iterator[Fact]:
    """Every fact of ``lines``, then those left at the end (``reader`` keeps the counts)."""
    reader = reader or LogReader()
    for line in lines:
        yield from reader.feed(line)
    yield from reader.flush()
