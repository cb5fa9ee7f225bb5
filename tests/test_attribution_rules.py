"""Attribution's parts: Received lines, the boundary walk, the CSV directory, rules from TOML."""

from __future__ import annotations

import ipaddress
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution import (
    DEFAULT_LOCAL_SUBMISSION,
    AttributionRules,
    DirectoryError,
    Envelope,
    IdentityKind,
    Source,
    TrustRules,
    Zone,
    attribute,
    find_boundary,
    load_directory_csv,
    normalize_message_id,
    rules_from_mapping,
)
from attribution.received import parse_received

TRUST = TrustRules(hosts=("*.provider.example",), networks=(ipaddress.ip_network("198.51.100.0/24"),))


def hop(value: str):
    return parse_received(0, value, DEFAULT_LOCAL_SUBMISSION)


# --- Received lines ------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "by_host", "from_ip", "from_name", "local"), [
    # Postfix smtpd: "from HELO (NAME [IP])"; "unknown" when the reverse lookup failed.
    ("from [192.168.1.23] (unknown [203.0.113.5]) (Authenticated sender: a@example.com) "
     "by smtp.provider.example (Postfix) with ESMTPSA id 4Q; Mon, 30 Nov 2026 09:00:01 +0000",
     "smtp.provider.example", "203.0.113.5", "", False),
    ("from out1.provider.example (out1.provider.example. [198.51.100.10]) by mx.google.com with ESMTPS",
     "mx.google.com", "198.51.100.10", "out1.provider.example", False),
    # Exim (cPanel): "from [IP] (port=N helo=[HELO])"; with a verified name "NAME ([IP] helo=HELO)".
    ("from [203.0.113.5] (port=54321 helo=[192.168.1.10]) by server.provider.example with esmtpsa",
     "server.provider.example", "203.0.113.5", "", False),
    ("from mail.example.org ([203.0.113.9]:41234 helo=mx.example.org) by server.provider.example with esmtp",
     "server.provider.example", "203.0.113.9", "mail.example.org", False),
    # RFC 5321 IPv6 address literal.
    ("from h.example (h.example [IPv6:2001:db8::25]) by mx.provider.example (Postfix) with ESMTP",
     "mx.provider.example", "2001:db8::25", "h.example", False),
    # qmail-smtpd: "from NAME (HELO x) (IP)".
    ("from unknown (HELO x) (203.0.113.9) by mail.host.example with SMTP; 30 Nov 2026",
     "mail.host.example", "203.0.113.9", "", False),
    # Local submissions.
    ("by web1.provider.example (Postfix, from userid 1001) id 4QxF; Mon, 30 Nov 2026",
     "web1.provider.example", None, "", True),
    ("from alice by server.provider.example with local (Exim 4.96) (envelope-from <a@x>) id 1r",
     "server.provider.example", None, "", True),
    ("(from alice@localhost) by host.provider.example (8.17.1/8.17.1/Submit) id 5AU; Mon",
     "host.provider.example", None, "", True),
    ("(qmail 12345 invoked by uid 10002); 30 Nov 2026 12:00:00 -0000", "", None, "", True),
])
def test_received_parts(value, by_host, from_ip, from_name, local):
    parsed = hop(value)
    assert parsed.by_host == by_host
    assert (str(parsed.from_ip) if parsed.from_ip else None) == from_ip
    assert parsed.from_name == from_name
    assert parsed.local is local


# --- The boundary walk ---------------------------------------------------------------------------

def test_zones_follow_the_header_order():
    headers = [
        ("Authentication-Results", "mx.receiver.example; spf=pass"),
        ("Received", "from out1.provider.example (out1.provider.example [198.51.100.10]) "
                     "by mx.receiver.example"),
        ("X-Customer-ID", "C1"),
        ("Received", "from h (unknown [203.0.113.5]) by out1.provider.example (Postfix) with ESMTPSA"),
        ("Subject", "hello"),
    ]
    boundary = find_boundary(headers, TRUST)
    assert boundary.found
    assert [boundary.zone(i) for i in range(len(headers))] == [
        Zone.RECEIVER, Zone.RECEIVER, Zone.OURS, Zone.OURS, Zone.SENDER]
    assert boundary.entry is not None and boundary.entry.index == 3


def test_script_talking_smtp_to_loopback_cannot_extend_our_part():
    # A PHP script connects to 127.0.0.1:25 and writes its own "by us" line with an AUTH claim.
    headers = [
        ("Received", "from localhost (localhost [127.0.0.1]) by web1.provider.example (Postfix) with ESMTP"),
        ("Received", "from x (unknown [10.0.0.9]) (Authenticated sender: victim@example.org) "
                     "by smtp.provider.example (Postfix) with ESMTPSA"),
    ]
    boundary = find_boundary(headers, TRUST)
    assert boundary.entry is not None and boundary.entry.index == 0
    result = attribute(headers, None, AttributionRules(trust=TRUST))
    assert result.all("account") == ()
    assert result.get("client") == "127.0.0.1"


