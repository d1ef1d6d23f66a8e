"""Scheduler: collectors isolated from each other, no overlapping runs, sends triggered, clean stop."""

from __future__ import annotations

import threading
import time

from agent.collectors.base import Collector, ListSink
from agent.scheduler import AgentScheduler
from agent.wire import Item


class Counting(Collector):
    name = "counting"

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()

    def collect(self):
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        yield Item("agent.error", {"collector": self.name, "error": "tick"})


class Broken(Collector):
    name = "broken"

    def collect(self):
        raise RuntimeError("boom")


class ExplodingSink:
    def emit(self, item: Item) -> None:
        raise OSError("disk full")


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_broken_collector_does_not_stop_the_others() -> None:
    good, broken, doomed = Counting(), Broken(), Counting()
    doomed.name = "doomed"
    scheduler = AgentScheduler(lambda: None, send_interval_s=60)
    scheduler.add_collector(good, 0.1, ListSink())
    scheduler.add_collector(broken, 0.1, ListSink())
    scheduler.add_collector(doomed, 0.1, ExplodingSink())  # raises outside the collector's own guard
    scheduler.start()
    try:
        assert wait_for(lambda: good.stats.runs >= 4 and broken.stats.runs >= 4
                        and scheduler.job_errors.get("doomed", 0) >= 2)
    finally:
        scheduler.shutdown()
    assert good.stats.errors == 0 and good.stats.status == "ok"
    assert broken.stats.errors == broken.stats.runs and broken.stats.status == "error"


def test_runs_never_overlap_and_late_runs_coalesce() -> None:
    slow = Counting(delay=0.3)
    scheduler = AgentScheduler(lambda: None, send_interval_s=60)
    scheduler.add_collector(slow, 0.05, ListSink())
    scheduler.start()
    time.sleep(1.0)
    scheduler.shutdown()
    assert slow.max_running == 1
    assert 2 <= slow.stats.runs <= 5  # about 1 s / 0.3 s, not 1 s / 0.05 s


def test_emitting_triggers_a_send_at_once() -> None:
    sent = threading.Event()
    scheduler = AgentScheduler(sent.set, send_interval_s=5)  # the default: the first tick is 5 s away
    scheduler.add_collector(Counting(), 3600, ListSink())
    scheduler.start()
    try:
        assert sent.wait(3), "the sender did not run after the collector emitted"
    finally:
        scheduler.shutdown()


def test_at_a_long_send_interval_new_items_wait_for_the_tick() -> None:
    """A large fleet's agents send every minute or so (KHIEN_AGENT_SEND_S): what a module emits goes
    with the next tick instead of costing the server a request of its own."""
    sends: list[float] = []
    counting = Counting()
    scheduler = AgentScheduler(lambda: sends.append(time.monotonic()), send_interval_s=1.5)
    scheduler.send_on_emit = False  # as for an interval above SEND_AT_ONCE_MAX_S, without waiting that long
    scheduler.add_collector(counting, 0.2, ListSink())
    started = time.monotonic()
    scheduler.start()
    try:
        assert wait_for(lambda: len(sends) >= 2, timeout=6)
    finally:
        scheduler.shutdown()
    assert counting.stats.runs >= 6  # it emitted every 0.2 s ...
    assert sends[0] - started >= 1.4  # ... and nothing went before the first tick
    assert AgentScheduler(lambda: None, send_interval_s=60).send_on_emit is False
    assert AgentScheduler(lambda: None, send_interval_s=5).send_on_emit is True


def test_sender_errors_are_counted_and_it_keeps_ticking() -> None:
    calls: list[float] = []

    def flaky_send() -> None:
        calls.append(time.monotonic())
        raise ConnectionError("nope")

    scheduler = AgentScheduler(flaky_send, send_interval_s=0.1)
    scheduler.start()
    try:
        assert wait_for(lambda: len(calls) >= 3)
    finally:
        scheduler.shutdown()
    assert scheduler.job_errors["sender"] >= 3


def test_shutdown_waits_for_the_send_in_flight() -> None:
    started, finished = threading.Event(), threading.Event()

    def slow_send() -> None:
        started.set()
        time.sleep(0.5)
        finished.set()

    scheduler = AgentScheduler(slow_send, send_interval_s=0.05)
    scheduler.start()
    assert started.wait(3)
    scheduler.shutdown(wait=True)
    assert finished.is_set()
