"""The mail log reader (maillog/, pure) on Postfix and Exim lines as they appear in real logs.

Lines come from a real Postfix 3.7 and a real Exim 4.96 run by this suite (the queue ids and
process ids are theirs), from the formats in Postfix's and Exim's documentation (postconf(5)
``enable_long_queue_ids``; the Exim specification, "Log files", "Logging message reception",
and the 4.97 message id change), and from rsyslog's RFC 3339 file format. Expected values are read
off the lines' own text.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maillog import Fact, LedgerFact, LogReader, read_facts

# Two authenticated submissions interleaved with an unauthenticated one and a local one (short,
# hex queue ids; the BSD time stamp Postfix's maillog_file writes).
POSTFIX_SHORT = """\
Nov 30 08:52:49 mail postfix/smtpd[31026]: connect from unknown[198.51.100.23]
Nov 30 08:52:49 mail postfix/submission/smtpd[31027]: 7DAC3226316: client=unknown[198.51.100.23], \
sasl_method=PLAIN, sasl_username=alice@example.com
Nov 30 08:52:49 mail postfix/smtpd[31026]: 80531226317: client=web1.provider.example[198.51.100.40]
Nov 30 08:52:49 mail postfix/submission/smtpd[31028]: 9B1C4226318: client=unknown[2001:db8::7], \
sasl_method=LOGIN, sasl_username=bob, sasl_sender=bob@example.net
Nov 30 08:52:49 mail postfix/cleanup[31030]: 80531226317: message-id=<shop.1234@web1.provider.example>
Nov 30 08:52:49 mail postfix/cleanup[31031]: 7DAC3226316: message-id=<probe.1@example.com>
Nov 30 08:52:49 mail postfix/smtpd[31029]: NOQUEUE: reject: RCPT from unknown[203.0.113.9]: 554 5.7.1 \
<x@example.com>: Relay access denied; from=<spam@example.org> to=<x@example.com> proto=ESMTP helo=<x>
Nov 30 08:52:49 mail postfix/cleanup[31030]: 9B1C4226318: message-id=<CAF=x+y@mail.example.net>
Nov 30 08:52:49 mail postfix/qmgr[31024]: 7DAC3226316: from=<alice@example.com>, size=306, nrcpt=1 \
(queue active)
Nov 30 08:52:49 mail postfix/qmgr[31024]: 9B1C4226318: from=<bob@example.net>, size=1306, nrcpt=3 \
(queue active)
Nov 30 08:52:49 mail postfix/qmgr[31024]: 80531226317: from=<shop@customer.example>, size=332, nrcpt=1 \
(queue active)
Nov 30 08:52:50 mail postfix/pickup[31023]: 84DB0226317: uid=33 from=<www-data>
Nov 30 08:52:50 mail postfix/cleanup[31030]: 84DB0226317: message-id=<20261130085250.84DB0226317@mail>
Nov 30 08:52:50 mail postfix/qmgr[31024]: 84DB0226317: from=<www-data@mail.provider.example>, size=319, \
nrcpt=1 (queue active)
Nov 30 08:52:50 mail postfix/smtp[31040]: 7DAC3226316: to=<carol@gmail.com>, \
relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, status=sent (250 2.0.0 OK)
Nov 30 08:52:50 mail postfix/qmgr[31024]: 7DAC3226316: removed
""".replace("\\\n", "")

# Long queue ids (enable_long_queue_ids = yes) and rsyslog's RFC 3339 time stamps.
POSTFIX_LONG = """\
2026-11-30T08:01:02.123456+00:00 mail postfix/smtpd[123]: 4Fq3Yb2XZmz9sQ: client=unknown[192.0.2.7], \
sasl_method=PLAIN, sasl_username=carol@example.com
2026-11-30T08:01:02.130001+00:00 mail postfix/cleanup[124]: 4Fq3Yb2XZmz9sQ: message-id=<abc.42@carol.example>
2026-11-30T08:01:02.140001+00:00 mail postfix/qmgr[125]: 4Fq3Yb2XZmz9sQ: from=<carol@example.com>, \
size=2048, nrcpt=2 (queue active)
""".replace("\\\n", "")


def facts(text: str, **options: int) -> tuple[list[Fact], LogReader]:
    reader = LogReader(**options)
    return list(read_facts(text.splitlines(), reader)), reader


def test_postfix_interleaved_queue_ids_each_give_their_sender():
    found, reader = facts(POSTFIX_SHORT)
    assert found == [
        LedgerFact("probe.1@example.com", "postfix", "7DAC3226316", account="alice@example.com",
                   client="198.51.100.23", sender="alice@example.com"),
        LedgerFact("CAF=x+y@mail.example.net", "postfix", "9B1C4226318", account="bob", client="2001:db8::7",
                   sender="bob@example.net"),
        # No SMTP AUTH (a web server relaying from mynetworks): the client only.
        LedgerFact("shop.1234@web1.provider.example", "postfix", "80531226317", client="198.51.100.40",
                   sender="shop@customer.example"),
        # A local submission: pickup's uid is the script's owner; qmgr's from= has the domain.
        LedgerFact("20261130085250.84DB0226317@mail", "postfix", "84DB0226317", script="uid:33",
                   sender="www-data@mail.provider.example"),
    ]
    # 3 smtpd + 1 pickup + 4 cleanup + 4 qmgr from= lines and the "removed" that ends a held queue id
    # were used; connect, NOQUEUE and a delivered recipient's smtp line (status=sent) were not.
    assert (reader.counts.lines, reader.counts.used, reader.counts.skipped) == (16, 13, 3)
    assert (reader.counts.facts, reader.counts.dropped, reader.pending) == (4, 0, 0)


def test_postfix_long_queue_ids_and_rfc3339_time_stamps():
    found, _ = facts(POSTFIX_LONG)
    assert found == [LedgerFact("abc.42@carol.example", "postfix", "4Fq3Yb2XZmz9sQ",
                                account="carol@example.com", client="192.0.2.7", sender="carol@example.com")]


def test_a_fact_is_given_at_removed_when_qmgr_never_logged_from():
    # A message discarded by cleanup's header_checks: no qmgr from= line, but its Message-ID is known.
    log = """\
