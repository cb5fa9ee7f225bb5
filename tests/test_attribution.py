"""Attribution on real-shaped messages: every source, the trust boundary, the forged-header cases.

The samples are in tests/data/attribution/ (README.md there says what each one shows). The
provider of every sample runs its MTAs as *.provider.example on 198.51.100.0/24; expected values
are read off the header lines of the samples, quoted in the comments.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

import bounces
import fbl
from attribution import (
    CPANEL_APPENDED_HEADERS,
    AttributionRules,
    Envelope,
    HeaderRule,
    IdentityKind,
    LedgerEntry,
    Source,
    TrustRules,
    attribute,
)
from rfc822 import OriginalMessage, load, original_from_message

DATA = Path(__file__).parent / "data" / "attribution"
CORPUS = Path(__file__).parent / "data" / "corpus" / "emails" / "maildir" / "bsd"

TRUST = TrustRules(hosts=("*.provider.example",), networks=(ipaddress.ip_network("198.51.100.0/24"),))
RULES = AttributionRules(trust=TRUST)
CPANEL = AttributionRules(trust=TrustRules(hosts=TRUST.hosts, networks=TRUST.networks,
                                           appended_headers=CPANEL_APPENDED_HEADERS))


def original(name: str) -> OriginalMessage:
    return original_from_message(load((DATA / name).read_bytes()).message)


def found(result, kind: str) -> list[tuple[str, str]]:
    return [(a.value, a.source.value) for a in result.all(kind)]


# --- Postfix -------------------------------------------------------------------------------------

def test_postfix_smtp_auth_names_account_customer_domain_client_and_ip():
    result = attribute(original("postfix-auth-01.eml"), Envelope(), RULES)
    # "(Authenticated sender: alice@example.com) by smtp.provider.example (Postfix) with ESMTPSA"
    account = result.best("account")
    assert account is not None
    assert (account.value, account.source) == ("alice@example.com", Source.HEADER)
    assert account.detail == "Received: (Authenticated sender: alice@example.com) by smtp.provider.example"
    # "X-Customer-ID: C1001", prepended by our milter above smtp.provider.example's Received line.
    assert found(result, "customer") == [("C1001", "header")]
    # Return-Path <alice@example.com>, then DKIM d=example.com and From (same domain, so one answer).
    assert result.get("domain") == "example.com"
    # "from [192.168.1.23] (unknown [203.0.113.5])": the HELO literal is the client's claim.
    assert found(result, "client") == [("203.0.113.5", "received")]
    # The hop that left us: "from out1.provider.example (... [198.51.100.10]) by mx.google.com".
    assert found(result, "ip") == [("198.51.100.10", "received")]
    assert result.ignored == ()


def test_forged_authenticated_sender_and_php_script_from_outside_are_ignored():
    result = attribute(original("postfix-forged-01.eml"), Envelope(), RULES)
    # Arrived "from relay.deals.example (unknown [203.0.113.66]) by smtp.provider.example" without
    # AUTH; the "Authenticated sender", X-PHP-Originating-Script, X-Authenticated-Sender and
    # X-Customer-ID below that line were written by the sender.
    assert result.all("account") == ()
    assert result.all("script") == ()
    assert result.all("customer") == ()
    assert result.get("client") == "203.0.113.66"
    assert result.get("ip") == "198.51.100.10"
    ignored = "\n".join(result.ignored)
    for forged in ("(Authenticated sender: victim@example.org)", "X-PHP-Originating-Script: 1001:wp-mail.php",
                   "X-Authenticated-Sender: victim@example.org", "X-Customer-ID: C2002"):
        assert forged in ignored
    assert "the sender wrote it" in ignored
    assert "relay.deals.example (unknown [203.0.113.66])" in ignored


def test_client_helo_with_our_name_does_not_extend_the_boundary():
    # "from out1.provider.example (unknown [203.0.113.67])": the HELO says ours, the lookup does not.
    result = attribute(original("postfix-helo-forged-01.eml"), Envelope(), RULES)
    assert result.all("account") == ()
    assert result.all("script") == ()
    assert result.get("client") == "203.0.113.67"
    assert any("Authenticated sender: victim@example.org" in note for note in result.ignored)


def test_amavis_content_filter_is_crossed_and_prepended_header_believed():
    result = attribute(original("postfix-amavis-01.eml"), Envelope(), RULES)
    # Postfix -> amavisd-new ("by localhost") -> Postfix: the entry hop is the ESMTPSA line.
    assert found(result, "account") == [("dave@example.net", "header")]
    assert [a.detail for a in result.all("account")] == [
        "Received: (Authenticated sender: dave@example.net) by mail.provider.example"]
    assert result.get("client") == "203.0.113.14"
    assert result.get("ip") == "198.51.100.25"


def test_prepended_x_authuser_counts_inside_our_part():
    rules = AttributionRules(trust=TRUST, headers=(HeaderRule(IdentityKind.ACCOUNT, "X-AuthUser"),))
    result = attribute(original("postfix-amavis-01.eml"), Envelope(), rules)
    # "X-AuthUser: dave@example.net" sits above "Received: from localhost ... by mail.provider.example".
    assert found(result, "account") == [("dave@example.net", "header")]
    assert result.best("account").detail == "X-AuthUser: dave@example.net"  # type: ignore[union-attr]


# --- Local submissions: PHP mail() ---------------------------------------------------------------

def test_plesk_pickup_believes_the_first_php_header_only():
    result = attribute(original("plesk-pickup-01.eml"), Envelope(), RULES)
    # "Received: by plesk.provider.example (Postfix, from userid 10001)", then PHP's own
    # "X-PHP-Originating-Script: 10001:mailer.php" before the script's "0:innocent.php".
    assert found(result, "script") == [("10001:mailer.php", "header")]
    assert any(note.startswith("X-PHP-Originating-Script: 0:innocent.php") and "not the first" in note
               for note in result.ignored)
    assert result.get("ip") == "198.51.100.30"
    assert result.get("client") == ""  # a local submission has no network client
    assert "a local submission" in result.boundary


def test_plesk_vhost_as_a_configured_customer_header():
    # Plesk's sendmail wrapper writes X-PPP-Vhost into the block it hands to the pickup, right
    # below "Received: by plesk.provider.example (Postfix, from userid 10001)": a local header.
    trust = TrustRules(hosts=TRUST.hosts, networks=TRUST.networks,
                       local_headers=(*TRUST.local_headers, "X-PPP-Vhost"))
    rules = AttributionRules(trust=trust, headers=(HeaderRule(IdentityKind.CUSTOMER, "X-PPP-Vhost"),))
    result = attribute(original("plesk-pickup-01.eml"), Envelope(), rules)
    assert found(result, "customer") == [("shop.example", "header")]  # "X-PPP-Vhost: shop.example"
    # Not configured as a local header, it is the sender's like any other field there.
    rules = AttributionRules(trust=TRUST, headers=(HeaderRule(IdentityKind.CUSTOMER, "X-PPP-Vhost"),))
    assert attribute(original("plesk-pickup-01.eml"), Envelope(), rules).all("customer") == ()


def test_directadmin_php_script_with_full_path():
    result = attribute(original("directadmin-php-01.eml"), Envelope(), RULES)
    # "Received: from carol by da.provider.example with local (Exim 4.96.2)"
    assert result.get("script") == "1005:/home/carol/domains/example.net/public_html/newsletter/send.php"
    assert result.get("domain") == "example.net"  # From: Carol's Bakery <news@example.net>
    assert result.get("ip") == "198.51.100.50"  # "from da.provider.example ([198.51.100.50])"


# --- cPanel's Exim: appended headers -------------------------------------------------------------

def test_cpanel_smtp_auth_last_appended_header_wins_over_a_forged_one():
    result = attribute(original("cpanel-auth-01.eml"), Envelope(), CPANEL)
    # The sender wrote "authenticated_id: ceo@example.org" in its block; Exim appended the real
    # "X-Get-Message-Sender-Via: ...: authenticated_id: bob@example.org" after X-AntiAbuse.
    assert found(result, "account") == [("bob@example.org", "header")]
    assert "appended by our MTA" in result.best("account").detail  # type: ignore[union-attr]
    assert any("authenticated_id: ceo@example.org" in note for note in result.ignored)
    # "X-Source:", "X-Source-Args:", "X-Source-Dir:" are empty for an SMTP submission.
    assert result.all("script") == ()
    assert result.get("client") == "203.0.113.5"  # "from [203.0.113.5] (port=54321 helo=[192.168.1.10])"
    assert result.get("ip") == "198.51.100.40"


def test_cpanel_headers_are_not_believed_unless_configured_as_appended():
    result = attribute(original("cpanel-auth-01.eml"), Envelope(), RULES)
    assert result.all("account") == ()
    assert any("X-Get-Message-Sender-Via: server.provider.example: authenticated_id: bob@example.org" in note
               for note in result.ignored)


def test_cpanel_local_php_names_script_sources_in_configured_order():
    result = attribute(original("cpanel-php-01.eml"), Envelope(), CPANEL)
    assert [value for value, _ in found(result, "script")] == [
        "example.com/wp-content/plugins/contact-form-x/send.php",  # X-PHP-Script, "for 203.0.113.77" cut
        "example.com:/public_html/wp-content/plugins/contact-form-x",  # X-Source-Dir
        "/opt/cpanel/ea-php81/root/usr/bin/php-cgi "
        "/home/user1/public_html/wp-content/plugins/contact-form-x/send.php",  # X-Source-Args
        "/opt/cpanel/ea-php81/root/usr/bin/php-cgi",  # X-Source
    ]
    # "authenticated_id: user1/from_h": the cPanel user, before X-Authenticated-Sender's address.
    assert [value for value, _ in found(result, "account")] == ["user1", "support@example.com"]


# --- Forged chains and no configuration ----------------------------------------------------------

def test_backscatter_with_a_forged_chain_believes_nothing():
    result = attribute(original("backscatter-01.eml"), Envelope(), RULES)
    # The receiver got it "from spamhost.example (unknown [203.0.113.99])": not from us.
    assert result.all("account") == ()
    assert result.all("customer") == ()
    assert result.all("ip") == ()
    assert "does not come from our hosts" in result.boundary
    assert result.get("domain") == "example.com"  # From is a claim, read anywhere


def test_no_trust_configuration_believes_no_header_and_says_so():
    envelope = Envelope(source_ip="198.51.100.10")
    result = attribute(original("postfix-auth-01.eml"), envelope, AttributionRules())
    assert result.all("account") == ()
    assert result.all("customer") == ()
    assert result.all("client") == ()
    assert "no trusted hosts or networks are configured" in result.boundary
    assert any(note.startswith("X-Customer-ID: C1001") for note in result.ignored)
    # The envelope side still answers: the ARF Source-IP and the Return-Path domain.
    assert found(result, "ip") == [("198.51.100.10", "arf")]
    assert result.get("domain") == "example.com"


def test_networks_alone_define_the_boundary():
    rules = AttributionRules(trust=TrustRules(networks=(ipaddress.ip_network("198.51.100.0/24"),)))
    result = attribute(original("postfix-auth-01.eml"), Envelope(), rules)
    # Without host names no line is "by" us (our MTAs write names), so nothing is believed.
    assert result.all("account") == ()
    assert "no Received line was written by our hosts" in result.boundary


# --- Envelope, VERP, ledger, directory -----------------------------------------------------------

def test_verp_recipient_and_account_customer_token():
    envelope = Envelope(bounce_rcpt="bounces+nosuchuser=receiver.example@provider.example")
    result = attribute(None, envelope, RULES)
    assert result.recipient == "nosuchuser@receiver.example"
    assert result.attributions == ()
    envelope = Envelope(bounce_rcpt="bounces-C1001-alice=example.com@provider.example")
    result = attribute(None, envelope, RULES)
    assert found(result, "customer") == [("C1001", "verp")]
    assert found(result, "account") == [("alice@example.com", "verp")]
    assert result.best("customer").detail.startswith(  # type: ignore[union-attr]
        "bounce recipient bounces-C1001-alice=example.com@provider.example matches ")


def test_custom_verp_pattern():
    import re
    rules = AttributionRules(trust=TRUST, verp=(re.compile(r"^rb\.(?P<customer>\d+)\.", re.I),))
    result = attribute(None, Envelope(bounce_rcpt="rb.4711.x9@bounce.provider.example"), rules)
    assert result.get("customer") == "4711"


def test_ledger_answers_when_headers_do_not():
    calls: list[str] = []

    def ledger(message_id: str) -> LedgerEntry | None:
        calls.append(message_id)
        if message_id == "20261130100000.4711@deals.example":
            return LedgerEntry(account="mallory@example.org", customer="C3003")
        return None

    result = attribute(original("postfix-forged-01.eml"), Envelope(), RULES, ledger)
    assert calls == ["20261130100000.4711@deals.example"]  # Message-ID without angle brackets
    assert found(result, "account") == [("mallory@example.org", "ledger")]
    assert found(result, "customer") == [("C3003", "ledger")]
    assert result.best("account").detail == (  # type: ignore[union-attr]
        "Message-ID 20261130100000.4711@deals.example in the ledger")


def test_header_beats_ledger_by_default_and_order_is_configurable():
    def ledger(message_id: str) -> LedgerEntry | None:
        return LedgerEntry(account="other@example.com")

    result = attribute(original("postfix-auth-01.eml"), Envelope(), RULES, ledger)
    assert [v for v, _ in found(result, "account")] == ["alice@example.com", "other@example.com"]
    order = {**RULES.order, IdentityKind.ACCOUNT: (Source.LEDGER, Source.HEADER)}
    rules = AttributionRules(trust=TRUST, order=order)
    result = attribute(original("postfix-auth-01.eml"), Envelope(), rules, ledger)
    assert [v for v, _ in found(result, "account")] == ["other@example.com", "alice@example.com"]


def test_directory_maps_the_account_to_its_customer():
    rules = AttributionRules(trust=TRUST, directory={"dave@example.net": "C4004"})
    result = attribute(original("postfix-amavis-01.eml"), Envelope(), rules)
    customer = result.best("customer")
    assert customer is not None
    assert (customer.value, customer.source) == ("C4004", Source.DIRECTORY)
    assert customer.detail == "account dave@example.net belongs to customer C4004 in the directory"


def test_tag_header_beats_directory():
    rules = AttributionRules(trust=TRUST, directory={"alice@example.com": "C9999"})
    result = attribute(original("postfix-auth-01.eml"), Envelope(), rules)
    assert [v for v, _ in found(result, "customer")] == ["C1001", "C9999"]


def test_envelope_sender_gives_the_domain_but_not_our_verp_address():
    result = attribute(None, Envelope(mail_from="<Alice@Example.COM>"), RULES)
    assert found(result, "domain") == [("example.com", "envelope")]
    result = attribute(None, Envelope(mail_from="bounces-C1001-alice=example.com@provider.example"), RULES)
    assert result.all("domain") == ()
    assert result.get("customer") == "C1001"  # the VERP token of the envelope sender


def test_pairs_are_accepted_as_the_original():
    headers = [("Received", "by web1.provider.example (Postfix, from userid 1001)\n\tid 4QxF; Mon"),
               ("To", "x@receiver.example"), ("Subject", "hi"),
               ("X-PHP-Originating-Script", "1001:wp-mail.php")]
    result = attribute(headers, None, RULES)
    assert result.get("script") == "1001:wp-mail.php"


def test_explanation_lists_boundary_answers_and_refusals():
    result = attribute(original("postfix-forged-01.eml"), Envelope(source_ip="198.51.100.10"), RULES)
    lines = result.explain()
    assert lines[0].startswith("trust boundary: our part ends at the entry hop (SMTP) 'Received: from "
                               "relay.deals.example (unknown [203.0.113.66]) by smtp.provider.example")
    assert "ip 198.51.100.10 (arf: Source-IP: 198.51.100.10)" in lines
    refusal = "not believed: X-PHP-Originating-Script: 1001:wp-mail.php: below our entry hop"
    assert any(line.startswith(refusal) for line in lines)
    data = result.as_dict()
    assert data["identities"] == {"domain": "deals.example", "client": "203.0.113.66", "ip": "198.51.100.10"}


# --- Through the parsers -------------------------------------------------------------------------

def test_arf_complaint_through_fbl_parse():
    report = fbl.parse((DATA / "arf-postfix-01.eml").read_bytes())
    assert report.original is not None
    envelope = Envelope(mail_from=report.original_mail_from, source_ip=report.source_ip)
    result = attribute(report.original, envelope, RULES)
    assert result.get("account") == "alice@example.com"
    assert result.get("customer") == "C1001"
    assert found(result, "ip") == [("198.51.100.10", "arf")]  # Source-IP, and the exit hop agrees
    assert found(result, "domain") == [("example.com", "envelope")]  # Original-Mail-From


def test_dsn_through_bounces_parse_with_verp():
    raw = (DATA / "dsn-verp-01.eml").read_bytes()
    report = bounces.parse(raw)
    assert report.original is not None
    bounce_rcpt = load(raw).header("Delivered-To")
    result = attribute(report.original, Envelope(bounce_rcpt=bounce_rcpt), RULES)
    # The returned headers end at our outbound host: no exit hop, so no outbound ip from them.
    assert result.get("account") == "alice@example.com"
    assert found(result, "customer") == [("C1001", "verp")]
    assert result.get("client") == "203.0.113.5"
    assert result.all("ip") == ()
    assert result.get("domain") == "example.com"  # From: news@example.com; Return-Path is our VERP


@pytest.mark.parametrize(("name", "source_ip", "domain"), [
    ("arf-01.eml", "192.0.2.89", "example.ed.jp"),  # Source-IP; Return-Path <support@example.ed.jp>
    ("arf-17.eml", "192.0.2.3", "example.jp"),  # Source-IP; Original-Mail-From sironeko@example.jp
    ("arf-21.eml", "198.51.100.224", "example.net"),  # Original-Mail-From sironeko@example.net
])
def test_corpus_complaints(name: str, source_ip: str, domain: str):
    report = fbl.parse((CORPUS / name).read_bytes())
    envelope = Envelope(mail_from=report.original_mail_from, source_ip=report.source_ip)
    result = attribute(report.original, envelope, RULES)
    assert result.best("ip") is not None
    assert (result.get("ip"), result.best("ip").source) == (source_ip, Source.ARF)  # type: ignore[union-attr]
    assert result.get("domain") == domain
    # None of these passed through provider.example: no header of theirs is believed.
    assert result.all("account") == () and result.all("client") == ()


def test_corpus_complaint_without_source_ip_takes_the_receivers_line():
    # arf-14.eml: "Received: from 127.0.0.1 (EHLO a2-22.smtp-out.amazonses.com) (192.0.2.2) by
    # mta2222.mail.bf2.yahoo.com": for a sender whose network is 192.0.2.0/24 that is its outbound IP.
    report = fbl.parse((CORPUS / "arf-14.eml").read_bytes())
    rules = AttributionRules(trust=TrustRules(hosts=("*.amazonses.com",),
                                              networks=(ipaddress.ip_network("192.0.2.0/24"),)))
    result = attribute(report.original, Envelope(source_ip=report.source_ip), rules)
    assert found(result, "ip") == [("192.0.2.2", "received")]
