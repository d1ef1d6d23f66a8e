"""IngestWorkers: every submission gets its own result or exception, whatever the grouping."""

from __future__ import annotations

import asyncio
import threading

import pytest

from collector.ingest.worker import IngestWorkers


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
