"""``attribute``: the original's header and envelope -> who is responsible, and how we know.

Each source yields candidate answers; ``AttributionRules.order`` ranks them per
kind. Header fields count only where ``attribution.boundary`` says our MTAs
wrote them; what was seen and not believed is listed with the reason.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from attribution.boundary import Boundary, Zone, find_boundary
from attribution.model import (
    Attribution,
    AttributionResult,
    Envelope,
    IdentityKind,
    Ledger,
    Source,
    normalize_message_id,
)
from attribution.rules import AttributionRules, HeaderRule, TrustRules
from rfc822 import OriginalMessage, first_address

__all__ = ["attribute"]

K = IdentityKind
_HOSTNAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")
_SHORT = 200


def attribute(original: OriginalMessage | Sequence[tuple[str, str]] | None, envelope: Envelope | None,
              rules: AttributionRules, ledger: Ledger | None = None) -> AttributionResult:
    """Name the account, script, customer, domain, client and outbound ip behind ``original``.

    ``original`` is the returned message's header (an ``OriginalMessage`` or
    (name, value) pairs, top first; None when the bounce returned nothing).
    ``ledger`` looks a Message-ID up in what our MTA recorded. Pure: no I/O
    besides calling ``ledger``, whose errors are not swallowed.
    """
    headers = _pairs(original)
    envelope = envelope or Envelope()
    boundary = find_boundary(headers, rules.trust)
    candidates, ignored = _from_headers(headers, boundary, rules)
    candidates += _from_received(boundary, headers, rules.trust)
    candidates += _from_arf(envelope.source_ip, rules.trust)
    verp, recipient = _from_verp(envelope, rules)
    candidates += verp
    if envelope.mail_from:
        candidates += _from_envelope(envelope.mail_from, "envelope sender", rules)
    else:
        # The delivering MTA records the envelope sender as Return-Path (RFC 5321 section 4.4).
        return_path = next((v for n, v in headers if n.lower() == "return-path"), "")
        candidates += _from_envelope(return_path, "Return-Path", rules)
    message_id = normalize_message_id(next((v for n, v in headers if n.lower() == "message-id"), ""))
    if ledger is not None and message_id:
        candidates += _from_ledger(ledger, message_id)
    ranked = _rank(candidates, rules)
    directory = _from_directory([a for a in ranked if a.kind is K.ACCOUNT], rules)
    if directory:
        ranked = _rank([*ranked, *directory], rules)
    return AttributionResult(tuple(ranked), boundary.describe(), tuple(ignored), message_id, recipient)


def _pairs(original: OriginalMessage | Sequence[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if original is None:
        return []
    items = original.headers if isinstance(original, OriginalMessage) else original
    return [(str(name).strip(), " ".join(str(value).split())) for name, value in items]


def _from_headers(headers: Sequence[tuple[str, str]], boundary: Boundary,
                  rules: AttributionRules) -> tuple[list[Attribution], list[str]]:
    believed = _believed_positions(headers, boundary, rules.trust)
    found: list[Attribution] = []
    ignored: list[str] = []
    for rule in rules.headers:
        hits: list[tuple[int, Attribution]] = []
        for index, (name, value) in enumerate(headers):
            if name.lower() != rule.header.lower():
                continue
            extracted = _extract(rule, value)
            if extracted is None:
                continue
            text, snippet = extracted
            if rule.anywhere or index in believed:
                detail = f"{name}: {snippet}"
                if name.lower() == "received":
                    detail += f" by {boundary.hops[_hop_number(boundary, index)].by_host}"
                how = believed.get(index, (0, ""))[1]
                hits.append((believed.get(index, (index, ""))[0],
                             Attribution(rule.kind, text, Source.HEADER, f"{detail}{how}")))
            else:
                ignored.append(_why_not(name, value, index, boundary, rules.trust))
        found += [attribution for _, attribution in sorted(hits, key=lambda hit: hit[0])]
    return found, list(dict.fromkeys(ignored))


def _believed_positions(headers: Sequence[tuple[str, str]], boundary: Boundary,
                        trust: TrustRules) -> dict[int, tuple[int, str]]:
    """Index -> (rank, how) of every header field our MTAs wrote, by the rule of boundary.py."""
    if not boundary.found or boundary.entry is None:
        return {}
    entry = boundary.entry
    size = len(headers)
    believed = {i: (i, "") for i in range(size) if boundary.zone(i) is Zone.OURS}
    if boundary.local:
        wanted = {name.lower() for name in trust.local_headers}
        for index in range(entry.index + 1, size):
            name = headers[index][0].lower()
            if name in wanted:
                wanted.discard(name)
                how = f" (first below our local submission 'Received: {entry.short()}')"
                believed[index] = (size + index, how)
    appended = {name.lower() for name in trust.appended_headers}
    seen: set[str] = set()
    index = size - 1
    while index > entry.index and headers[index][0].lower() in appended:
        # Ours come last: only the last one of a name, since the sender may end its block with one.
        if headers[index][0].lower() not in seen:
            seen.add(headers[index][0].lower())
            believed.setdefault(index, (2 * size + index, " (appended by our MTA at the end of the header)"))
        index -= 1
    return believed


def _why_not(name: str, value: str, index: int, boundary: Boundary, trust: TrustRules) -> str:
    field = f"{name}: {_short(value)}"
    zone = boundary.zone(index)
    if zone is Zone.NONE:
        return f"{field}: {boundary.reason}"
    if zone is Zone.RECEIVER and boundary.exit is not None:
        return (f"{field}: added by the receiving side, above the hop that left us "
                f"'Received: {boundary.exit.short()}'")
    assert boundary.entry is not None
    where = f"below our entry hop 'Received: {boundary.entry.short()}'"
    if boundary.local and name.lower() in {h.lower() for h in trust.local_headers}:
        return f"{field}: {where}, but not the first {name} there: the sending program wrote it"
    if name.lower() in {h.lower() for h in trust.appended_headers}:
        return f"{field}: {where}, not among the fields our MTA appends at the end: the sender wrote it"
    return f"{field}: {where}: the sender wrote it, not our MTA"


def _hop_number(boundary: Boundary, index: int) -> int:
    return next(n for n, hop in enumerate(boundary.hops) if hop.index == index)


def _extract(rule: HeaderRule, value: str) -> tuple[str, str] | None:
    """(value, quoted evidence) that ``rule`` reads in ``value``, or None."""
    if rule.pattern is None:
        text, snippet = value.strip(), _short(value)
    else:
        match = rule.pattern.search(value)
        if match is None:
            return None
        if "value" in match.re.groupindex:
            text = match.group("value") or ""
        else:
            text = match.group(1) if match.re.groups else match.group(0)
        snippet = match.group(0).strip() if rule.header.lower() == "received" else _short(value)
    text = text.strip().strip("<>").strip()
    if rule.kind is K.DOMAIN:
        text = _domain_of(text)
    return (text, snippet) if text else None


def _domain_of(text: str) -> str:
    if "@" in text:
        text = first_address(text).rpartition("@")[2]
    text = text.lower().rstrip(".")
    return text if _HOSTNAME.match(text) else ""


def _from_received(boundary: Boundary, headers: Sequence[tuple[str, str]],
                   trust: TrustRules) -> list[Attribution]:
    found: list[Attribution] = []
    if not boundary.found:
        # No line by us (a provider whose outbound MTA adds none): the receiver's own line,
        # the topmost one, still names our outbound address when it is in our networks.
        first = boundary.hops[0] if boundary.hops else None
        if first is not None and first.from_ip is not None and trust.networks and any(
                first.from_ip.version == n.version and first.from_ip in n for n in trust.networks):
            found.append(Attribution(K.IP, str(first.from_ip), Source.RECEIVED,
                                     f"the receiver's Received line: Received: {first.short()}"))
        return found
    if boundary.exit is not None and boundary.exit.from_ip is not None:
        found.append(Attribution(K.IP, str(boundary.exit.from_ip), Source.RECEIVED,
                                 f"the hop that left us: Received: {boundary.exit.short()}"))
    entry = boundary.entry
    if entry is not None and not entry.local and entry.from_ip is not None:
        found.append(Attribution(K.CLIENT, str(entry.from_ip), Source.RECEIVED,
                                 f"our entry hop: Received: {entry.short()}"))
    return found


def _from_arf(source_ip: str, trust: TrustRules) -> list[Attribution]:
    try:
        address = ipaddress.ip_address(source_ip.strip().strip("[]"))
    except ValueError:
        return []
    detail = f"Source-IP: {source_ip.strip()}"
    if trust.networks and not any(address.version == n.version and address in n for n in trust.networks):
        detail += " (not in our trusted networks)"
    return [Attribution(K.IP, str(address), Source.ARF, detail)]


def _from_verp(envelope: Envelope, rules: AttributionRules) -> tuple[list[Attribution], str]:
    found: list[Attribution] = []
    recipient = ""
    addresses = (("bounce recipient", envelope.bounce_rcpt), ("envelope sender", envelope.mail_from))
    for label, address in addresses:
        address = address.strip().strip("<>")
        for pattern in rules.verp:
            match = pattern.search(address) if address else None
            if match is None:
                continue
            groups = {k: v for k, v in match.groupdict().items() if v}
            detail = f"{label} {address} matches {pattern.pattern}"
            if not recipient and "local" in groups and "domain" in groups:
                recipient = f"{groups['local']}@{groups['domain']}"
            for kind in (K.ACCOUNT, K.SCRIPT, K.CUSTOMER):
                if kind.value in groups:
                    value = groups[kind.value]
                    if kind is K.ACCOUNT and "@" not in value and "=" in value:
                        local, _, domain = value.rpartition("=")  # VERP writes alice@x as alice=x
                        value = f"{local}@{domain}"
                    found.append(Attribution(kind, value, Source.VERP, detail))
    return found, recipient


def _from_envelope(mail_from: str, label: str, rules: AttributionRules) -> list[Attribution]:
    address = first_address(mail_from)
    # Our own VERP return path names our bounce domain, not the sender's.
    if not address or any(pattern.search(address) for pattern in rules.verp):
        return []
    domain = _domain_of(address)
    return [Attribution(K.DOMAIN, domain, Source.ENVELOPE, f"{label} {address}")] if domain else []


def _from_ledger(ledger: Ledger, message_id: str) -> list[Attribution]:
    entry = ledger(message_id)
    if entry is None:
        return []
    detail = f"Message-ID {message_id} in the ledger"
    values = ((K.ACCOUNT, entry.account), (K.SCRIPT, entry.script), (K.CUSTOMER, entry.customer),
              (K.DOMAIN, entry.domain), (K.CLIENT, entry.client), (K.IP, entry.ip))
    return [Attribution(kind, value.strip(), Source.LEDGER, detail)
            for kind, value in values if value.strip()]


def _from_directory(accounts: Iterable[Attribution], rules: AttributionRules) -> list[Attribution]:
    if not rules.directory:
        return []
    for account in accounts:
        customer = rules.directory.get(account.value) or rules.directory.get(account.value.lower())
        if customer:
            return [Attribution(K.CUSTOMER, customer, Source.DIRECTORY,
                                f"account {account.value} belongs to customer {customer} in the directory")]
    return []


def _rank(candidates: Iterable[Attribution], rules: AttributionRules) -> list[Attribution]:
    """Kind by kind, best source first (sources missing from the order are dropped), no repeats."""
    ranked: list[Attribution] = []
    pool = list(candidates)
    for kind in IdentityKind:
        order = rules.order.get(kind, ())
        mine = [a for a in pool if a.kind is kind and a.source in order]
        mine.sort(key=lambda a: order.index(a.source))  # stable: keeps the order within a source
        seen: set[str] = set()
        for attribution in mine:
            if attribution.value.lower() not in seen:
                seen.add(attribution.value.lower())
                ranked.append(attribution)
    return ranked


def _short(value: str) -> str:
    return value if len(value) <= _SHORT else value[: _SHORT - 3] + "..."
