"""Login throttling per source address, on top of each account's lockout.

The lockout stops guessing one account's password; this stops one address guessing many accounts
(or many second-factor codes). Only failures count: a busy office behind one NAT address that
logs in correctly is never slowed down. Kept in memory: a restart forgets it, which is acceptable
for a limit measured in minutes.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque

from collector.errors import RateLimited

MAX_FAILURES = 20
WINDOW_S = 15 * 60
MAX_TRACKED = 100_000  # bounded memory: the least recently failing addresses are forgotten first


class LoginThrottle:
    def __init__(self, *, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S,
                 clock=time.monotonic) -> None:
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, address: str | None) -> None:
        """RateLimited (with the seconds until the oldest failure ages out) if ``address`` is over the limit."""
        now = self.clock()
        with self._lock:
            times = self._recent(address or "", now)
            if len(times) >= self.max_failures:
                wait = times[0] + self.window_s - now
                raise RateLimited("too many failed logins from this address", retry_after=max(1, math.ceil(wait)))

    def failed(self, address: str | None) -> None:
        """Count one failed attempt (wrong password, wrong code, locked account) from ``address``."""
        now = self.clock()
        with self._lock:
            key = address or ""
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times
            self._failures.move_to_end(key)
            while len(self._failures) > MAX_TRACKED:
                self._failures.popitem(last=False)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times
