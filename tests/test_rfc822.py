"""rfc822: lenient reading, flattening and the returned original's headers."""

from __future__ import annotations

import rfc822
from rfc822 import find_addresses, first_address, header_fields, original_from_text

MULTIPART = b"""From: MAILER-DAEMON@mx.example.net
To: sender@example.com
Subject: =?UTF-8?B?VW5kZWxpdmVyZWQgTWFpbA==?=
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Die Nachricht konnte nicht zugestellt werden: Empf=E4nger unbekannt.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; nobody@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user
 unknown

--b1
Content-Type: message/rfc822

From: sender@example.com
To: nobody@example.org
Subject: hello
Message-ID: <abc@example.com>

body
--b1--
"""


def test_flattened_body_has_decoded_text_and_marked_sections() -> None:
    mail = rfc822.load(MULTIPART)
    assert mail.subject == "Undelivered Mail"  # RFC 2047 B-encoding decoded
    assert "Empfänger unbekannt" in mail.text  # quoted-printable + Latin-1 decoded
    status = mail.section("message/delivery-status")
    assert "Final-Recipient: rfc822; nobody@example.org" in status
    assert "Diagnostic-Code: smtp; 550 5.1.1 user unknown" in status  # folding joined
    assert mail.section("message/rfc822").startswith("From: sender@example.com")
    assert "Final-Recipient" not in mail.text


def test_crlf_input_gives_lf_text() -> None:
    mail = rfc822.load(MULTIPART.replace(b"\n", b"\r\n"))
    assert "\r" not in mail.body
    assert "Status: 5.1.1" in mail.section("message/delivery-status")


def test_multipart_without_its_boundary_is_read_as_text() -> None:
    raw = b"Content-Type: multipart/report; boundary=missing\n\nFinal-Recipient: rfc822; a@example.com\n"
    mail = rfc822.load(raw)
    assert "Final-Recipient: rfc822; a@example.com" in mail.body
    assert mail.errors  # the defect is reported


def test_html_only_body_is_reduced_to_text() -> None:
    raw = b"Content-Type: text/html\n\n<html><body><p>User&nbsp;unknown</p><br>x</body></html>"
    assert rfc822.load(raw).body.strip().startswith("User unknown")


def test_empty_and_binary_input_do_not_raise() -> None:
    assert rfc822.load(b"").errors == ["the message is empty"]
    mail = rfc822.load(bytes(range(256)) * 4)
    assert isinstance(mail.body, str)


def test_original_from_quoted_text_skips_prose_and_quotes() -> None:
    text = ("The original message follows.\n\n"
            "> From: a@example.com\n> Subject: Hi\n>  there\n> To: b@example.org\n\nbody")
    original = original_from_text(text)
    assert original is not None
    assert original.from_ == "a@example.com"
    assert original.subject == "Hi there"
    headers = {"From": "a@example.com", "Subject": "Hi there", "To": "b@example.org"}
    assert original.as_dict()["headers"] == headers


def test_repeated_headers_become_lists() -> None:
    original = original_from_text("Received: one\nReceived: two\nFrom: x@example.com\n")
    assert original is not None
    assert original.get_all("received") == ["one", "two"]
    assert original.as_dict()["headers"] == {"Received": ["one", "two"], "From": "x@example.com"}


def test_addresses_in_prose() -> None:
    text = "<a.b@example.com>: host mx[192.0.2.1] said: 550 <c@[192.0.2.9]> rejected; see d@example.org."
    assert find_addresses(text) == ["a.b@example.com", "c@[192.0.2.9]", "d@example.org"]
    assert first_address("no address here") == ""


def test_header_fields_join_folded_lines() -> None:
    assert header_fields("A: 1\n  2\nnot a field\nB: 3") == [("A", "1 2"), ("B", "3")]


def test_boundary_on_an_unindented_continuation_line_still_splits_parts() -> None:
    # Exchange writes the boundary parameter on a line of its own (lhost-office365-09).
    raw = (b"Content-Type: multipart/alternative;\nboundary=\"b2\"\n\n--b2\n"
           b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nsoft=\nbreak\n--b2--\n")
    assert rfc822.load(raw).body.strip() == "softbreak"


def test_encoded_words_in_recipient_fields_are_left_alone() -> None:
    # RFC 2047 section 5: an encoded word never stands in an addr-spec.
    raw = MULTIPART.replace(b"Final-Recipient: rfc822; nobody@example.org",
                            b"Final-Recipient: rfc822; =?utf-8?B?8J+YgA==?=@example.org")
    assert "=?utf-8?B?8J+YgA==?=@example.org" in rfc822.load(raw).section("message/delivery-status")
