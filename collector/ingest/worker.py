"""Ingest worker threads: batches are handed over through a queue and answered in groups.

Validating and storing a batch is CPU work under one GIL. Handing each request to a thread pool and
back costs two thread switches and an event-loop wake-up per batch, which cost about a third of the
throughput in bench/ingest.py. A worker here takes every batch already queued, works through them,
and wakes the event loop once for all their answers, so under load the hand-off is amortised and
the event loop itself never blocks on the database. A function with a ``many`` attribute (a list of
argument tuples in, a list of results or exceptions out) gets the queued calls to it together: the
batches then share one transaction (pipeline.receive_batches).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
from collections.abc import Callable
from typing import Any

from collector.errors import Overloaded

log = logging.getLogger(__name__)

MAX_DRAIN = 32  # answers are returned at least this often, so no request waits behind a long queue
# Retry-After of a refused batch, drawn at random so refused agents do not all come back at once.
RETRY_AFTER_S = (10, 40)

_STOP = object()


class IngestWorkers:
    def __init__(self, *, threads: int, max_queue: int = 256, name: str = "khien-ingest") -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.max_queue = max_queue
        self.refused = 0
        self._closed = False
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    async def submit(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on a worker thread and return (or raise) its outcome."""
        if self._closed:
            raise RuntimeError("ingest workers are stopped")
        if self._queue.qsize() >= self.max_queue:
            # Past this the queue only grows: answers would come after the agents' timeouts, for
            # work they then send again. Refused at once, the batch stays in the agent's spool.
            self.refused += 1
            spread = random.randint(*RETRY_AFTER_S)  # noqa: S311 - spreading retries, not a secret
            raise Overloaded(f"server busy: {self.max_queue} batches waiting", retry_after=spread)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((loop, future, func, args))
        return await future

    def close(self) -> None:
        """Finish what is queued, then stop the threads; later submissions fail at once."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            jobs = [self._queue.get()]
            # Each thread takes exactly one stop marker, so close() stops every thread.
            while jobs[-1] is not _STOP and len(jobs) < MAX_DRAIN:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = jobs[-1] is _STOP
            done: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, bool, Any]]] = {}
            for group in _groups([job for job in jobs if job is not _STOP]):
                for (loop, future, _func, _args), (ok, value) in zip(group, _work(group), strict=True):
                    done.setdefault(loop, []).append((future, ok, value))
            for loop, outcomes in done.items():
                try:
                    loop.call_soon_threadsafe(_resolve, outcomes)
                except RuntimeError:  # the loop has closed: nobody is waiting any more
                    log.warning("dropping %d ingest answers: event loop closed", len(outcomes))
            if stop:
                return


def _groups(jobs: list[tuple]) -> list[list[tuple]]:
    """Runs of consecutive jobs for one function that has a ``many`` form (worked on together), else
    single jobs."""
    groups: list[list[tuple]] = []
    for job in jobs:
        func = job[2]
        if groups and groups[-1][0][2] is func and hasattr(func, "many"):
            groups[-1].append(job)
        else:
            groups.append([job])
    return groups


def _work(group: list[tuple]) -> list[tuple[bool, Any]]:
    """(ok, result or exception) for each job: ``func.many`` over the group's arguments, else ``func``."""
    func = group[0][2]
    try:
        if len(group) > 1:
            return [(not isinstance(answer, Exception), answer) for answer in func.many([job[3] for job in group])]
        return [(True, func(*group[0][3]))]
    except Exception as exc:  # noqa: BLE001 - handed to the awaiting requests, which report it
        return [(False, exc)] * len(group)


def _resolve(outcomes: list[tuple[asyncio.Future, bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
