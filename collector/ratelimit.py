"""Per-agent token buckets: an agent over its rate gets 429 with Retry-After instead of a slow server."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from collector.errors import RateLimited

MAX_TRACKED = 100_000  # bounded memory: the least recently seen agents are forgotten first


class RateLimiter:
    def __init__(self, *, rate_per_s: float, burst: int, clock=time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate_per_s, burst, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one token for ``key`` or raise RateLimited with the seconds until the next one."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                raise RateLimited("agent is sending too fast", retry_after=math.ceil((1 - tokens) / self.rate))
            self._buckets[key] = (tokens - 1, now)
            while len(self._buckets) > MAX_TRACKED:
                self._buckets.popitem(last=False)
