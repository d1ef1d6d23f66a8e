"""Login throttling per source address, on top of each account's lockout.

The lockout stops guessing one account's password; this stops one address guessing many accounts
(or many second-factor codes). Only failures count: a busy office behind one NAT address that
logs in correctly is never slowed down.

``AuditLogThrottle`` (what the server uses) counts the failures the console already writes to the
audit log (``login_failed`` / ``login_locked`` with the source address and time), so every server
process behind the proxy sees the same count and the limit does not multiply with the processes.
``LoginThrottle`` keeps the count in one process's memory (a restart forgets it).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from datetime import datetime, timedelta

from sqlmodel import select

from collector.audit.models import AuditEntry
from collector.db import Database
from collector.errors import RateLimited
from collector.types import utcnow

MAX_FAILURES = 20
WINDOW_S = 15 * 60
MAX_TRACKED = 100_000  # bounded memory: the least recently failing addresses are forgotten first


class LoginThrottle:
    def __init__(self, *, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S,
                 clock=time.monotonic) -> None:
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, address: str | None) -> None:
        """RateLimited (with the seconds until the oldest failure ages out) if ``address`` is over the limit."""
        now = self.clock()
        with self._lock:
            times = self._recent(address or "", now)
            if len(times) >= self.max_failures:
                wait = times[0] + self.window_s - now
                raise RateLimited("too many failed logins from this address", retry_after=max(1, math.ceil(wait)))

    def failed(self, address: str | None) -> None:
        """Count one failed attempt (wrong password, wrong code, locked account) from ``address``."""
        now = self.clock()
        with self._lock:
            key = address or ""
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times
            self._failures.move_to_end(key)
            while len(self._failures) > MAX_TRACKED:
                self._failures.popitem(last=False)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times


FAILURES = ("login_failed", "login_locked")  # what the console's login steps audit for a refused attempt


class AuditLogThrottle:
    """The same limit, counted from the audit log: shared by every process on the database."""

    def __init__(self, *, db: Database, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S,
                 clock=utcnow) -> None:
        self.db, self.max_failures, self.window, self.clock = db, max_failures, timedelta(seconds=window_s), clock

    def check(self, address: str | None) -> None:
        """RateLimited (with the seconds until the failure that tips it ages out) if ``address`` is over the limit."""
        now = self.clock()
        # The max_failures-th newest failure in the window: while it is in the window, the address waits.
        source = AuditEntry.source_ip == address if address else AuditEntry.source_ip.is_(None)
        query = (select(AuditEntry.at).where(AuditEntry.at > now - self.window, AuditEntry.action.in_(FAILURES), source)
                 .order_by(AuditEntry.at.desc()).offset(self.max_failures - 1).limit(1))
        with self.db.session() as session:
            tipping: datetime | None = session.exec(query).first()
        if tipping is not None:
            wait = (tipping + self.window - now).total_seconds()
            raise RateLimited("too many failed logins from this address", retry_after=max(1, math.ceil(wait)))

    def failed(self, address: str | None) -> None:
        """Nothing to do: the login step that refused the attempt writes its audit entry, which is the count."""