Nov 30 09:00:00 mail postfix/smtpd[1]: 3F1A2B4C5D: client=unknown[192.0.2.8], sasl_method=PLAIN, \
sasl_username=dan
Nov 30 09:00:00 mail postfix/cleanup[2]: 3F1A2B4C5D: message-id=<d.1@example.com>
Nov 30 09:00:00 mail postfix/qmgr[3]: 3F1A2B4C5D: removed
""".replace("\\\n", "")
    found, reader = facts(log)
    assert found == [LedgerFact("d.1@example.com", "postfix", "3F1A2B4C5D", account="dan",
                                client="192.0.2.8")]
    assert reader.pending == 0


def test_lines_of_a_message_not_followed_from_its_start_are_skipped():
    # The log begins mid-message, and Postfix's own bounce has no smtpd or pickup line.
    log = """\
Nov 30 09:00:00 mail postfix/cleanup[2]: 3F1A2B4C5D: message-id=<d.1@example.com>
Nov 30 09:00:00 mail postfix/qmgr[3]: 3F1A2B4C5D: from=<dan@example.com>, size=100, nrcpt=1 (queue active)
Nov 30 09:00:01 mail postfix/bounce[4]: 3F1A2B4C5D: sender non-delivery notification: 4A2B3C4D5E
"""
    found, reader = facts(log)
    assert found == []
    assert (reader.counts.used, reader.counts.skipped) == (0, 3)


def test_the_correlation_state_is_bounded():
    # Three messages whose lines never complete, at most two held: the oldest is pushed out.
    log = """\
