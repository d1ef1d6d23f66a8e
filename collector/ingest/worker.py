"""Ingest worker threads: batches are handed over through a queue and answered in groups.

Validating and storing a batch is CPU work under one GIL. Handing each request to a thread pool and
back costs two thread switches and an event-loop wake-up per batch, which cost about a third of the
throughput in bench/ingest.py. A worker here takes every batch already queued, works through them,
and wakes the event loop once for all their answers, so under load the hand-off is amortised and
the event loop itself never blocks on the database.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

MAX_DRAIN = 64  # answers are returned at least this often, so no request waits behind a long queue

_STOP = object()


class IngestWorkers:
    def __init__(self, *, threads: int, name: str = "khien-ingest") -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    async def submit(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on a worker thread and return (or raise) its outcome."""
        if self._closed:
            raise RuntimeError("ingest workers are stopped")
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
            for job in jobs:
                if job is _STOP:
                    continue
                loop, future, func, args = job
                try:
                    outcome = (future, True, func(*args))
                except Exception as exc:  # noqa: BLE001 - handed to the awaiting request, which reports it
                    outcome = (future, False, exc)
                done.setdefault(loop, []).append(outcome)
            for loop, outcomes in done.items():
                try:
                    loop.call_soon_threadsafe(_resolve, outcomes)
                except RuntimeError:  # the loop has closed: nobody is waiting any more
                    log.warning("dropping %d ingest answers: event loop closed", len(outcomes))
            if stop:
                return


def _resolve(outcomes: list[tuple[asyncio.Future, bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
