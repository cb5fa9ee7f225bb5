"""A policy node: one process's PolicyEngine, fed from the shared database and flushed to it.

DESIGN.md ("Scale"): every node counts sends in memory and upserts its deltas about once a second,
and refreshes its decision cache from the database about once a second; exactly one node (the
scheduler's lock, jobs/lock.py) evaluates the rules. ``PolicyNode`` runs the two loops of one node
in background threads, never on the lookup path:

- the **refresher** loads the decisions written since its last load (with an overlap, for
  transactions that commit after the time they stamped and for clocks of other nodes) into
  ``engine.decisions``, and every ``reload_seconds`` all of them (``replace_all``: a decision
  deleted in the database goes away too). A database that fails leaves the cached decisions in
  force: the error is logged (at most every 10 s) and counted.
- the **flusher** drains the engine's ``MemorySendSink``, turns the sends into minute-bucket
  ``BucketDelta``s (``SendCounter``) and adds them to the shared counters with
  ``storage.counters.apply_deltas`` in one transaction. When that fails the deltas are kept, merged
  per bucket, and sent with the next flush; beyond ``max_unflushed`` buckets the oldest are dropped
  with a counted warning. Draining the sink never waits for the database, so lookups never do.

``stop()`` ends both loops and flushes once more, so a node that stops cleanly loses no count.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from policy.cache import CustomerMap, DecisionCache
from policy.engine import MemorySendSink, PolicyEngine, Send
from policy.texts import PolicyConfig
from reputation import BucketDelta, DistinctSketch, Identity, IdentityKind
from reputation.counters import VOLUME_FIELDS
from reputation.sketch import address_hash
from storage.counters import apply_deltas
from storage.reputation import current_decisions, decisions_changed_since
from storage.tokens import live_tokens

if TYPE_CHECKING:
    from config import Settings

__all__ = ["REFRESH_OVERLAP", "NodeTimings", "PendingDeltas", "PolicyNode", "SendCounter", "build_engine",
           "customer_map"]

log = logging.getLogger(__name__)

# Decisions stamped up to this long before the last load are read again: the evaluation job stamps
# a decision with the time its run started and commits later, and other nodes' clocks drift.
REFRESH_OVERLAP = timedelta(seconds=60)
_LOG_EVERY = 10.0  # seconds between two logged errors of one loop: no log flood while the DB is down


@dataclass(frozen=True)
class NodeTimings:
    """How often the loops run and how much the flusher keeps while the database is away."""

    refresh_seconds: float = 1.0
    reload_seconds: float = 60.0
    flush_seconds: float = 1.0
    max_unflushed: int = 100_000


def customer_map(directory: Mapping[str, str]) -> dict[Identity, str]:
    """The account -> customer directory ([attribution].directory_csv) as the engine's CustomerMap.

    Attribution looks an account up as written and in lower case (attribution/core.py), so both go in.
    """
    found: dict[Identity, str] = {}
    for account, customer in directory.items():
        found[Identity(IdentityKind.ACCOUNT, account)] = customer
        found.setdefault(Identity(IdentityKind.ACCOUNT, account.lower()), customer)
    return found


class SendCounter:
    """Turns the engine's ``Send``s into minute-bucket ``BucketDelta``s, as ``CounterStore`` counts them.

    The same fields as ``reputation.CounterStore(track_deltas=True).drain_deltas()``: sends,
    recipients, freemail recipients (a recipient domain in the rules' ``[freemail]`` list) and a
    ``DistinctSketch`` of the recipient addresses, per identity and minute. Built here rather than
    through a CounterStore for two reasons: a ``Send`` with ``messages=0`` is more recipients of a
    message counted already (Postfix's later RCPT lookups of one ``instance``), which
    ``record_send`` (one message per call) cannot express; and a store keeps a week of buckets
    and counts everything twice (history and deltas), three times the work of this loop, which
    runs on the flusher thread beside the server's.
    """

    def __init__(self, freemail_domains: Iterable[str] = ()) -> None:
        self._freemail = frozenset(d.strip().lower() for d in freemail_domains)

    def deltas(self, sends: Iterable[Send]) -> list[BucketDelta]:
        """The deltas of ``sends`` (one per identity and minute)."""
        freemail = self._freemail
        # (kind, value, minute) -> [sends, recipients, freemail recipients, sketch or None, identity]
        buckets: dict[tuple[str, str, int], list[Any]] = {}
        # id(identity) -> (kind, value): the engine reuses its Identity objects, whose hash runs in Python.
        keys: dict[int, tuple[str, str]] = {}
        for send in sends:
            minute = int(send.at.timestamp()) // 60
            addresses = send.addresses if len(send.addresses) == send.recipients else ()
            hashes = [address_hash(a) for a in addresses]
            free = sum(1 for a in addresses if a.rpartition("@")[2].strip().strip(">").lower() in freemail)
            for identity in send.identities:
                key = keys.get(id(identity))
                if key is None:
                    key = keys[id(identity)] = (identity.kind.value, identity.value)
                bucket = buckets.get((*key, minute))
                if bucket is None:
                    bucket = buckets[(*key, minute)] = [0, 0, 0, None, identity]
                bucket[0] += send.messages
                bucket[1] += send.recipients
                bucket[2] += free
                if hashes:
                    sketch = bucket[3] = bucket[3] or DistinctSketch()
                    for value in hashes:
                        sketch.add_hash(value)
        found = []
        for (_, _, minute), (sent, recipients, free, sketch, identity) in buckets.items():
            counts = {name: n for name, n in zip(VOLUME_FIELDS, (sent, recipients, free), strict=True) if n}
            found.append(BucketDelta(identity, datetime.fromtimestamp(minute * 60, UTC), 60, counts,
                                     sketch.to_bytes() if sketch is not None else b""))
        return found


class PendingDeltas:
    """Deltas waiting for the database, merged per bucket and bounded (the oldest go first)."""

    def __init__(self, max_buckets: int) -> None:
        self._max = max_buckets
        self._buckets: dict[tuple[Identity, datetime, int], tuple[dict[str, int], bytes]] = {}
        self.dropped = 0  # buckets dropped because the database did not take them in time

    def __len__(self) -> int:
        return len(self._buckets)

    def add(self, deltas: Iterable[BucketDelta]) -> int:
        """Merge ``deltas`` in; returns how many old buckets were dropped to stay within the bound."""
        buckets = self._buckets
        for delta in deltas:
            key = (delta.identity, delta.start, delta.seconds)
            entry = buckets.get(key)
            if entry is None:
                buckets[key] = (dict(delta.counts), delta.distinct)
                continue
            counts, sketch = entry
            for name, value in delta.counts.items():
                counts[name] = counts.get(name, 0) + value
            if delta.distinct:
                if sketch:
                    merged = DistinctSketch.from_bytes(sketch)
                    merged.merge(DistinctSketch.from_bytes(delta.distinct))
                    sketch = merged.to_bytes()
                else:
                    sketch = delta.distinct
            buckets[key] = (counts, sketch)
        over = len(buckets) - self._max
        if over > 0:
            for key in sorted(buckets, key=lambda k: k[1])[:over]:
                del buckets[key]
            self.dropped += over
        return max(over, 0)

    def deltas(self) -> list[BucketDelta]:
        """Everything pending, as deltas (kept until ``clear``)."""
        return [BucketDelta(identity, start, seconds, counts, sketch)
                for (identity, start, seconds), (counts, sketch) in self._buckets.items()]

    def clear(self) -> None:
        """Forget what the database took."""
        self._buckets = {}


@dataclass
class _NodeStats:
    refreshes: int = 0
    full_reloads: int = 0
    refresh_errors: int = 0
    flushes: int = 0
    flush_errors: int = 0
    flushed_sends: int = 0
    flushed_buckets: int = 0


class PolicyNode:
    """One node's engine and its refresher and flusher threads (``start``/``stop``, or ``with``)."""

    def __init__(self, engine: PolicyEngine, database: Engine, sessions: sessionmaker[Session],
                 timings: NodeTimings | None = None, freemail_domains: Iterable[str] = (),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if not isinstance(engine.sink, MemorySendSink):
            raise TypeError("a PolicyNode drains a MemorySendSink; build the engine with one")
        self.engine = engine
        self.database = database
        self.sessions = sessions
        self.timings = timings or NodeTimings()
        self.stats = _NodeStats()
        self._sink: MemorySendSink = engine.sink
        self._counter = SendCounter(freemail_domains)
        self._pending = PendingDeltas(self.timings.max_unflushed)
        self._clock = clock
        self._loaded_at: datetime | None = None  # start of the last successful load
        self._full_at = -math.inf  # monotonic time of the last full load
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._flush_lock = threading.Lock()
        self._unflushed_sends = 0  # sends drained into deltas the database has not taken yet
        self._failing = False  # the last refresh failed
        self._last_logged: dict[str, float] = {}
        # The API tokens (SHA-256 -> (name, role)) as of the last refresh: the HTTP policy lookup
        # checks its caller here, so that it never waits on the database either.
        self.tokens: Mapping[str, tuple[str, str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, database: Engine,
                      sessions: sessionmaker[Session]) -> PolicyNode:
        """A node (not started) with the [policy] texts and timings, the rules' freemail list and the
        [attribution] account -> customer directory."""
        policy = settings.policy
        timings = NodeTimings(refresh_seconds=policy.refresh_seconds, reload_seconds=policy.reload_seconds,
                              flush_seconds=policy.flush_seconds, max_unflushed=policy.max_unflushed)
        return cls(build_engine(policy.config, settings.attribution.rules.directory), database, sessions,
                   timings, settings.reputation.rules.freemail_domains)

    # -- the loops ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the refresher (which loads the decisions at once) and the flusher; idempotent."""
        if self._threads:
            return
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._loop, args=(self.refresh, self.timings.refresh_seconds, True),
                             name="policy-refresher", daemon=True),
            threading.Thread(target=self._loop, args=(self.flush, self.timings.flush_seconds, False),
                             name="policy-flusher", daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop both loops, then flush what is still counted (once; the database may be gone)."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        self.flush()

    def __enter__(self) -> PolicyNode:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def _loop(self, step: Callable[[], object], interval: float, at_once: bool) -> None:
        if at_once:
            self._step(step)
        while not self._stopping.wait(interval):
            self._step(step)

    def _step(self, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception:  # noqa: BLE001 -- a bug must not end the loop; lookups go on regardless
            self._log_failure("bug", f"policy: {getattr(step, '__name__', step)} failed")

    # -- one refresh, one flush ---------------------------------------------------------------

    def refresh(self) -> bool:
        """Load the decisions changed since the last load (all of them when due); False on a DB error."""
        started, started_mono = self._clock(), time.monotonic()
        full = self._loaded_at is None or started_mono - self._full_at >= self.timings.reload_seconds
        try:
            with self._read_session() as session:
                if full:
                    decisions = current_decisions(session)
                else:
                    assert self._loaded_at is not None
                    decisions = decisions_changed_since(session, self._loaded_at - REFRESH_OVERLAP)
                tokens = live_tokens(session)
        except Exception:  # noqa: BLE001 -- keep serving the cached decisions whatever went wrong
            self.stats.refresh_errors += 1
            self._failing = True
            self._log_failure("refresh", "policy: loading decisions failed; the cached ones stay in force")
            return False
        self.tokens = tokens  # one reference swap, like the decision table
        cache = self.engine.decisions
        if self._loaded_at is None or self._failing:
            log.info("policy: %d decisions loaded from the database%s", len(decisions),
                     " (it answers again)" if self._failing else "")
            self._failing = False
        if full:
            cache.replace_all(decisions)  # one reference swap: a lookup sees the old or the new table
            self._full_at = started_mono
            self.stats.full_reloads += 1
        else:
            for decision in decisions:
                cache.update(decision)
        self._loaded_at = started
        self.stats.refreshes += 1
        return True

    def flush(self) -> int:
        """Drain the sink and add what it counted to the shared counters; returns buckets written."""
        with self._flush_lock:  # stop() flushes from another thread than the loop's
            sends = self._sink.drain()
            if sends:
                dropped = self._pending.add(self._counter.deltas(sends))
                if dropped:
                    log.warning("policy: the database has not taken the counted sends for a while; dropped "
                                "the %d oldest counter buckets (%d so far)", dropped, self._pending.dropped)
            if not len(self._pending):
                return 0
            deltas = self._pending.deltas()
            try:
                with self.sessions() as session:
                    written = apply_deltas(session, deltas)
                    session.commit()
            except Exception:  # noqa: BLE001 -- keep the deltas for the next flush
                self.stats.flush_errors += 1
                self._log_failure("flush", f"policy: flushing {len(deltas)} counter buckets failed; "
                                           "kept for the next flush")
                self._unflushed_sends += len(sends)
                return 0
            self._pending.clear()
            self.stats.flushes += 1
            self.stats.flushed_buckets += written
            self.stats.flushed_sends += len(sends) + self._unflushed_sends
            self._unflushed_sends = 0
            return written

    def metrics(self) -> dict[str, int]:
        """The engine's counters and the node's: refreshes, flushes, errors, pending and dropped buckets."""
        stats = self.stats
        return {**self.engine.metrics(), "refreshes": stats.refreshes, "full_reloads": stats.full_reloads,
                "refresh_errors": stats.refresh_errors, "flushes": stats.flushes,
                "flush_errors": stats.flush_errors, "flushed_sends": stats.flushed_sends,
                "flushed_buckets": stats.flushed_buckets, "unflushed_buckets": len(self._pending),
                "dropped_buckets": self._pending.dropped, "dropped_sends": self._sink.dropped}

    @contextmanager
    def _read_session(self) -> Iterator[Session]:
        # DEFERRED on SQLite: the engine's BEGIN IMMEDIATE would take the write lock once a second.
        session = self.sessions(bind=self.database.execution_options(sqlite_begin="DEFERRED"))
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def _log_failure(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last_logged.get(kind, -math.inf) >= _LOG_EVERY:
            self._last_logged[kind] = now
            failures = {"refresh": self.stats.refresh_errors, "flush": self.stats.flush_errors}.get(kind)
            log.warning("%s%s", message, f" ({failures} failures so far)" if failures else "", exc_info=True)


def build_engine(config: PolicyConfig, directory: Mapping[str, str] | None = None) -> PolicyEngine:
    """A PolicyEngine with an empty decision cache, a MemorySendSink and the customer directory."""
    return PolicyEngine(DecisionCache(), MemorySendSink(), config, CustomerMap(customer_map(directory or {})))