Nov 30 09:00:00 mail postfix/smtpd[1]: AAAAAA0001: client=unknown[192.0.2.1], sasl_username=a
Nov 30 09:00:00 mail postfix/cleanup[2]: AAAAAA0001: message-id=<a.1@example.com>
Nov 30 09:00:00 mail postfix/smtpd[1]: BBBBBB0002: client=unknown[192.0.2.2]
Nov 30 09:00:00 mail postfix/smtpd[1]: CCCCCC0003: client=unknown[192.0.2.3]
Nov 30 09:00:00 mail postfix/smtpd[1]: DDDDDD0004: client=unknown[192.0.2.4]
"""
    reader = LogReader(max_pending=2)
    lines = log.splitlines()
    given = [fact for line in lines[:4] for fact in reader.feed(line)]
    # The first had its Message-ID: pushed out, it still gives its fact (without a sender).
    assert given == [LedgerFact("a.1@example.com", "postfix", "AAAAAA0001", account="a", client="192.0.2.1")]
    assert reader.feed(lines[4]) == []  # BBBBBB0002 pushed out, never had a Message-ID
    assert (reader.pending, reader.counts.dropped) == (2, 1)
    assert reader.flush() == []
    assert (reader.pending, reader.counts.dropped) == (0, 3)


def test_a_short_queue_id_reused_after_removed_starts_afresh():
    log = """\
Nov 30 09:00:00 mail postfix/smtpd[1]: 3F1A2B4C5D: client=unknown[192.0.2.8], sasl_username=dan
Nov 30 09:00:00 mail postfix/qmgr[3]: 3F1A2B4C5D: removed
Nov 30 10:00:00 mail postfix/smtpd[1]: 3F1A2B4C5D: client=unknown[192.0.2.9]
Nov 30 10:00:00 mail postfix/cleanup[2]: 3F1A2B4C5D: message-id=<e.1@example.com>
Nov 30 10:00:00 mail postfix/qmgr[3]: 3F1A2B4C5D: from=<erin@example.com>, size=100, nrcpt=1 (queue active)
"""
    found, reader = facts(log)
    assert found == [LedgerFact("e.1@example.com", "postfix", "3F1A2B4C5D", client="192.0.2.9",
                                sender="erin@example.com")]
    assert reader.counts.dropped == 1  # the first use of the id never had a Message-ID


# --- Exim -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "fact"), [
    # A real Exim 4.96's line (tests/test_maillog_exim.py), old id format.
    ("2026-11-30 08:53:49 1xXx8v-0008TR-0i <= alice@example.com H=(client.example) [192.0.2.7] P=esmtpa "
     "A=plain:alice@example.com S=296 id=probe.2@example.com",
     LedgerFact("probe.2@example.com", "exim", "1xXx8v-0008TR-0i", account="alice@example.com",
                client="192.0.2.7", sender="alice@example.com")),
    # 4.97's longer id, a host name and TLS, +incoming_port.
    ("2026-11-30 08:01:02 1tABCD-00000000A2B-2XyZ <= sender@example.com H=client.example.net (helo) "
     "[192.0.2.7]:52144 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no "
     "A=dovecot_login:alice@example.com S=1234 id=<msgid@host>",
     LedgerFact("msgid@host", "exim", "1tABCD-00000000A2B-2XyZ", account="alice@example.com",
                client="192.0.2.7", sender="sender@example.com")),
    # A local submission: U= is the Unix user (the account docs/mta.md's acl_not_smtp sends).
    ("2026-11-30 08:53:49 1xXx8v-0008TT-0l <= webuser1@host.example U=webuser1 P=local S=352 "
     "id=local.1@example.com",
     LedgerFact("local.1@example.com", "exim", "1xXx8v-0008TT-0l", account="webuser1",
                sender="webuser1@host.example")),
    # U= on an SMTP line is an ident (or the caller of exim -bs), not an account; a HELO literal.
    ("2026-11-30 08:53:49 1xXx8v-0008TS-0j <= web@example.com H=([192.168.1.10]) [192.0.2.8] U=root P=smtp "
     "S=254 id=w.1@example.com",
     LedgerFact("w.1@example.com", "exim", "1xXx8v-0008TS-0j", client="192.0.2.8", sender="web@example.com")),
    # +millisec, +pid, IPv6, a bounce (<> with R=), and +subject with text that looks like fields.
    ("2026-11-30 08:01:02.345 [4711] 1tABCD-000123-AB <= <> R=1tABCA-000120-AB H=mx.example.org "
     '[2001:db8::25] P=esmtp S=999 id=bounce.1@mx.example.org T="A=x:mallory@evil.example id=forged@evil"',
     LedgerFact("bounce.1@mx.example.org", "exim", "1tABCD-000123-AB", client="2001:db8::25")),
    # Exim logging to syslog (log_file_path = syslog).
    ("Nov 30 08:01:02 mail exim[4711]: 1tABCD-000123-AB <= bob@example.net H=(pc) [192.0.2.9] P=esmtpa "
     "A=login:bob S=10 id=b.1@example.net",
     LedgerFact("b.1@example.net", "exim", "1tABCD-000123-AB", account="bob", client="192.0.2.9",
                sender="bob@example.net")),
])
def test_exim_arrival_lines(line: str, fact: LedgerFact):
    found, reader = facts(line)
    assert found == [fact]
    assert (reader.counts.used, reader.counts.skipped) == (1, 0)


def test_exim_lines_without_a_message_id_or_not_arrivals_give_nothing():
    log = """\