def test_internal_relay_from_our_network_continues_the_walk():
    headers = [
        ("Received", "from web7.provider.example (web7.provider.example [198.51.100.77]) "
                     "by out1.provider.example (Postfix) with ESMTP"),
        ("Received", "by web7.provider.example (Postfix, from userid 1042) id 4Q; Mon"),
        ("X-PHP-Originating-Script", "1042:contact.php"),
    ]
    result = attribute(headers, None, AttributionRules(trust=TRUST))
    assert result.get("script") == "1042:contact.php"


def test_our_relay_to_an_unlisted_host_ends_at_that_hop():
    # Our network, but the line below is "by" a host we did not list: that host's block is not ours.
    headers = [
        ("Received", "from legacy.customer.example (legacy.customer.example [198.51.100.99]) "
                     "by out1.provider.example (Postfix) with ESMTP"),
        ("Received", "by legacy.customer.example (Postfix, from userid 33) id 4Q; Mon"),
        ("X-PHP-Originating-Script", "33:form.php"),
    ]
    result = attribute(headers, None, AttributionRules(trust=TRUST))
    assert result.all("script") == ()
    assert result.get("client") == "198.51.100.99"


def test_hostless_qmail_line_continues_our_part():
    headers = [
        ("Received", "from plesk.provider.example (plesk.provider.example [198.51.100.31]) "
                     "by out1.provider.example (Postfix) with ESMTP"),
        ("Received", "(qmail 12345 invoked by uid 10002); 30 Nov 2026 12:00:00 -0000"),
        ("To", "x@receiver.example"),
        ("X-PHP-Originating-Script", "10002:mailer.php"),
    ]
    result = attribute(headers, None, AttributionRules(trust=TRUST))
    assert result.get("script") == "10002:mailer.php"


def test_our_host_written_as_an_address_counts():
    headers = [("Received", "from x (unknown [203.0.113.5]) (Authenticated sender: a@example.com) "
                            "by 198.51.100.20 with ESMTPSA")]
    result = attribute(headers, None, AttributionRules(trust=TRUST))
    assert result.get("account") == "a@example.com"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Received", "X-PHP-Originating-Script", "From", "X-Customer-ID",
                                           "DKIM-Signature", "Message-ID", "Return-Path", "X-Source-Dir"]),
                          st.text(max_size=120)), max_size=12),
       st.text(max_size=60), st.text(max_size=30))
def test_never_raises_on_arbitrary_headers(headers, address, source_ip):
    rules = AttributionRules(trust=TrustRules(hosts=TRUST.hosts, networks=TRUST.networks,
                                              appended_headers=("X-Source-Dir",)))
    result = attribute(headers, Envelope(mail_from=address, bounce_rcpt=address, source_ip=source_ip), rules)
    assert all(a.value for a in result.attributions)


# --- The account directory -----------------------------------------------------------------------

def test_directory_csv():
    text = "\ufeffAccount,Customer\nalice@example.com,C1001\n\n# a comment\nBob@Example.org , C1002\n"
    assert load_directory_csv(text) == {"alice@example.com": "C1001", "bob@example.org": "C1002"}


def test_directory_csv_columns_in_any_order_extra_ignored():
    assert load_directory_csv("customer,note,account\nC7,vip,x@example.com\n") == {"x@example.com": "C7"}


def test_directory_csv_reports_every_bad_row():
    text = ("account,customer\n"
            "alice@example.com,C1001\n"
            "bob@example.org\n"  # line 3: one field
            ",C1003\n"  # line 4: no account
            "carol@example.net,\n"  # line 5: no customer
            "alice@example.com,C2002\n")  # line 6: alice again, another customer
    with pytest.raises(DirectoryError) as caught:
        load_directory_csv(text)
    problems = caught.value.problems
    assert len(problems) == 4
    assert problems[0].startswith("line 3: expected 2 fields (account,customer), got 1")
    assert problems[1] == "line 4: the account is empty: ',C1003'"
    assert problems[2] == "line 5: the customer is empty: 'carol@example.net,'"
    assert problems[3] == ("line 6: account 'alice@example.com' is already customer 'C1001' (line 2), "
                           "not 'C2002'")
    assert str(caught.value).startswith("account directory: line 3: ")


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file is empty"),
    ("user,client\nalice,C1\n", "line 1: the header row must name the columns 'account' and 'customer'"),
])
def test_directory_csv_bad_files(text, message):
    with pytest.raises(DirectoryError, match=message):
        load_directory_csv(text)


def test_directory_repeats_of_the_same_pair_are_fine():
    assert load_directory_csv("account,customer\na@x.example,C1\nA@x.example,C1\n") == {"a@x.example": "C1"}


# --- Rules from the [attribution] TOML table -----------------------------------------------------

