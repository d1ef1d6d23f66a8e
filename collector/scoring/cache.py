"""A small in-process cache for the scoring views that are costly to compute and read often: a unit's
explanation for a finished day (seconds on a large unit) and a year's ranking (the public page serves it
to anyone).

An entry is used while it is younger than its time-to-live *and* its key still matches. Callers put in
the key whatever people change and expect to see at once (a decided appeal, an adjustment, a newly
frozen month), read cheaply from the database, so one process never serves a ranking older than a
change made through another process; the time-to-live bounds what no key can see cheaply (late agent
data about a finished day, a renamed unit). Each server process has its own cache: nothing here is
shared, so nothing here can leak between viewers — callers check the viewer's scope before the lookup
and key on what was checked.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlmodel import Session

T = TypeVar("T")


def database_of(session: Session) -> str:
    """Which database a session reads: part of every key, so a process that opens several databases
    (the tests do) never serves one database's entry from another."""
    return session.get_bind().engine.url.render_as_string(hide_password=True)


class TimedCache(Generic[T]):
    """Least-recently-used entries, each valid for ``ttl_s`` seconds after it was computed."""

    def __init__(self, *, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        now = self._clock()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and now - found[0] < self.ttl_s:
                self._entries.move_to_end(key)
                self.hits += 1
                return found[1]
            self.misses += 1
        # Computed outside the lock: a slow computation must not hold up other keys. Two requests for the
        # same missing key may both compute; the later one's result is kept, both are correct.
        value = compute()
        with self._lock:
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
