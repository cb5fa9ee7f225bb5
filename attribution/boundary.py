"""The trust boundary: which header fields of a returned original our own MTAs wrote.

A sender can write any header into the message it submits, Received lines
and "(Authenticated sender: ...)" included. Only what the provider's own MTAs
added is evidence. Header order tells who wrote what, because every MTA
*prepends* its Received line (RFC 5321 section 4.4) and receivers only ever
add fields above what they received. An original returned in a complaint or
a bounce therefore reads, top (newest) to bottom::

    receiver zone   fields the receiving side added (its Received lines, Authentication-Results)
    exit hop        Received: from out1.provider.example ([198.51.100.10]) by mx.receiver.example
    our zone        fields our MTAs prepended (X-Customer-ID by a milter, DKIM-Signature),
                    Received: ... by out1.provider.example          <- top: topmost line by us
                    Received: from [203.0.113.5] (Authenticated sender: alice)
                              by smtp.provider.example (Postfix)    <- entry hop: lowest line by us
    sender zone     the submitted header block: From, Subject, and whatever the sender wrote

The rule implemented here:

1. A Received line is *by us* when the host after "by" matches a configured
   host glob or its address is in a configured network.
2. Walk down from the top; lines not by us are the receiver's. The first line by
   us is ``top``; the Received line just above it is the *exit hop*, whose
   client is our outbound IP. The exit hop must come *from* us (its client IP is
   in our networks, or the name the receiver verified matches our globs):
   otherwise the lines "by us" below were not handed out by us, and nothing is
   believed (backscatter of a forged message, or a forged chain).
3. Our part continues down through contiguous lines by us, as long as each line
   says its client was one of ours; it ends at the *entry hop*: the first line
   whose client is outside (an SMTP client, even one whose HELO claims our
   name: only the verified name or the IP counts), or a local submission
   (Postfix "from userid N", Exim "with local", Sendmail "/Submit", qmail
   "invoked by uid"). Content filters on loopback are crossed only through a
   line written "by localhost" (amavisd-new), so a script that talks SMTP to
   127.0.0.1 cannot extend our part with a Received line of its own.
4. Fields between the exit hop and the entry hop (the entry hop included)
   are ours and believed: "Authenticated sender" in our Received lines,
   X-Customer-ID or DKIM-Signature that our MTA prepended.
5. Below the entry hop is the sender's block, not believed, with two
   exceptions that follow where real MTAs write:

   * a local submission: PHP mail() writes "X-PHP-Originating-Script: uid:file"
     (and cPanel's PHP "X-PHP-Script") right after To and Subject, *before*
     the script's own extra headers, then hands the block to sendmail. The
     block was written on our machine, so the *first* such field below a
     local-submission entry hop is believed (``TrustRules.local_headers``).
     The same field below an entry hop from an outside IP was written by the
     sender and is ignored.
   * fields our MTA *appends*: Exim's headers_add and ACL add_header put them
     at the end of the header block; cPanel appends X-AntiAbuse,
     X-Get-Message-Sender-Via, X-Authenticated-Sender and X-Source*. The
     trailing run of such fields (``TrustRules.appended_headers``) is
     believed, the *last* one of a name winning, since ours come after
     anything the sender wrote. The list is empty by default: a sender may end
     its own block with any field, so only name what your MTA always appends.

Without any trusted host or network configured, nothing in the header is
believed and the result says so: attribution then rests on the envelope
(VERP, envelope sender), the complaint's Source-IP and the Message-ID ledger.
Trusting "the top-most Received line" instead would trust the *receiver's*
line in every complaint, and a forger's line in every backscattered bounce.

Limits: the receiver's part cannot be verified; a forger whose message never
passed through us, and who writes a complete fake chain including a fake exit
hop, is caught only if the receiver's own Received line is directly above the
fake one. The Message-ID ledger and the ARF Source-IP are the cross-checks.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from attribution.received import Hop, parse_received
from attribution.rules import TrustRules

__all__ = ["Boundary", "Zone", "find_boundary"]


class Zone(StrEnum):
    """Who wrote a header field, by where it sits."""

    RECEIVER = "receiver"  # added by the receiving side, above the exit hop
    OURS = "ours"  # between the exit hop and the entry hop: our MTAs wrote it
    SENDER = "sender"  # below the entry hop: the submitted header block
    NONE = "none"  # no boundary was found: nothing can be placed


@dataclass(frozen=True)
class Boundary:
    """Where our part of the header is; ``found`` is False (with ``reason``) when there is none."""

    found: bool
    reason: str
    hops: tuple[Hop, ...] = ()
    exit: Hop | None = None  # the hop that left our boundary (its client is our outbound IP)
    top: Hop | None = None  # the topmost Received line written by us
    entry: Hop | None = None  # the lowest Received line written by us: where the message came in

    def zone(self, index: int) -> Zone:
        """The zone of the header field at position ``index``."""
        if not self.found or self.entry is None:
            return Zone.NONE
        if self.exit is not None and index <= self.exit.index:
            return Zone.RECEIVER
        return Zone.OURS if index <= self.entry.index else Zone.SENDER

    @property
    def local(self) -> bool:
        """True when the message entered our MTA from a program on our host (no network client)."""
        return self.entry is not None and self.entry.local

    def describe(self) -> str:
        """A sentence for explanations."""
        if not self.found or self.entry is None:
            return self.reason
        how = "a local submission" if self.local else "SMTP"
        text = f"our part ends at the entry hop ({how}) 'Received: {self.entry.short()}'"
        if self.exit is not None:
            text += f"; it left us at 'Received: {self.exit.short()}'"
        return text


def find_boundary(headers: Sequence[tuple[str, str]], trust: TrustRules) -> Boundary:
    """Apply the rule of the module docstring to ``headers`` (in order, top first)."""
    hops = tuple(parse_received(i, value, trust.local_submission)
                 for i, (name, value) in enumerate(headers) if name.lower() == "received")
    if not trust.configured:
        return Boundary(False, "no trusted hosts or networks are configured ([attribution] trusted_hosts, "
                               "trusted_networks), so no header field is believed", hops)
    start = next((n for n, hop in enumerate(hops) if _by_us(hop, trust)), None)
    if start is None:
        return Boundary(False, "no Received line was written by our hosts, so no header field is believed",
                        hops)
    exit_hop = hops[start - 1] if start else None
    if exit_hop is not None and not _from_us(exit_hop, trust):
        return Boundary(False, f"the line above our topmost Received line, 'Received: {exit_hop.short()}', "
                               "does not come from our hosts: the lines below it were not handed out by us, "
                               "so no header field is believed", hops, exit_hop, hops[start])
    n = start
    while n + 1 < len(hops) and _continues(hops[n], hops[n + 1], trust):
        n += 1
    return Boundary(True, "", hops, exit_hop, hops[start], hops[n])


def _continues(hop: Hop, below: Hop, trust: TrustRules) -> bool:
    """Whether the line ``below`` was written by us too, given that ``hop`` was."""
    if hop.local:
        return False
    if _from_us(hop, trust):
        return _by_us(below, trust) or (below.local and not below.by_host)
    if hop.from_loopback:
        # Postfix -> amavisd-new ("by localhost") -> Postfix: cross the filter, nothing else.
        return below.by_localhost or (hop.by_localhost and _by_us(below, trust))
    return False


def _by_us(hop: Hop, trust: TrustRules) -> bool:
    if not hop.by_host:
        return False
    if _matches(hop.by_host, trust):
        return True
    try:
        return _in_networks(ipaddress.ip_address(hop.by_host.strip("[]")), trust)
    except ValueError:
        return False


def _from_us(hop: Hop, trust: TrustRules) -> bool:
    if hop.from_ip is not None and not hop.from_ip.is_loopback and _in_networks(hop.from_ip, trust):
        return True
    return bool(hop.from_name) and _matches(hop.from_name, trust)


def _matches(host: str, trust: TrustRules) -> bool:
    return any(fnmatch.fnmatchcase(host, pattern.lower().rstrip(".")) for pattern in trust.hosts)


def _in_networks(address: ipaddress.IPv4Address | ipaddress.IPv6Address, trust: TrustRules) -> bool:
    return any(address.version == net.version and address in net for net in trust.networks)