TOML = """
[attribution]
trusted_hosts = ["*.Provider.Example."]
trusted_networks = ["198.51.100.0/24", "2001:db8:25::/48"]
appended_headers = ["X-AntiAbuse", "X-Get-Message-Sender-Via"]
verp = ['^b\\+(?P<customer>[^@]+)@']
directory_csv = "var/customers.csv"

[[attribution.headers]]
kind = "account"
header = "X-Get-Message-Sender-Via"
pattern = 'authenticated_id: (?P<value>[^\\s/]+)'

[[attribution.headers]]
kind = "customer"
header = "X-Tenant"

[attribution.order]
account = ["ledger", "header"]
"""


def test_rules_from_toml():
    data = tomllib.loads(TOML)["attribution"]
    rules = rules_from_mapping(data, directory={"a@example.com": "C1"})
    assert rules.trust.hosts == ("*.provider.example",)
    assert rules.trust.networks == (ipaddress.ip_network("198.51.100.0/24"),
                                    ipaddress.ip_network("2001:db8:25::/48"))
    assert rules.trust.local_headers == ("X-PHP-Originating-Script", "X-PHP-Script")  # default kept
    assert [(r.kind, r.header) for r in rules.headers] == [
        (IdentityKind.ACCOUNT, "X-Get-Message-Sender-Via"), (IdentityKind.CUSTOMER, "X-Tenant")]
    assert rules.order[IdentityKind.ACCOUNT] == (Source.LEDGER, Source.HEADER)
    assert rules.order[IdentityKind.IP] == (Source.ARF, Source.RECEIVED, Source.LEDGER)  # default kept
    result = attribute(None, Envelope(bounce_rcpt="b+C77@provider.example"), rules)
    assert result.get("customer") == "C77"


def test_empty_table_gives_the_safe_defaults():
    rules = rules_from_mapping({})
    assert not rules.trust.configured
    assert rules == AttributionRules()


@pytest.mark.parametrize(("data", "message"), [
    ({"trusted_networks": ["10.0.0.0/33"]},
     r"\[attribution\]\.trusted_networks: '10.0.0.0/33' is not an IP network"),
    ({"trusted_hosts": "*.provider.example"}, r"\[attribution\]\.trusted_hosts must be a list"),
    ({"verp": ["(unclosed"]}, r"\[attribution\]\.verp: '\(unclosed' is not a valid regular expression"),
    ({"headers": [{"kind": "boss", "header": "X-Boss"}]},
     r"\[attribution\]\.headers\[0\]\.kind: 'boss' is not one of account, script"),
    ({"headers": [{"kind": "account"}]}, r"\[attribution\]\.headers\[0\]\.header must be a header name"),
    ({"order": {"account": ["header", "dns"]}}, r"\[attribution\]\.order\.account: 'dns' is not one of"),
    ({"trusted_host": []}, r"\[attribution\]: unknown key 'trusted_host'"),
])
def test_bad_rules_are_named(data, message):
    with pytest.raises(ValueError, match=message):
        rules_from_mapping(data)


def test_message_id_normalization():
    assert normalize_message_id(" <abc@example.com> ") == "abc@example.com"
    assert normalize_message_id("abc@example.com") == "abc@example.com"


# --- Appended tag headers (Exim add_header puts them at the end of the header block) -------------

def exim_submission(*tail: tuple[str, str]) -> list[tuple[str, str]]:
    return [
        ("Received", "from [203.0.113.5] (port=50000 helo=pc) by mail.provider.example with esmtpsa "
                     "(Exim 4.96) (envelope-from <a@example.com>) id 1r"),
        ("From", "a@example.com"),
        ("Subject", "hello"),
        *tail,
    ]


def test_appended_tag_is_believed_last_one_winning():
    trust = TrustRules(hosts=TRUST.hosts, networks=TRUST.networks, appended_headers=("X-Customer-ID",))
    rules = AttributionRules(trust=trust)
    # The sender ended its block with a forged tag; our Exim appended the real one after it.
    result = attribute(exim_submission(("X-Customer-ID", "C666"), ("X-Customer-ID", "C1001")), None, rules)
    assert [a.value for a in result.all("customer")] == ["C1001"]
    assert any(note.startswith("X-Customer-ID: C666") for note in result.ignored)
    # A tag in the middle of the sender's block is not in the trailing run.
    headers = exim_submission(("X-Customer-ID", "C666"), ("Message-ID", "<1@example.com>"))
    result = attribute(headers, None, rules)
    assert result.all("customer") == ()


def test_arf_source_ip_outside_our_networks_is_reported_as_such():
    result = attribute(None, Envelope(source_ip="192.0.2.89"), AttributionRules(trust=TRUST))
    ip = result.best("ip")
    assert ip is not None
    assert ip.detail == "Source-IP: 192.0.2.89 (not in our trusted networks)"
    assert attribute(None, Envelope(source_ip="redacted"), AttributionRules(trust=TRUST)).all("ip") == ()
