"""IngestWorkers: every submission gets its own result or exception, whatever the grouping."""

from __future__ import annotations

import asyncio
import threading

import pytest

from collector.errors import Overloaded
from collector.ingest.worker import RETRY_AFTER_S, IngestWorkers


def test_results_and_errors_reach_their_own_callers():
    workers = IngestWorkers(threads=1)
    names: set[str] = set()

    def work(n: int) -> int:
        names.add(threading.current_thread().name)
        if n % 7 == 0:
            raise ValueError(f"bad {n}")
        return n * n

    async def main() -> list:
        return await asyncio.gather(*(workers.submit(work, n) for n in range(1, 200)), return_exceptions=True)

    try:
        outcomes = asyncio.run(main())
    finally:
        workers.close()
    for n, outcome in enumerate(outcomes, start=1):
        if n % 7 == 0:
            assert isinstance(outcome, ValueError) and str(outcome) == f"bad {n}"
        else:
            assert outcome == n * n
    assert names == {"khien-ingest-0"}  # the event loop thread never ran the work


def test_close_stops_the_threads():
    workers = IngestWorkers(threads=3)
    workers.close()
    assert not any(t.is_alive() for t in workers._threads)
    with pytest.raises(RuntimeError, match="stopped"):
        asyncio.run(workers.submit(lambda: 1))


def test_a_full_queue_refuses_at_once_and_what_was_queued_still_completes():
    """Under overload a batch is refused in microseconds (503 + a random Retry-After) instead of waiting
    behind a queue longer than the agent's timeout; the batches already queued are all answered."""
    workers = IngestWorkers(threads=1, max_queue=3)
    release = threading.Event()
    started = threading.Event()

    def blocked() -> str:
        started.set()
        release.wait(10)
        return "first"

    async def main() -> list:
        first = asyncio.ensure_future(workers.submit(blocked))
        await asyncio.sleep(0)  # queued; wait until the thread has taken it off the queue
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        queued = [asyncio.ensure_future(workers.submit(lambda n=n: n)) for n in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as refused:
            await workers.submit(lambda: "never run")
        release.set()
        return [refused.value, await first, *[await q for q in queued]]

    try:
        refused, *answers = asyncio.run(main())
    finally:
        workers.close()
    assert answers == ["first", 0, 1, 2]
    assert RETRY_AFTER_S[0] <= refused.retry_after <= RETRY_AFTER_S[1] and workers.refused == 1


def queued_behind_a_busy_worker(func, args: list[int]) -> list:
    """Submit ``func(n)`` for each n while the one worker thread is busy, so all are queued together;
    returns their outcomes (results or exceptions) in order."""
    workers = IngestWorkers(threads=1)
    release, started = threading.Event(), threading.Event()

    def blocked() -> None:
        started.set()
        release.wait(10)

    async def main() -> list:
        first = asyncio.ensure_future(workers.submit(blocked))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        rest = [asyncio.ensure_future(workers.submit(func, n)) for n in args]
        await asyncio.sleep(0.05)  # all queued behind the blocked call
        release.set()
        await first
        return await asyncio.gather(*rest, return_exceptions=True)

    try:
        return asyncio.run(main())
    finally:
        workers.close()


def test_queued_calls_to_a_function_with_a_many_form_are_worked_on_together():
    """Batches queued while a worker was busy reach ``func.many`` together (one transaction for all in
    the pipeline); each caller still gets its own result or exception, in its own order."""
    groups: list[list[int]] = []

    def square(n: int) -> int:
        groups.append([n])
        return n * n

    def square_many(calls: list[tuple]) -> list:
        groups.append([n for (n,) in calls])
        return [ValueError(f"bad {n}") if n % 5 == 0 else n * n for (n,) in calls]

    square.many = square_many
    outcomes = queued_behind_a_busy_worker(square, list(range(1, 11)))
    for n, outcome in enumerate(outcomes, start=1):
        assert (str(outcome) == f"bad {n}") if n % 5 == 0 else outcome == n * n
    assert groups == [list(range(1, 11))]


def test_a_failing_many_form_fails_each_of_its_callers():
    def store(n: int) -> int:
        return n

    def store_many(calls: list[tuple]) -> list:
        raise RuntimeError("database went away")

    store.many = store_many
    outcomes = queued_behind_a_busy_worker(store, [0, 1, 2])
    assert len(outcomes) == 3 and all(isinstance(o, RuntimeError) for o in outcomes)
