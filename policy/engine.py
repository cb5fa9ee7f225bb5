"""The hot path: one policy lookup in, one answer out, from memory only (DESIGN.md, "Policy").

``PolicyEngine.answer`` names the identities of a lookup (account = ``sasl_username``, client =
``client_address``, domain of ``sender``, ``script`` and ``customer`` when the caller sends them,
else the customer from the directory), reads their decisions from the ``DecisionCache`` (the most
severe wins), enforces throttle limits per hour in memory, counts an accepted message exactly
once and hands it to a ``SendSink``. It never touches the database and never blocks; any exception
inside it gives the configured fail-open answer, logged and counted (STYLE.md habit 9).

Counting once per message (issue 4, section 3). Postfix sends the same ``instance`` for every
lookup about one message (SMTPD_POLICY_README):

- at ``RCPT`` the first lookup of an instance counts the message and its recipient, later ones add
  a recipient each;
- at ``DATA`` / ``END-OF-MESSAGE`` (and for HTTP and Exim requests without ``protocol_state``) a
  lookup counts the message with ``recipient_count`` recipients, unless its instance was counted
  already (the smtpd restrictions run at RCPT and at end of data);
- other states (CONNECT, HELO, MAIL, ...) count nothing. A lookup without ``instance`` is one
  message. Only sends we let through are counted; a deferred attempt is not a send.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from policy.cache import CustomerMap, DecisionCache, HourWindow, InstanceLog, Key, key_of
from policy.texts import PolicyConfig, render_text
from reputation.model import Action, Decision, Identity, IdentityKind

__all__ = ["Answer", "MemorySendSink", "PolicyEngine", "Send", "SendSink"]

log = logging.getLogger(__name__)

_KINDS = {kind.value: kind for kind in IdentityKind}
_MESSAGE_STATES = frozenset({"END-OF-MESSAGE", "DATA", ""})
# SMTP reply code and enhanced status (RFC 3463: 4.7.1 / 5.7.1 "delivery not authorized").
_CODES: Mapping[Action, tuple[int | None, str | None]] = {
    Action.ALLOW: (None, None), Action.THROTTLE: (None, None), Action.DEFER: (450, "4.7.1"),
    Action.HOLD: (None, None), Action.REJECT: (550, "5.7.1")}
_LOG_EVERY = 10.0  # seconds between two logged tracebacks of the same kind: no log flood at 10k/s
_PRUNE_EVERY = 8192  # answers between two sweeps of idle throttle windows
_MAX_MADE = 200_000  # Identity objects kept for reuse


class Answer(NamedTuple):
    """What the MTA is told, and why: the action, SMTP code and text, identities, rule, retry-after.

    A NamedTuple rather than a frozen dataclass: one is built per lookup, and a tuple is built in
    C where a frozen dataclass sets each field through ``object.__setattr__``.
    """

    action: Action
    smtp_code: int | None
    status: str | None  # RFC 3463 enhanced status code, e.g. "4.7.1"
    smtp_text: str
    identities: tuple[Identity, ...]
    rule: str | None
    retry_after: int | None  # seconds, when it is known when the answer will change
    failed_open: bool = False

    @property
    def postfix_action(self) -> str:
        """The Postfix access(5) action: DUNNO, DEFER_IF_PERMIT 4.7.1 ..., HOLD ..., REJECT 5.7.1 ..."""
        action = self.action
        if action is Action.ALLOW or action is Action.THROTTLE:
            return "DUNNO"
        if action is Action.DEFER:
            return f"DEFER_IF_PERMIT {self.status} {self.smtp_text}"
        if action is Action.HOLD:
            return f"HOLD {self.smtp_text}"
        return f"REJECT {self.status} {self.smtp_text}"

    def as_json(self) -> dict[str, object]:
        """The JSON body of the HTTP answer."""
        return {"action": self.action.value, "smtp_code": self.smtp_code, "status": self.status,
                "smtp_text": self.smtp_text, "rule": self.rule, "retry_after": self.retry_after,
                "identities": [{"kind": i.kind.value, "value": i.value} for i in self.identities],
                "postfix_action": self.postfix_action, "failed_open": self.failed_open}


class Send(NamedTuple):
    """An accepted message, or more recipients of one already counted (``messages`` = 0).

    A NamedTuple for the reason given at ``Answer``.
    """

    identities: tuple[Identity, ...]
    messages: int
    recipients: int
    addresses: tuple[str, ...]  # the recipient addresses when known (RCPT stage), else empty
    sender: str
    at: datetime


class SendSink(Protocol):
    """Where counted sends go (the reputation counters, a batch flusher to the database).

    ``record`` is called on the hot path: it must only append to memory, never wait.
    """

    def record(self, send: Send) -> None:
        """Take one counted send."""


class MemorySendSink:
    """Sends kept in a bounded buffer until ``drain``; running totals per identity."""

    def __init__(self, max_pending: int = 1_000_000) -> None:
        self._pending: deque[Send] = deque(maxlen=max_pending)
        self.dropped = 0  # sends pushed out because nobody drained the buffer
        # Keyed by (kind, value): a tuple of str hashes and compares in C, an Identity in Python.
        self._totals: dict[tuple[str, str], list[int]] = {}

    def record(self, send: Send) -> None:
        """Keep ``send`` until the next ``drain``."""
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        self._pending.append(send)
        totals = self._totals
        for identity in send.identities:
            key = (identity.kind, identity.value)
            total = totals.get(key)
            if total is None:
                totals[key] = [send.messages, send.recipients]
            else:
                total[0] += send.messages
                total[1] += send.recipients

    def totals(self, identity: Identity) -> tuple[int, int]:
        """(messages, recipients) recorded for ``identity`` since the sink was made."""
        total = self._totals.get((identity.kind, identity.value))
        return (total[0], total[1]) if total else (0, 0)

    def drain(self) -> list[Send]:
        """Everything recorded since the last drain, oldest first (safe from another thread)."""
        pending = self._pending
        # popleft and append are atomic: a send recorded meanwhile waits for the next drain.
        return [pending.popleft() for _ in range(len(pending))]


@dataclass
class _Stats:
    answers: int = 0
    failed_open: int = 0
    sink_errors: int = 0
    by_action: dict[Action, int] = field(default_factory=lambda: dict.fromkeys(Action, 0))


class PolicyEngine:
    """Answers policy lookups from the decision cache and counts what it lets through."""

    def __init__(self, decisions: DecisionCache, sink: SendSink, config: PolicyConfig | None = None,
                 customers: CustomerMap | None = None, clock: Callable[[], float] = time.time) -> None:
        self.decisions = decisions
        self.customers = customers or CustomerMap()
        self.config = config or PolicyConfig()
        self.sink = sink
        self._clock = clock
        self._instances = InstanceLog(self.config.max_instances)
        self._windows: dict[Key, HourWindow] = {}
        self._stats = _Stats()
        self._last_logged: dict[str, float] = {}
        self._made: dict[Key, Identity] = {}
        # RFC 3463 4.3.0: "other or undefined mail system status", a temporary failure of ours.
        defer = self.config.fail_open is Action.DEFER
        self._fail_open = Answer(self.config.fail_open, 450 if defer else None, "4.3.0" if defer else None,
                                 self.config.fail_open_text if defer else "", (), None, None, True)

    def fail_open_answer(self) -> Answer:
        """The configured fail-open answer, counted (for callers whose own part failed: HTTP auth)."""
        self._stats.failed_open += 1
        return self._fail_open

    def metrics(self) -> dict[str, int]:
        """Counters for monitoring: answers, failed_open, sink_errors, answers by action."""
        stats = self._stats
        return {"answers": stats.answers, "failed_open": stats.failed_open, "sink_errors": stats.sink_errors,
                "decisions": len(self.decisions), "throttle_windows": len(self._windows),
                **{f"action_{action.value}": count for action, count in stats.by_action.items()}}

    def answer(self, attributes: Mapping[str, str]) -> Answer:
        """The answer to one lookup (Postfix attribute names; HTTP and Exim use the same names)."""
        self._stats.answers += 1
        try:
            answer = self._answer(attributes)
        except Exception:  # noqa: BLE001 -- fail open on anything: the MTA must get an answer
            self._stats.failed_open += 1
            self._log_failure("answer", "policy lookup failed; answering the fail-open action")
            return self._fail_open
        self._stats.by_action[answer.action] += 1
        return answer

    def _answer(self, attrs: Mapping[str, str]) -> Answer:
        now = self._clock()
        keys = self._keys(attrs)
        identities = self._identities(keys)
        instance = attrs.get("instance") or ""
        counted = bool(instance) and instance in self._instances
        found = self.decisions.applicable(keys, now)
        answer = self._decide(found, identities, counted, now) if found else Answer(
            Action.ALLOW, None, None, "", identities, None, None)
        if answer.action is Action.ALLOW or answer.action is Action.THROTTLE:
            self._count(attrs, instance, counted, identities, found, now)
        if self._stats.answers % _PRUNE_EVERY == 0:
            self._windows = {k: w for k, w in self._windows.items() if not w.idle(now)}
        return answer

    def _identities(self, keys: list[Key]) -> tuple[Identity, ...]:
        """The Identity of each key, made once per key (frozen dataclasses are slow to build)."""
        made = self._made
        found = []
        for key in keys:
            identity = made.get(key)
            if identity is None:
                if len(made) >= _MAX_MADE:
                    made.clear()  # bounded: forgetting only costs the next lookups a rebuild
                identity = made[key] = Identity(_KINDS[key[0]], key[1])
            found.append(identity)
        return tuple(found)

    def _keys(self, attrs: Mapping[str, str]) -> list[Key]:
        """The identities of a lookup as cache keys, most specific first."""
        keys: list[Key] = []
        account = (attrs.get("sasl_username") or attrs.get("account") or "").strip()
        if account:
            keys.append(("account", account))
        script = (attrs.get("script") or "").strip()
        if script:
            keys.append(("script", script))
        client = (attrs.get("client_address") or "").strip()
        if client and client != "unknown":
            keys.append(("client", client))
        sender = attrs.get("sender") or ""
        at = sender.rfind("@")
        if at >= 0:
            # Domains are case-insensitive (RFC 5321 section 2.4); a trailing dot is the same domain.
            domain = sender[at + 1:].strip().rstrip(".").lower()
            if domain:
                keys.append(("domain", domain))
        customer = (attrs.get("customer") or "").strip() or self.customers.lookup(keys)
        if customer:
            keys.append(("customer", customer))
        return keys

    def _decide(self, found: list[tuple[int, Decision]], identities: tuple[Identity, ...], counted: bool,
                now: float) -> Answer:
        """The answer of the most severe applicable decision (``found`` is sorted, most severe first)."""
        top = found[0][1]
        if top.action is Action.ALLOW:
            return Answer(Action.ALLOW, None, None, "", identities, top.rule, None)
        if top.action is Action.THROTTLE:
            # A later recipient of a message already let through is part of that send.
            for _, decision in () if counted else found:
                limit = decision.limit_per_hour
                if decision.action is not Action.THROTTLE or limit is None:
                    continue
                window = self._windows.get(key_of(decision.identity))
                sent = window.total(now) if window is not None else 0
                if sent >= limit:
                    retry = window.seconds_until_below(limit, now) if window is not None else 3600
                    text = render_text(self.config, decision, Action.THROTTLE, now)
                    return Answer(Action.DEFER, 450, "4.7.1", text, identities, decision.rule, retry)
            return Answer(Action.THROTTLE, None, None, "", identities, top.rule, None)
        code, status = _CODES[top.action]
        until = top.until.timestamp() if top.until is not None else None
        retry_after = max(1, math.ceil(until - now)) if until is not None else None
        return Answer(top.action, code, status, render_text(self.config, top, top.action, now), identities,
                      top.rule, retry_after)

    def _count(self, attrs: Mapping[str, str], instance: str, counted: bool,
               identities: tuple[Identity, ...], found: list[tuple[int, Decision]], now: float) -> None:
        state = (attrs.get("protocol_state") or "").upper()
        recipient = attrs.get("recipient") or ""
        if state == "RCPT":
            messages, recipients = (0 if counted else 1), 1
        elif state in _MESSAGE_STATES and not counted:
            messages, recipients = 1, max(1, _int(attrs.get("recipient_count")))
        else:
            return
        if instance:
            self._instances.add(instance)
        if messages:
            for _, decision in found:
                if decision.action is Action.THROTTLE:
                    key = key_of(decision.identity)
                    window = self._windows.get(key)
                    if window is None:
                        window = self._windows[key] = HourWindow()
                    window.add(now)
        send = Send(identities, messages, recipients, (recipient,) if recipient else (),
                    attrs.get("sender") or "", datetime.fromtimestamp(now, UTC))
        try:
            self.sink.record(send)
        except Exception:  # noqa: BLE001 -- a failing sink must not change the answer
            self._stats.sink_errors += 1
            self._log_failure("sink", "recording a send failed; the answer is unchanged")

    def _log_failure(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last_logged.get(kind, -math.inf) >= _LOG_EVERY:
            self._last_logged[kind] = now
            log.exception("%s (failures so far: %d)", message,
                          self._stats.failed_open if kind == "answer" else self._stats.sink_errors)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