2026-11-30 08:53:49 1xXx8v-0008TS-0j <= web@example.com H=([192.168.1.10]) [192.0.2.8] P=smtp S=254
2026-11-30 08:53:50 1xXx8v-0008TS-0j => bob@gmail.com R=dnslookup T=remote_smtp H=gmail-smtp-in.l.google.com
2026-11-30 08:53:50 1xXx8v-0008TS-0j Completed
2026-11-30 08:53:51 H=(spam) [203.0.113.9] F=<x@example.org> rejected RCPT <y@example.com>: relay denied
"""
    found, reader = facts(log)
    assert found == []
    assert (reader.counts.used, reader.counts.skipped) == (1, 3)  # the arrival line is used, gives nothing


# --- Garbage ---------------------------------------------------------------------------------------

def test_garbage_other_programs_and_long_lines_are_skipped_and_counted():
    log = [
        "",
        "\x00\xff garbage",
        "Nov 30 08:52:49 mail dovecot[900]: imap-login: Login: user=<alice@example.com>",
        "Nov 30 08:52:49 mail postfix/smtpd[31026]: 7DAC3226316: client=",  # cut short
        "Nov 30 08:52:49 mail postfix/cleanup[31030]: 7DAC322",
        "2026-11-30 08:53:49 1xXx8v-0008TR-0i <=",
        "Nov 30 08:52:49 mail postfix/smtpd[1]: 7DAC3226316: client=unknown[192.0.2.1]" + ", x=y" * 3000,
    ]
    found, reader = facts("\n".join(log))
    assert found == []
    assert (reader.counts.lines, reader.counts.used, reader.counts.skipped) == (7, 0, 7)


REAL_LINES = [*(POSTFIX_SHORT + POSTFIX_LONG).splitlines(),
              "2026-11-30 08:01:02 1tABCD-00000000A2B-2XyZ <= s@example.com H=c (h) [192.0.2.7] P=esmtpsa "
              "A=x:a@b S=1 id=<m@h>"]


@given(st.lists(st.text(max_size=300), max_size=30))
def test_any_text_is_read_without_an_exception(lines: list[str]):
    reader = LogReader(max_pending=3)
    list(read_facts(lines, reader))
    counts = reader.counts
    assert counts.lines == len(lines) == counts.used + counts.skipped
    assert reader.pending == 0


@given(st.lists(st.tuples(st.sampled_from(REAL_LINES), st.integers(0, 400), st.text(max_size=20)),
                max_size=40))
def test_real_lines_cut_and_mixed_with_noise_never_raise(cuts: list[tuple[str, int, str]]):
    # Truncated lines (a log rotated or a disk full mid-write) in any order, with noise appended.
    lines = [line[:cut] + noise for line, cut, noise in cuts]
    reader = LogReader(max_pending=5)
    for fact in read_facts(lines, reader):
        assert fact.message_id and fact.mta in ("postfix", "exim")
    assert reader.counts.lines == reader.counts.used + reader.counts.skipped == len(lines)
