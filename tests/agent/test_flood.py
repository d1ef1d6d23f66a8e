"""Flood control: per-module and overall limits, drops counted by reason, counters flushed in bulk."""

from __future__ import annotations

from agent.collectors.base import ListSink
from agent.flood import FloodGate, FloodLimits, TokenBucket
from agent.spool import Spool
from agent.wire import Item


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_its_rate():
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.now = 0.5  # 5 more tokens
    assert sum(bucket.take() for _ in range(10)) == 5


def test_a_flooding_module_is_cut_and_counted_without_starving_the_others(tmp_path):
    clock = Clock()
    spool = Spool(tmp_path / "spool.db")
    out = ListSink()
    gate = FloodGate(out, limits=FloodLimits(overall_rate=100, overall_burst=150, module_rate=50, module_burst=100),
                     count_drop=spool.count_drop, clock=clock)
    auth, fim = gate.for_module("authlog"), gate.for_module("fim")
    for i in range(10_000):  # a brute-force storm in one instant
        auth.emit(Item("auth.failure", {"n": i}))
    for i in range(40):
        fim.emit(Item("file.change", {"n": i}))
    gate.flush()
    kinds = [i.type for i in out.items]
    assert kinds.count("auth.failure") == 100 and kinds.count("file.change") == 40
    dropped = spool.stats()["dropped"]
    assert dropped == {"rate_limited:authlog": 9_900}
    # Beyond the overall budget, even a quiet module is held back, and that is counted separately.
    for i in range(100):
        fim.emit(Item("file.change", {"n": i}))
    gate.flush()
    # Overall had 10 tokens left: 10 pass, 50 more fit fim's own bucket but not the overall one,
    # and the last 40 exceed fim's bucket too.
    dropped = spool.stats()["dropped"]
    assert dropped["rate_limited:overall"] == 50 and dropped["rate_limited:fim"] == 40
    clock.now = 10.0  # budgets refill
    auth.emit(Item("auth.failure", {"n": -1}))
    assert out.items[-1].data == {"n": -1}


def test_drop_counts_are_written_at_most_once_a_second():
    clock = Clock()
    writes: list[tuple[str, int]] = []
    gate = FloodGate(ListSink(), limits=FloodLimits(module_rate=1, module_burst=1),
                     count_drop=lambda reason, n: writes.append((reason, n)), clock=clock)
    sink = gate.for_module("m")
    for _ in range(1000):
        sink.emit(Item("x.y", {}))
    assert writes == []
    clock.now = 1.5
    sink.emit(Item("x.y", {}))  # refilled: passes, and the pending drops are flushed
    assert writes == [("rate_limited:m", 999)]
