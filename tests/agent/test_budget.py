"""The resource budget: measures, pauses the heaviest module when over, reports, never kills."""

from __future__ import annotations

import time
from types import SimpleNamespace

import psutil

from agent.budget import BudgetLimits, ResourceBudget
from agent.collectors.base import Collector, ListSink
from agent.heartbeat import HeartbeatCollector
from agent.wire import Item
from collector.ingest.schema import BudgetHealth


class FakeProcess:
    """Stands in for psutil.Process so CPU seconds and RSS can be scripted."""

    def __init__(self) -> None:
        self.cpu, self.rss = 0.0, 20 * 1000 * 1000

    def oneshot(self):
        import contextlib

        return contextlib.nullcontext()

    def cpu_times(self):
        return SimpleNamespace(user=self.cpu, system=0.0)

    def memory_info(self):
        return SimpleNamespace(rss=self.rss)


class Busy(Collector):
    def __init__(self, name: str, pausable: bool = True) -> None:
        super().__init__()
        self.name = name
        self.pausable = pausable

    def collect(self):
        yield Item("agent.error", {"collector": self.name, "error": "x", "count": 1})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cpu_over_budget_pauses_the_heaviest_module_with_growing_pauses():
    proc, clock = FakeProcess(), Clock()
    budget = ResourceBudget(BudgetLimits(max_cpu_percent=5, window_s=60, pause_s=300), process=proc, clock=clock)
    light, heavy, beat = Busy("light"), Busy("heavy"), Busy("heartbeat", pausable=False)
    modules = [light, heavy, beat]
    assert budget.check(modules) is None
    victims = []
    for _ in range(11):  # a minute at 10 % CPU, mostly spent in "heavy" (and in the unpausable heartbeat)
        clock.now += 5
        proc.cpu += 0.5
        heavy.stats.total_ms += 400
        beat.stats.total_ms += 600
        light.stats.total_ms += 10
        victims.append(budget.check(modules))
    # Quiet until a full window has been seen, then the heaviest pausable module goes first.
    assert victims[:-1] == [None] * 10 and victims[-1] == "heavy" and budget.overruns == 1
    assert heavy.paused_until == clock.now + 300 and "cpu 10.0% > 5%" in heavy.pause_reason
    report = BudgetHealth.model_validate(budget.to_dict(modules))
    assert report.over and report.paused == ["heavy"]
    for _ in range(61):  # checked every 5 s through the pause, at a calm 1 % CPU
        clock.now += 5
        proc.cpu += 0.05
        assert budget.check(modules) is None
    victims = []  # the pause is over; the same offence again doubles the pause
    for _ in range(12):
        clock.now += 5
        proc.cpu += 0.5
        heavy.stats.total_ms += 400
        victims.append(budget.check(modules))
    assert "heavy" in victims and heavy.paused_until > clock.now + 500  # 600 s from when it was paused


def test_memory_over_budget_is_reported_and_cpu_under_budget_is_quiet():
    proc, clock = FakeProcess(), Clock()
    budget = ResourceBudget(BudgetLimits(max_rss_bytes=30 * 1000 * 1000), process=proc, clock=clock)
    module = Busy("fim")
    budget.check([module])
    clock.now += 5
    proc.cpu += 0.01
    assert budget.check([module]) is None
    proc.rss = 80 * 1000 * 1000
    clock.now += 5
    assert budget.check([module]) == "fim" and "rss" in module.pause_reason


def test_a_paused_module_does_not_run_and_says_why():
    module = Busy("fim")
    module.pause(60, "over budget: cpu 9% > 5%")
    sink = ListSink()
    stats = module.run(sink)
    assert sink.items == [] and stats.status == "paused" and "cpu 9%" in stats.last_error
    module.paused_until = time.monotonic() - 1
    assert module.run(sink).status == "ok" and len(sink.items) == 1
    module.disabled_reason = "needs root"
    assert module.run(sink).status == "disabled" and module.stats.last_error == "needs root"


def test_real_process_budget_feeds_the_heartbeat():
    budget = ResourceBudget(BudgetLimits(), process=psutil.Process())
    module = Busy("m")
    budget.check([module])
    beat = HeartbeatCollector(lambda: {}, lambda: [module], budget=lambda: budget.to_dict([module]))
    data = next(iter(beat.collect())).data
    assert data["budget"]["rss_bytes"] > 0 and data["budget"]["max_cpu_percent"] == 5.0


def test_module_counters_reach_the_heartbeat_flattened_and_valid():
    from collector.ingest.schema import Heartbeat

    module = Busy("authlog")
    module.counters = {"recognised": 12, "ignored": {"unknown_sshd": 3, "garbage": 1}, "status": "following"}
    beat = HeartbeatCollector(lambda: {}, lambda: [module])
    data = next(iter(beat.collect())).data
    assert data["collectors"]["authlog"]["counters"] == {"recognised": 12, "ignored.unknown_sshd": 3,
                                                         "ignored.garbage": 1}
    Heartbeat.model_validate(data)
