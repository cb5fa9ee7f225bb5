"""Attribution settings: which headers name whom, which hosts are ours, what wins.

Plain frozen dataclasses with safe defaults; ``rules_from_mapping`` builds them
from the ``[attribution]`` table of the TOML configuration (the config side
calls it; this package reads no file and no environment).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from attribution.model import IdentityKind, Source

__all__ = [
    "CPANEL_APPENDED_HEADERS",
    "DEFAULT_HEADER_RULES",
    "DEFAULT_LOCAL_SUBMISSION",
    "DEFAULT_ORDER",
    "DEFAULT_VERP",
    "AttributionRules",
    "HeaderRule",
    "IPNetwork",
    "TrustRules",
    "rules_from_mapping",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
K, S = IdentityKind, Source
E = TypeVar("E", IdentityKind, Source)


@dataclass(frozen=True)
class HeaderRule:
    """Header ``header`` names a ``kind``: the ``value`` group of ``pattern`` (or the whole value).

    ``anywhere`` rules are read wherever the field sits, outside the trust
    boundary too: only for claims that prove nothing by themselves (From).
    """

    kind: IdentityKind
    header: str
    pattern: re.Pattern[str] | None = None
    anywhere: bool = False


def _rule(kind: IdentityKind, header: str, pattern: str = "", anywhere: bool = False) -> HeaderRule:
    return HeaderRule(kind, header, re.compile(pattern, re.I) if pattern else None, anywhere)


# In order of preference within each kind.
DEFAULT_HEADER_RULES: tuple[HeaderRule, ...] = (
    # Postfix with smtpd_sasl_authenticated_header = yes writes "(Authenticated sender: x)"
    # into the Received line of the submission (postconf(5)).
    _rule(K.ACCOUNT, "Received", r"\(Authenticated sender: (?P<value>[^)\s]+)\)"),
    # cPanel's Exim: "X-Get-Message-Sender-Via: host.example: authenticated_id: alice@example.com".
    _rule(K.ACCOUNT, "X-Get-Message-Sender-Via", r"authenticated_id: (?P<value>[^\s/]+)"),
    # MDaemon and Exim ACLs write the bare user; cPanel writes "host.example: user".
    _rule(K.ACCOUNT, "X-Authenticated-Sender", r"^(?:[A-Za-z0-9.-]+:\s+)?<?(?P<value>[^\s<>]+?)>?\s*$"),
    _rule(K.ACCOUNT, "X-AuthUser", r"^\s*(?P<value>\S+)\s*$"),
    # PHP mail() with mail.add_x_header = On: "uid:script" (basename since PHP 5.4; some
    # patched builds write the full path).
    _rule(K.SCRIPT, "X-PHP-Originating-Script", r"^(?P<value>\d+:\S.*?)\s*$"),
    # cPanel EA PHP: "example.com/path/to/script.php for 203.0.113.7" (the web visitor's IP).
    _rule(K.SCRIPT, "X-PHP-Script", r"^(?P<value>\S+?)(?:\s+for\s+.*)?$"),
    # cPanel's Exim: the working directory and the command line of a local sendmail call.
    _rule(K.SCRIPT, "X-Source-Dir", r"^(?P<value>\S.*?)\s*$"),
    _rule(K.SCRIPT, "X-Source-Args", r"^(?P<value>\S.*?)\s*$"),
    _rule(K.SCRIPT, "X-Source", r"^(?P<value>\S.*?)\s*$"),
    _rule(K.CUSTOMER, "X-Customer-ID", r"^\s*(?P<value>\S+)\s*$"),
    # RFC 6376 section 3.5: the signing domain is the d= tag.
    _rule(K.DOMAIN, "DKIM-Signature", r"(?:^|;)\s*d\s*=\s*(?P<value>[A-Za-z0-9.-]+)"),
    _rule(K.DOMAIN, "From", anywhere=True),
)

# Received lines of a local submission: the message entered our MTA from a program on the host,
# not over the network, so the header block below was written on our machine.
DEFAULT_LOCAL_SUBMISSION: tuple[re.Pattern[str], ...] = tuple(re.compile(p, re.I) for p in (
    r"^by\s+\S+\s+\(Postfix, from userid \d+\)",  # Postfix pickup (sendmail(1) compatibility)
    r"^from\s+\S+\s+by\s+\S+\s+with\s+local(?:-\w+)?\b",  # Exim -bm / -bs: "with local", "local-esmtp"
    r"^\(from\s+[^)]*\)\s*by\s+\S+\s+\([^)]*/Submit\)",  # Sendmail's submit.cf (msp)
    r"^\(qmail\s+\d+\s+invoked by uid\s+\d+\)",  # qmail-inject (older Plesk)
))

# cPanel's Exim appends these at the end of the header block of every outgoing message.
CPANEL_APPENDED_HEADERS: tuple[str, ...] = (
    "X-AntiAbuse", "X-Get-Message-Sender-Via", "X-Authenticated-Sender",
    "X-Source", "X-Source-Args", "X-Source-Dir",
)

DEFAULT_VERP: tuple[re.Pattern[str], ...] = tuple(re.compile(p, re.I) for p in (
    # bounces+alice=example.net@provider.example: the failed recipient alice@example.net.
    r"^bounces\+(?P<local>[^=@]+)=(?P<domain>[^@]+)@",
    # bounces-C1001-alice=example.com@provider.example: customer C1001, account alice@example.com.
    r"^bounces-(?P<customer>[A-Za-z0-9_.]+)-(?P<account>[^@]+)@",
))

DEFAULT_ORDER: Mapping[IdentityKind, tuple[Source, ...]] = {
    K.ACCOUNT: (S.HEADER, S.LEDGER, S.VERP),
    K.SCRIPT: (S.HEADER, S.LEDGER, S.VERP),
    K.CUSTOMER: (S.HEADER, S.LEDGER, S.VERP, S.DIRECTORY),
    K.DOMAIN: (S.ENVELOPE, S.HEADER, S.LEDGER),
    K.CLIENT: (S.RECEIVED, S.LEDGER),
    K.IP: (S.ARF, S.RECEIVED, S.LEDGER),
}


@dataclass(frozen=True)
class TrustRules:
    """Where our part of a message is (see ``attribution.boundary`` for the rule).

    ``hosts``: glob patterns of our MTAs' names as they write them after "by"
    (``*.provider.example``); ``networks``: our MTAs' and outbound IPs.
    ``appended_headers``: fields our MTA appends at the end of the header
    block (empty by default: a sender can end its own block with any field;
    cPanel providers set ``CPANEL_APPENDED_HEADERS``). ``local_headers``:
    fields the local program writes (PHP mail()), believed only below a
    local-submission Received line of ours.
    """

    hosts: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    appended_headers: tuple[str, ...] = ()
    local_headers: tuple[str, ...] = ("X-PHP-Originating-Script", "X-PHP-Script")
    local_submission: tuple[re.Pattern[str], ...] = DEFAULT_LOCAL_SUBMISSION

    @property
    def configured(self) -> bool:
        """False when neither hosts nor networks are set: then no header is believed."""
        return bool(self.hosts or self.networks)


@dataclass(frozen=True)
class AttributionRules:
    """Everything ``attribute`` is told; the defaults are safe (no host trusted)."""

    trust: TrustRules = field(default_factory=TrustRules)
    headers: tuple[HeaderRule, ...] = DEFAULT_HEADER_RULES
    verp: tuple[re.Pattern[str], ...] = DEFAULT_VERP
    directory: Mapping[str, str] = field(default_factory=dict)  # account -> customer
    order: Mapping[IdentityKind, tuple[Source, ...]] = field(default_factory=lambda: dict(DEFAULT_ORDER))


def rules_from_mapping(data: Mapping[str, object], directory: Mapping[str, str] | None = None,
                       where: str = "[attribution]") -> AttributionRules:
    """Build rules from a parsed ``[attribution]`` TOML table; missing keys keep their defaults.

    ``directory_csv`` (a file name) is the caller's to read: it passes the
    parsed mapping (``load_directory_csv``) as ``directory``. Raises ValueError
    with a sentence naming the key when a value is bad.
    """
    known = {"trusted_hosts", "trusted_networks", "appended_headers", "local_headers",
             "local_submission", "headers", "verp", "order", "directory_csv"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    defaults = TrustRules()
    trust = TrustRules(
        hosts=tuple(h.lower().rstrip(".") for h in _strings(data, "trusted_hosts", defaults.hosts, where)),
        networks=tuple(_network(n, where) for n in _strings(data, "trusted_networks", (), where)),
        appended_headers=_strings(data, "appended_headers", defaults.appended_headers, where),
        local_headers=_strings(data, "local_headers", defaults.local_headers, where),
        local_submission=tuple(_regex(p, f"{where}.local_submission") for p in
                               _strings(data, "local_submission", (), where)) or defaults.local_submission,
    )
    headers = DEFAULT_HEADER_RULES
    if "headers" in data:
        headers = tuple(_header_rule(item, f"{where}.headers[{n}]")
                        for n, item in enumerate(_list(data["headers"], f"{where}.headers")))
    verp = DEFAULT_VERP
    if "verp" in data:
        verp = tuple(_regex(p, f"{where}.verp") for p in _strings(data, "verp", (), where))
    order = dict(DEFAULT_ORDER)
    raw_order = data.get("order", {})
    if not isinstance(raw_order, Mapping):
        raise ValueError(f"{where}.order must be a table of kind = [sources], got {raw_order!r}")
    for kind_name in raw_order:
        kind = _enum(IdentityKind, kind_name, f"{where}.order")
        order[kind] = tuple(_enum(Source, s, f"{where}.order.{kind_name}")
                            for s in _strings(raw_order, kind_name, (), f"{where}.order"))
    return AttributionRules(trust, headers, verp, dict(directory or {}), order)


def _list(value: object, key: str) -> Sequence[object]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{key} must be a list, got {value!r}")
    return value


def _strings(data: Mapping[str, object], key: str, default: tuple[str, ...], where: str) -> tuple[str, ...]:
    if key not in data:
        return default
    items = _list(data[key], f"{where}.{key}")
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        raise ValueError(f"{where}.{key} must be a list of strings, got {bad[0]!r}")
    return tuple(str(item) for item in items)


def _network(text: str, where: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{where}.trusted_networks: {text!r} is not an IP network "
                         "(write an address or a range such as 198.51.100.0/24)") from None


def _regex(text: str, key: str) -> re.Pattern[str]:
    try:
        return re.compile(text, re.I)
    except re.error as error:
        raise ValueError(f"{key}: {text!r} is not a valid regular expression ({error})") from None


def _enum(cls: type[E], value: object, key: str) -> E:
    try:
        return cls(str(value).lower())
    except ValueError:
        names = ", ".join(member.value for member in cls)
        raise ValueError(f"{key}: {value!r} is not one of {names}") from None


def _header_rule(item: object, key: str) -> HeaderRule:
    if not isinstance(item, Mapping):
        raise ValueError(f"{key} must be a table with kind, header and optional pattern, anywhere")
    extra = sorted(set(item) - {"kind", "header", "pattern", "anywhere"})
    if extra:
        raise ValueError(f"{key}: unknown key {extra[0]!r} (known: kind, header, pattern, anywhere)")
    header = item.get("header")
    if not isinstance(header, str) or not header.strip():
        raise ValueError(f"{key}.header must be a header name such as 'X-Customer-ID', got {header!r}")
    pattern = item.get("pattern", "")
    if not isinstance(pattern, str):
        raise ValueError(f"{key}.pattern must be a string, got {pattern!r}")
    anywhere = item.get("anywhere", False)
    if not isinstance(anywhere, bool):
        raise ValueError(f"{key}.anywhere must be true or false, got {anywhere!r}")
    return HeaderRule(_enum(IdentityKind, item.get("kind"), f"{key}.kind"), header.strip(),
                      _regex(pattern, f"{key}.pattern") if pattern else None, anywhere)
