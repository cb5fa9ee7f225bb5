"""Resident memory and per-record cost of reputation's counters for many identities with a week of history.

    python benchmarks/reputation_memory.py [--identities 1000000] [--active-hours 8] [--seed 1]

Workload (deterministic for a seed): every identity (an account) sent one message, to 1-3
recipients given as a count, in each of ``--active-hours`` random hours of the past week (the hour
resolution keeps 169 hours); 5 % of them also sent in the last hour, with addresses (2 recipients:
distinct-recipient sketches and top domains); 2 % had a bounce and 0.5 % a complaint in the last
day. Then it prints the resident set size (RSS, from /proc/self/statm) before and after, the bytes
per identity, the cost of a record, of a window read, of an evaluation with the shipped rules, and
of ``prune(now)`` over everything. The target of issue 4 is < 1 GiB for 1,000,000 identities.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reputation import CounterStore, Identity, IdentityKind, evaluate, load_rules  # noqa: E402

__all__ = ["main", "rss_bytes"]

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "example.org", "example.com", "web.de")


def rss_bytes() -> int:
    """The resident set size of this process now (Linux /proc)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def populate(store: CounterStore, identities: list[Identity], active_hours: int, seed: int) -> int:
    """Fill ``store`` with the workload of the module docstring; returns the number of records."""
    rng = random.Random(seed)
    week_start = NOW - timedelta(hours=168)
    records = 0
    for n, identity in enumerate(identities):
        for hour in sorted(rng.sample(range(168), active_hours)):
            at = week_start + timedelta(hours=hour, seconds=rng.randrange(3600))
            store.record_send(identity, rng.randint(1, 3), at)
            records += 1
        if n % 20 == 0:
            at = NOW - timedelta(seconds=rng.randrange(3600))
            addresses = [f"u{rng.getrandbits(32)}@{rng.choice(DOMAINS)}" for _ in range(2)]
            store.record_send(identity, addresses, at)
            records += 1
        if n % 50 == 0:
            store.record_bounce(identity, "list_quality", True, NOW - timedelta(hours=rng.randrange(24)))
            records += 1
        if n % 200 == 0:
            store.record_complaint(identity, NOW - timedelta(hours=rng.randrange(24)))
            records += 1
    return records


def record_cost(freemail: frozenset[str], addresses: int, n: int = 200_000) -> float:
    """Microseconds a ``record_send`` costs in a fresh store, events made beforehand."""
    rng = random.Random(2)
    store = CounterStore(freemail)
    who = [Identity(IdentityKind.SCRIPT, f"/home/u{i}/mail.php") for i in range(10_000)]
    events = [(rng.choice(who), [f"r{rng.getrandbits(32)}@{rng.choice(DOMAINS)}" for _ in range(addresses)]
               if addresses else rng.randint(1, 3), NOW + timedelta(seconds=i * 3600 / n)) for i in range(n)]
    started = time.perf_counter()
    for identity, recipients, at in events:
        store.record_send(identity, recipients, at)
    return (time.perf_counter() - started) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, default=1_000_000)
    parser.add_argument("--active-hours", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rules = load_rules(tomllib.loads((REPO / "config" / "rules.toml").read_text(encoding="utf-8")))
    identities = [Identity(IdentityKind.ACCOUNT, f"user{n}@customer{n % 5000}.example")
                  for n in range(args.identities)]
    before = rss_bytes()
    store = CounterStore(rules.freemail_domains)
    started = time.perf_counter()
    records = populate(store, identities, args.active_hours, args.seed)
    elapsed = time.perf_counter() - started
    after = rss_bytes()
    per_identity = (after - before) / args.identities
    print(f"identities {args.identities:,}, active hours each {args.active_hours}, records {records:,}")
    print(f"RSS before {before / 2**20:,.0f} MiB (interpreter + identity keys), "
          f"after {after / 2**20:,.0f} MiB; counters {per_identity:,.0f} bytes per identity")
    print(f"populating: {elapsed:.1f} s, {elapsed / records * 1e6:.2f} us a record (generator included)")
    print(f"record_send alone: {record_cost(rules.freemail_domains, 0):.2f} us with a count, "
          f"{record_cost(rules.freemail_domains, 2):.2f} us with 2 addresses")
    sample = identities[:: max(1, args.identities // 10_000)]
    started = time.perf_counter()
    for identity in sample:
        store.window_totals(identity, "24h", NOW)
    print(f"window_totals(24h): {(time.perf_counter() - started) / len(sample) * 1e6:.1f} us each")
    started = time.perf_counter()
    for identity in sample:
        evaluate(identity, store, NOW, rules=rules)
    print(f"evaluate (all {len(rules.rules)} shipped rules): "
          f"{(time.perf_counter() - started) / len(sample) * 1e6:.0f} us each")
    started = time.perf_counter()
    forgotten = store.prune(NOW + timedelta(hours=1))
    print(f"prune(now) over {args.identities:,} identities: {time.perf_counter() - started:.2f} s, "
          f"{forgotten:,} forgotten")
    total = rss_bytes()
    verdict = "under" if total < 2**30 else "OVER"
    print(f"total RSS {total / 2**20:,.0f} MiB: {verdict} the 1 GiB target")
    return 0 if total < 2**30 else 1


if __name__ == "__main__":
    sys.exit(main())
