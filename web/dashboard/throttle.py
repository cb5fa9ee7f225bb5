"""Slowing down password guessing: failed logins counted per user name and per client address.

After ``max_failures`` failures within ``lockout_seconds`` for one name, or from one address, the
login form refuses that name (or address) for ``lockout_seconds``, without checking the password.
The counters are in the memory of the web process: each worker counts on its own, and a restart
forgets them. That is enough to turn an online guessing attack from thousands of tries a minute
into a few per lockout period; a reverse proxy's rate limit can add a shared one.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["LoginThrottle"]

# At most this many names and addresses are remembered; the oldest are forgotten first, so that
# a flood of made-up names cannot grow the process without bound.
MAX_KEYS = 10_000


@dataclass
class _Failures:
    count: int
    first_at: float
    locked_until: float = 0.0


class LoginThrottle:
    """Failure counters with a lockout; safe to share between the threads of a web worker."""

    def __init__(self, max_failures: int, lockout_seconds: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def wait_seconds(self, keys: Iterable[str]) -> int:
        """Seconds until any of ``keys`` (a name, an address) may try again; 0 when none is locked."""
        now = self.clock()
        with self._lock:
            left = [entry.locked_until - now for key in keys
                    if (entry := self._failures.get(key)) is not None and entry.locked_until > now]
        return int(max(left) + 0.999) if left else 0

    def failed(self, keys: Iterable[str]) -> None:
        """Count one failed login for each of ``keys``; lock the ones that reach the limit."""
        now = self.clock()
        with self._lock:
            for key in keys:
                entry = self._failures.pop(key, None)
                if entry is None or now - entry.first_at > self.lockout_seconds:
                    entry = _Failures(count=0, first_at=now)
                entry.count += 1
                if entry.count >= self.max_failures:
                    entry.locked_until = now + self.lockout_seconds
                    entry.count, entry.first_at = 0, now
                self._failures[key] = entry  # most recent last
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key`` (the user name that just logged in)."""
        with self._lock:
            self._failures.pop(key, None)
