"""Receiving-provider rules (bounces.rhosts): codes and wordings from each provider's documentation
or the corpus sample named in the comment."""

from __future__ import annotations

import pytest

from bounces.classify import classify, find_reply_code, find_status
from bounces.model import Draft, Reason
from bounces.rhosts import PROVIDERS, reason_from_rhost

R = Reason


def draft(diagnostic: str, remote_mta: str = "", recipient: str = "kijitora@example.jp", status: str = "",
          command: str = "") -> Draft:
    return Draft(recipient=recipient, diagnostic=diagnostic, status=status or find_status(diagnostic),
                 reply_code=find_reply_code(diagnostic), action="failed", spec="SMTP", command=command,
                 remote_mta=remote_mta)


CASES: list[tuple[str, str, str, str, Reason]] = [
    # (remote MTA, recipient, diagnostic, command, expected)
    ("cxr.mx.a.cloudfilter.net", "neko@cox.net",
     "550 5.1.0 <bounce@example.com> sender rejected. AUP#CDRBL", "", R.BLOCKED),  # corpus rhost-cox-01
    ("mx.charter.net", "neko@charter.net",
     "550 5.1.0 <a@example.com> sender rejected. AUP#In-1310", "", R.TOOMANYCONN),  # corpus rhost-spectrum-01
    ("smtp-in.orange.fr", "neko@orange.fr",
     "550 mwinf5c04 ME Adresse IP source bloquee pour incident de spam. OFR006_102 Ref", "", R.BLOCKED),
    ("smtpz4.laposte.net", "neko@laposte.net",
     "550 5.5.0 Adresse destinataire invalide. Invalid recipient. LPN007_416", "RCPT", R.USERUNKNOWN),
    ("smtpz4.laposte.net", "neko@laposte.net",
     "554 5.7.1 <x.net[#.#.#.#]:49309>: Client host rejected: #216 lpn LPN000_630", "", R.POLICYVIOLATION),
    ("smtp.secureserver.net", "neko@example.com",
     "553 http://www.spamhaus.org/query/bl?ip=192.0.2.222", "RCPT", R.BLOCKED),  # corpus rhost-godaddy-02
    ("smtp.secureserver.net", "neko@example.com",
     "554 192.0.2.22 has sent to too many recipients this hour. IB607", "", R.SPEEDING),
    ("mx.email.ua", "neko@i.ua", "550 Mailbox is full http://mail.i.ua/err/4", "", R.MAILBOXFULL),
    ("lsean.ezweb.ne.jp", "neko@ezweb.ne.jp", "550 <neko@ezweb.ne.jp>: User unknown", "", R.USERUNKNOWN),
    ("lsean.ezweb.ne.jp", "neko@ezweb.ne.jp", "550 : User unknown", "", R.FILTERED),
    ("mfsmax.docomo.ne.jp", "neko@docomo.ne.jp", "550 Unknown user neko@docomo.ne.jp", "DATA", R.REJECTED),
    ("mfsmax.docomo.ne.jp", "neko@docomo.ne.jp", "550 Unknown user neko@docomo.ne.jp", "RCPT", R.USERUNKNOWN),
    # corpus rhost-tencent-01
    ("mx3.qq.com", "neko@qq.com", "550 Ip frequency limited [#101]", "", R.TOOMANYCONN),
    ("us-smtp-inbound-1.mimecast.com", "neko@example.com",
     "554 Host network not allowed - https://community.mimecast.com/docs/DOC-1369#554", "",
     R.POLICYVIOLATION),  # corpus rhost-mimecast-01
    ("service222.mimecast.com", "neko@example.com",
     "554 email rejected due to security policies - MCSpamSignature.sa.2.2", "", R.VIRUSDETECTED),
    ("mta6.am0.yahoodns.net", "neko@yahoo.com",
     "421 4.7.0 [TSS04] Messages from 192.0.2.192 temporarily deferred due to unexpected volume or user "
     "complaints", "", R.REJECTED),  # corpus rhost-yahooinc-02
    ("smtpin.zoho.com", "neko@zoho.com",
     "554 5.7.1 Email cannot be delivered. Reason: Email flagged as Spam.", "", R.REJECTED),
    ("", "neko@facebook.com",
     "550 5.1.1 RCP-P2 http://postmaster.facebook.com/response_codes Refused due to recipient preferences",
     "", R.FILTERED),  # corpus rhost-facebook-03, chosen by the recipient's domain
    ("gmail-smtp-in.l.google.com", "neko@gmail.com",
     "550-5.7.1 [192.0.2.1] Messages with multiple addresses in From: header are not accepted.", "DATA",
     R.NOTCOMPLIANTRFC),
    ("aspmx.l.google.com", "neko@example.com",
     "550-5.7.25 The IP address sending this message does not have a PTR record setup", "", R.REQUIREPTR),
    ("example-org.mail.protection.outlook.com", "neko@example.org",
     "550 5.7.509 Access denied, sending domain EXAMPLE.ORG does not pass DMARC verification", "",
     R.AUTHFAILURE),
    ("example-org.mail.protection.outlook.com", "neko@example.org",
     "451 4.7.650 The mail server [192.0.2.5] has been temporarily rate limited due to IP reputation.", "",
     R.BADREPUTATION),
    ("example.org.mail.protection.outlook.com", "neko@example.org",
     "550 5.4.1 [neko@example.org]: Recipient address rejected: Access denied", "",
     R.USERUNKNOWN),  # corpus rhost-microsoft-02
]


@pytest.mark.parametrize(("rhost", "recipient", "text", "command", "expected"), CASES)
def test_provider_rules(rhost: str, recipient: str, text: str, command: str, expected: Reason) -> None:
    item = draft(text, remote_mta=f"dns; {rhost}" if rhost else "", recipient=recipient, command=command)
    assert reason_from_rhost(item, text.lower()) is expected
    assert classify(item) is expected


def test_other_hosts_get_no_provider_rule() -> None:
    item = draft("550 5.1.0 sender rejected. AUP#CDRBL", remote_mta="mx.example.net",
                 recipient="a@example.net")
    assert reason_from_rhost(item, item.diagnostic.lower()) is None


def test_provider_without_a_matching_rule_falls_back() -> None:
    item = draft("550 5.1.1 <neko@orange.fr>... User unknown", remote_mta="smtp-in.orange.fr",
                 recipient="neko@orange.fr", command="RCPT")
    assert reason_from_rhost(item, item.diagnostic.lower()) is None
    assert classify(item) is R.USERUNKNOWN


def test_every_provider_has_hosts_and_a_rule() -> None:
    for provider in PROVIDERS:
        assert provider.HOSTS.pattern and callable(provider.reason)
        assert provider.reason(draft(""), "") in (None,)
