"""Mail logs -> Message-ID ledger facts. Pure: lines in, plain values out.

Postfix (syslog, RFC 3339 syslog, ``maillog_file``) and Exim (main log, or syslog) log who
submitted each message they accept: the SMTP AUTH account, the client's address, the local user,
the envelope sender and the Message-ID. ``LogReader`` turns those lines into ``LedgerFact``s,
which ``python app.py maillog`` (ingest/maillog.py) writes into ``message_ledger``, so that a
complaint or a bounce quoting the Message-ID later names the sender even when no trusted header
does. The same lines say which recipients the MTA could not deliver to: ``DeliveryFailure``s,
which ``delivery_report`` writes as the RFC 3464 DSN the MTA sent to the sender, so that the
ingest pipeline records them as bounces. No database, Flask, config file or clock here
(tests/test_architecture.py).
"""

from maillog.dsn import delivery_report
from maillog.model import DeliveryFailure, Fact, LedgerFact, ReadCounts
from maillog.reader import MAX_LINE, LogReader, read_facts

__all__ = ["MAX_LINE", "DeliveryFailure", "Fact", "LedgerFact", "LogReader", "ReadCounts",
           "delivery_report", "read_facts"]
