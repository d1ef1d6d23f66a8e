"""The bytes of agent batch bodies one process holds at once: being read, queued, or worked on.

A body is read before its credential is checked (the check is a database read, done by the ingest
threads for a group of batches at a time), so without a bound anyone who can open connections could
make the process hold ``max_batch_bytes`` per connection until memory runs out. Over the bound a
batch is refused with 503 and Retry-After (errors.Overloaded): the agent keeps it in its spool and
sends it again, nothing is lost. Used from the event loop only, so a plain counter is enough.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from collector.errors import Overloaded
from collector.ingest.worker import RETRY_AFTER_S


class BodyBudget:
    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.held = 0
        self.refused = 0

    @contextmanager
    def hold(self) -> Iterator[Callable[[int], None]]:
        """A ``take(n)`` for one request's body as it is read; all it took is given back on exit.

        A request alone is never refused (its own cap, ``max_batch_bytes``, bounds it), so a budget
        set below one batch slows a server down instead of locking every agent out.
        """
        taken = 0

        def take(n: int) -> None:
            nonlocal taken
            others = self.held - taken
            if others > 0 and self.held + n > self.limit_bytes:
                self.refused += 1
                spread = random.randint(*RETRY_AFTER_S)  # noqa: S311 - spreading retries, not a secret
                raise Overloaded(f"server busy: {self.held} bytes of batches held", retry_after=spread)
            self.held += n
            taken += n

        try:
            yield take
        finally:
            self.held -= taken
