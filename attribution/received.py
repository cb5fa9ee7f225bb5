"""Reading one Received header field (RFC 5321 section 4.4) into the parts attribution needs.

Only what the trust boundary needs is read: who wrote the line ("by"), the
client it names ("from": its IP and the name the writer verified), and whether
it records a local submission. The writer of a genuine line is the MTA named
after "by"; everything after "from" is what that MTA saw of its client.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Hop", "IPAddress", "parse_received"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_BY = re.compile(r"(?:^|\s)by\s+([^\s;()]+)", re.I)
# "[192.0.2.1]", "[IPv6:2001:db8::1]" (RFC 5321 address literal), as Postfix, Exim, Sendmail write.
_BRACKETED = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
# Postfix and Sendmail: "from HELO (NAME [IP])"; the HELO may itself be an address literal.
_COMMENTED = re.compile(r"\([A-Za-z0-9][A-Za-z0-9.-]*\.?\s+\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
# qmail: "from unknown (HELO host) (192.0.2.1)".
_PARENTHESIZED = re.compile(r"\(([0-9A-Fa-f:.]+)\)")
# The name written right before the bracketed IP is the one the writer looked up and
# verified: Postfix and Sendmail "from HELO (NAME [IP])", Exim "from NAME ([IP] helo=HELO)".
# The HELO name is the client's own claim and is never used.
_VERIFIED_NAME = r"(?<![A-Za-z0-9.=-])(?!from\s)([A-Za-z0-9][A-Za-z0-9.-]*?)\.?\s+\(?\[(?:IPv6:)?{ip}\]"
_LOCALHOST = frozenset({"localhost", "localhost.localdomain"})


@dataclass(frozen=True)
class Hop:
    """One Received line. ``index`` is its position among all header fields."""

    index: int
    text: str
    by_host: str  # lower case, no trailing dot; '' when the line names no writer
    from_ip: IPAddress | None
    from_name: str  # the verified name of the client, lower case ('' when none)
    local: bool  # a local submission (Postfix pickup, Exim -bm, ...): no network client

    @property
    def by_localhost(self) -> bool:
        """Written by a content filter on the same machine (amavisd-new writes 'by localhost')."""
        if self.by_host in _LOCALHOST:
            return True
        address = _ip(self.by_host)
        return address is not None and address.is_loopback

    @property
    def from_loopback(self) -> bool:
        return self.from_ip is not None and self.from_ip.is_loopback

    def short(self) -> str:
        """The line cut to a readable length for explanations."""
        text = self.text.split(";")[0].strip() if ";" in self.text else self.text
        return text if len(text) <= 160 else text[:157] + "..."


def parse_received(index: int, value: str, local_patterns: Sequence[re.Pattern[str]]) -> Hop:
    """Read the unfolded value of a Received field at header position ``index``."""
    text = " ".join(value.split())
    bare = _blank_comments(text)
    by = _BY.search(bare)
    by_host = by.group(1).lower().rstrip(".") if by else ""
    clause = text[: by.start()] if by else text
    from_ip = _from_ip(clause) if clause.lower().lstrip("( ").startswith("from") else None
    from_name = ""
    if from_ip is not None:
        # Postfix shortens IPv6 literals, Exim does not: compare the text as written.
        for literal in _BRACKETED.findall(clause):
            if _ip(literal) == from_ip:
                named = re.search(_VERIFIED_NAME.format(ip=re.escape(literal)), clause, re.I)
                if named and named.group(1).lower() != "unknown":
                    from_name = named.group(1).lower()
                break
    local = any(pattern.search(text) for pattern in local_patterns)
    return Hop(index, text, by_host, None if local else from_ip, from_name, local)


def _blank_comments(text: str) -> str:
    """``text`` with every (possibly nested) parenthesized comment replaced by spaces."""
    out: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        if depth:
            out.append(" ")
        else:
            out.append(char)
        if char == ")" and depth:
            depth -= 1
    return "".join(out)


def _from_ip(clause: str) -> IPAddress | None:
    """The client's IP as the writer saw it, never the HELO argument (which the client chose)."""
    helo = re.sub(r"helo=\S+", " ", clause, flags=re.I)  # Exim: "from [IP] (port=N helo=[HELO])"
    for pattern in (_COMMENTED, _BRACKETED, _PARENTHESIZED):
        for candidate in pattern.findall(helo):
            address = _ip(candidate)
            if address is not None:
                return address
    return None


def _ip(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
