"""The scoring views' in-process cache: entries expire, the least recently used go first."""

from __future__ import annotations

import pytest

from collector.scoring.cache import TimedCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_reused_until_its_time_to_live_passes():
    clock, computed = Clock(), []
    cache: TimedCache[int] = TimedCache(ttl_s=60, max_entries=4, clock=clock)

    def compute() -> int:
        computed.append(clock.now)
        return len(computed)

    assert cache.get_or_compute("k", compute) == 1
    clock.now += 59
    assert cache.get_or_compute("k", compute) == 1 and cache.hits == 1
    clock.now += 1
    assert cache.get_or_compute("k", compute) == 2 and cache.misses == 2
    assert cache.get_or_compute("other", compute) == 3  # keys are apart


def test_the_least_recently_used_entry_is_dropped_first_and_errors_are_not_kept():
    cache: TimedCache[str] = TimedCache(ttl_s=60, max_entries=2, clock=Clock())
    cache.get_or_compute("a", lambda: "a1")
    cache.get_or_compute("b", lambda: "b1")
    cache.get_or_compute("a", lambda: "a2")  # a is used again: b is now the oldest
    cache.get_or_compute("c", lambda: "c1")
    assert cache.get_or_compute("a", lambda: "a3") == "a1"
    assert cache.get_or_compute("b", lambda: "b2") == "b2"

    def fail() -> str:
        raise LookupError("no snapshots")

    for _ in range(2):  # a failure is raised each time, never cached as a value
        with pytest.raises(LookupError):
            cache.get_or_compute("d", fail)
    cache.clear()
    assert cache.get_or_compute("a", lambda: "a4") == "a4"
