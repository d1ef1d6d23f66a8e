"""Runs the collectors on their intervals and the sender every few seconds (the only APScheduler import).

Each collector is its own job (``max_instances=1``, ``coalesce=True``): a slow inventory never delays
the heartbeat, a late run is not repeated, and a collector that raises is logged and counted while
the others keep running. At a send interval of at most ``SEND_AT_ONCE_MAX_S`` the sender also runs
right after any collector emitted; at a longer one (``KHIEN_AGENT_SEND_S``, chosen to spare a large
fleet's server requests) new items wait for the next tick.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from agent.collectors.base import Collector, Sink

log = logging.getLogger(__name__)

SENDER_JOB = "sender"
SEND_AT_ONCE_MAX_S = 5.0


class AgentScheduler:
    """Background jobs: one per collector plus the sender."""

    def __init__(self, send: Callable[[], object], *, send_interval_s: float = 5.0) -> None:
        self._send = send
        self.send_interval_s = send_interval_s
        self.send_on_emit = send_interval_s <= SEND_AT_ONCE_MAX_S
        self.job_errors: dict[str, int] = {}
        self._collectors: list[tuple[Collector, float, Sink]] = []
        self._tasks: list[tuple[str, Callable[[], object], float]] = []
        self._send_requested = threading.Event()
        self._sending = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None
        # APScheduler logs every run at INFO and harmless skips at WARNING; our jobs log for themselves.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)

    def add_collector(self, collector: Collector, interval_s: float, sink: Sink) -> None:
        """Run ``collector`` into ``sink`` every ``interval_s`` seconds, first right at start."""
        self._collectors.append((collector, interval_s, sink))

    def add_task(self, name: str, func: Callable[[], object], interval_s: float) -> None:
        """Run a housekeeping ``func`` (e.g. the resource budget) every ``interval_s`` seconds."""
        self._tasks.append((name, func, interval_s))

    def start(self) -> None:
        """Start the background thread; collectors run once immediately."""
        jobs = len(self._collectors) + len(self._tasks) + 1
        scheduler = BackgroundScheduler(timezone=UTC, executors={"default": ThreadPoolExecutor(jobs)},
                                        job_defaults={"max_instances": 1, "coalesce": True,
                                                      "misfire_grace_time": None})
        now = datetime.now(UTC)
        for collector, interval_s, sink in self._collectors:
            scheduler.add_job(self._run_collector, IntervalTrigger(seconds=interval_s, timezone=UTC),
                              args=(collector, sink), id=f"collector:{collector.name}",
                              name=collector.name, next_run_time=now)
        for name, func, interval_s in self._tasks:
            scheduler.add_job(self._run_task, IntervalTrigger(seconds=interval_s, timezone=UTC),
                              args=(name, func), id=f"task:{name}", name=name)
        scheduler.add_job(self._run_sender, IntervalTrigger(seconds=self.send_interval_s, timezone=UTC),
                          id=SENDER_JOB, name=SENDER_JOB)
        # Published before start(): a collector running at once may already call trigger_send().
        self._scheduler = scheduler
        scheduler.start()

    def trigger_send(self) -> None:
        """Ask for a send now; if one is running, it goes round once more instead."""
        self._send_requested.set()
        scheduler = self._scheduler
        if scheduler is not None and not self._sending.locked():
            # JobLookupError: shutting down, and the final status flush covers it.
            with contextlib.suppress(JobLookupError):
                scheduler.modify_job(SENDER_JOB, next_run_time=datetime.now(UTC))

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop scheduling; with ``wait`` let running jobs (an in-flight send) finish."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=wait)

    def _run_collector(self, collector: Collector, sink: Sink) -> None:
        try:
            before = collector.stats.items
            collector.run(sink)
            if self.send_on_emit and (collector.stats.items != before or collector.stats.status == "error"):
                self.trigger_send()
        except Exception:  # noqa: BLE001 -- the job boundary: a broken sink or collector costs one run, not the agent
            self._count_error(collector.name)

    def _run_task(self, name: str, func: Callable[[], object]) -> None:
        try:
            func()
        except Exception:  # noqa: BLE001 -- the job boundary, as for collectors
            self._count_error(name)

    def _run_sender(self) -> None:
        with self._sending:
            while True:
                self._send_requested.clear()
                try:
                    self._send()
                except Exception:  # noqa: BLE001 -- same boundary for the sender: log, count, next tick retries
                    self._count_error(SENDER_JOB)
                    return
                if not self._send_requested.is_set():
                    return

    def _count_error(self, name: str) -> None:
        self.job_errors[name] = self.job_errors.get(name, 0) + 1
        log.exception("job %s failed (%d failures so far)", name, self.job_errors[name])
