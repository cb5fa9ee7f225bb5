"""What the MTA tells the sender: configurable texts per action and identity kind, and their rendering.

A text is chosen by the action's name (``throttled``, ``paused``, ``held``, ``blocked``), first in
its per-kind variant (``paused.customer``, ``blocked.script``, ...), and filled with ``{fields}``:
``identity``, ``kind``, ``value``, ``reason`` (the decision's sentence), ``rule``, ``limit``,
``until`` and ``support``. A paused sender's text says what to do next: that is the only thing a
customer whose password was stolen reads from us.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC

from reputation.model import Action, Decision, IdentityKind

__all__ = ["DEFAULT_TEXTS", "TEXT_FIELDS", "TEXT_NAMES", "PolicyConfig", "render_text"]

TEXT_NAMES: Mapping[Action, str] = {Action.THROTTLE: "throttled", Action.DEFER: "paused",
                                    Action.HOLD: "held", Action.REJECT: "blocked"}
TEXT_FIELDS = ("identity", "kind", "value", "reason", "rule", "limit", "until", "support")

DEFAULT_TEXTS: Mapping[str, str] = {
    "throttled": "Too many messages from {identity}: {limit} an hour are allowed for now. Try again later",
    "paused": "Sending from {identity} is paused because {reason}. Change its password, look for "
              "malware or a compromised script, then contact {support}",
    "paused.account": "Your account {value} is paused because {reason}. Reset your password, check "
                      "your devices for malware, then contact {support}",
    "paused.customer": "Your account is paused because {reason}. Reset your passwords and contact {support}",
    "paused.script": "Mail from the script {value} is paused because {reason}. Update or remove it, "
                     "then contact {support}",
    "held": "Message held for review because {reason}",
    "blocked": "Sending from {identity} is blocked because {reason}. Contact {support}",
}

# Reply text is ASCII (RFC 5321 section 4.2); these symbols appear in decision reasons.
_ASCII = str.maketrans({"≥": ">=", "≤": "<=", "→": "->", "–": "-", "—": "-", "…": "...", "×": "x",
                        "‘": "'", "’": "'", "“": '"', "”": '"'})


@dataclass(frozen=True)
class PolicyConfig:
    """How the policy service answers: texts, support contact, fail-open action, memory bounds."""

    texts: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TEXTS))
    support: str = "your provider's support"
    # What the MTA is told when the lookup itself fails: allow (fail open) or defer.
    fail_open: Action = Action.ALLOW
    fail_open_text: str = "Policy service temporarily unavailable, try again later"
    max_instances: int = 100_000  # messages remembered to count each once (an LRU)

    def __post_init__(self) -> None:
        if self.fail_open not in (Action.ALLOW, Action.DEFER):
            raise ValueError(f"policy fail_open must be 'allow' or 'defer', got {self.fail_open.value!r}")
        if self.max_instances < 1:
            raise ValueError(f"policy max_instances must be at least 1, got {self.max_instances}")
        names = set(TEXT_NAMES.values())
        kinds = {kind.value for kind in IdentityKind}
        dummy = dict.fromkeys(TEXT_FIELDS, "x")
        for name, text in self.texts.items():
            base, _, kind = name.partition(".")
            if base not in names or (kind and kind not in kinds):
                raise ValueError(f"policy text {name!r} is not one of {sorted(names)}, optionally followed "
                                 f"by '.' and an identity kind ({', '.join(sorted(kinds))})")
            try:
                text.format_map(dummy)
            except (KeyError, ValueError, IndexError) as error:
                raise ValueError(f"policy text {name!r} uses a field that does not exist or a stray brace "
                                 f"({error}); the fields are {{{'}, {'.join(TEXT_FIELDS)}}}") from None
        missing = names - set(self.texts)
        if missing:
            raise ValueError(f"policy texts {sorted(missing)} are missing; every action needs a text")


def render_text(config: PolicyConfig, decision: Decision, action: Action, now: float) -> str:
    """The text for ``decision`` told as ``action``, one ASCII line."""
    name = TEXT_NAMES[action]
    identity = decision.identity
    template = config.texts.get(f"{name}.{identity.kind.value}") or config.texts[name]
    until = decision.until
    until_text = "further notice" if until is None else until.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    values = {
        "identity": str(identity), "kind": identity.kind.value, "value": identity.value,
        "reason": decision.reason.strip().rstrip(".") or "of its recent sending",
        "rule": decision.rule or "an administrator's decision",
        "limit": str(decision.limit_per_hour) if decision.limit_per_hour is not None else "no",
        "until": until_text,
        "support": config.support,
    }
    text = template.format_map(values).translate(_ASCII)
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(text.split())
