"""What attribution takes and returns: plain, frozen values and the ledger seam."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = [
    "Attribution",
    "AttributionResult",
    "Envelope",
    "IdentityKind",
    "Ledger",
    "LedgerEntry",
    "Source",
    "normalize_message_id",
]


class IdentityKind(StrEnum):
    """The kinds of identity of DESIGN.md ("Vocabulary"), in the order results list them."""

    ACCOUNT = "account"  # the SMTP AUTH user
    SCRIPT = "script"  # the program on our hosting that handed the message over
    CUSTOMER = "customer"  # the provider's customer (a tag our MTA adds, or the directory)
    DOMAIN = "domain"  # the sending domain
    CLIENT = "client"  # the host that submitted the message to our MTA
    IP = "ip"  # the provider's outbound IP, the asset whose reputation we protect


class Source(StrEnum):
    """Where an answer came from; ``AttributionRules.order`` ranks these per kind."""

    HEADER = "header"  # a header field inside our trust boundary (or, for From, anywhere)
    RECEIVED = "received"  # the shape of the Received chain: exit hop (ip), entry hop (client)
    ARF = "arf"  # the complaint's Source-IP (RFC 5965 section 3.2)
    ENVELOPE = "envelope"  # the original's envelope sender
    VERP = "verp"  # a token in our own return path
    LEDGER = "ledger"  # what our MTA recorded for the Message-ID
    DIRECTORY = "directory"  # the account -> customer directory


@dataclass(frozen=True)
class Attribution:
    """One answer: ``kind`` is ``value``, found in ``source``; ``detail`` quotes the evidence."""

    kind: IdentityKind
    value: str
    source: Source
    detail: str

    def explain(self) -> str:
        """One sentence for a person: 'account alice@example.com (header: Received: ...)'."""
        return f"{self.kind.value} {self.value} ({self.source.value}: {self.detail})"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "value": self.value, "source": self.source.value,
                "detail": self.detail}


@dataclass(frozen=True)
class Envelope:
    """What is known of the original's envelope, outside its header.

    ``mail_from``: the original's envelope sender (ARF Original-Mail-From, the
    DSN's Return-Path); ``bounce_rcpt``: the envelope recipient the bounce was
    delivered to (our VERP return path); ``source_ip``: the ARF Source-IP.
    Leave unknown ones empty.
    """

    mail_from: str = ""
    bounce_rcpt: str = ""
    source_ip: str = ""


@dataclass(frozen=True)
class LedgerEntry:
    """What our MTA or policy service recorded when it sent a Message-ID ('' = not recorded)."""

    account: str = ""
    script: str = ""
    customer: str = ""
    domain: str = ""
    client: str = ""
    ip: str = ""


class Ledger(Protocol):
    """The Message-ID ledger seam: storage plugs its lookup in here.

    Called with the Message-ID as ``normalize_message_id`` returns it (no angle
    brackets, no surrounding space, case kept); returns None when unknown.
    """

    def __call__(self, message_id: str, /) -> LedgerEntry | None: ...


def normalize_message_id(value: str) -> str:
    """The key a Message-ID is recorded under: '<abc@example.com>' -> 'abc@example.com'."""
    text = value.strip()
    if text.startswith("<") and ">" in text:
        text = text[1:text.index(">")]
    return text.strip()


@dataclass(frozen=True)
class AttributionResult:
    """Everything ``attribute`` found, how, and what it refused to believe.

    ``attributions`` lists every distinct answer, kind by kind (the order of
    ``IdentityKind``), best first within a kind (``AttributionRules.order``).
    ``boundary`` says where our part of the message was found (or why not);
    ``ignored`` names the header fields that were seen but not believed, and why.
    ``recipient`` is the failed recipient a VERP return path encodes, if any.
    """

    attributions: tuple[Attribution, ...] = ()
    boundary: str = ""
    ignored: tuple[str, ...] = ()
    message_id: str = ""
    recipient: str = ""

    def all(self, kind: IdentityKind | str) -> tuple[Attribution, ...]:
        """Every answer for ``kind``, best first."""
        wanted = IdentityKind(kind)
        return tuple(a for a in self.attributions if a.kind is wanted)

    def best(self, kind: IdentityKind | str) -> Attribution | None:
        """The best answer for ``kind``, or None."""
        found = self.all(kind)
        return found[0] if found else None

    def get(self, kind: IdentityKind | str) -> str:
        """The best value for ``kind``, or ''."""
        best = self.best(kind)
        return best.value if best else ""

    @property
    def identities(self) -> dict[str, str]:
        """The best value per kind found: {'account': 'alice@example.com', ...}."""
        return {kind.value: value for kind in IdentityKind if (value := self.get(kind))}

    def explain(self) -> list[str]:
        """Sentences for a person: the boundary, each answer, each header not believed."""
        lines = [f"trust boundary: {self.boundary}"] if self.boundary else []
        lines += [a.explain() for a in self.attributions]
        lines += [f"not believed: {note}" for note in self.ignored]
        return lines

    def as_dict(self) -> dict[str, object]:
        return {"identities": self.identities,
                "attributions": [a.as_dict() for a in self.attributions],
                "boundary": self.boundary, "ignored": list(self.ignored),
                "message_id": self.message_id, "recipient": self.recipient}
