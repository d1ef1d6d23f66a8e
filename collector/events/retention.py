"""Event retention: remove events received before ``now - keep_days``, at least
``retention_policy.MIN_KEEP_DAYS`` (what the annual ranking's evidence needs; the scores themselves read
no events).

PostgreSQL (``events`` partitioned by month, migration 0019): whole months whose last instant is
before the cutoff are detached and dropped, one per transaction, never the current month nor DEFAULT;
so between ``keep_days`` and ``keep_days`` + one month is kept. Dropping a month costs the same for
ten rows or a billion and leaves no dead rows behind for VACUUM. The rows a month held are counted
when the planner puts it under ``EXACT_COUNT_BELOW`` rows, else reported from its estimate
(``pg_class.reltuples``), and the result says which.

SQLite (and a PostgreSQL ``events`` not partitioned): DELETE in batches of ``batch_size`` rows, each
its own short transaction with a pause between them, so ingest writes in between. The batches walk id
ranges below the first id received at the cutoff, found by binary search on the id index (about 30
lookups) because the server stamps ``received_at`` as it inserts, in id order; there is no index on
``received_at`` to pay for on every insert. A row that breaks that order (a clock stepped back, a row
written by hand) is never removed early — every DELETE also requires ``received_at < cutoff`` — but
late: once the rows stored before it have expired. Freed pages are reused by new events; no VACUUM,
which would lock the database for minutes.

Alerts and findings keep their rows when the events behind them are gone: an alert stores its
triggering event ids as a list, and its page says when those events are no longer stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, select, text
from sqlalchemy.exc import OperationalError

from collector.db import Database
from collector.errors import InvalidInput
from collector.events import partitions
from collector.events.models import Event
from collector.events.retention_policy import DEFAULT_KEEP_DAYS, check_keep_days

log = logging.getLogger(__name__)

BATCH_SIZE = 10_000  # rows per DELETE transaction on SQLite: ~0.2 s of holding the write lock (docs/retention.md)
PAUSE_S = 0.05  # between batches, so a waiting ingest thread gets the write lock
# A dropped month's rows are counted exactly below this many (a second or so of reading); above it the
# planner's estimate is reported as such: counting a billion rows to delete them would take minutes.
EXACT_COUNT_BELOW = 1_000_000


@dataclass(frozen=True, slots=True)
class Progress:
    """After each SQLite batch: rows removed so far, batches done, and how far the walk has come."""

    rows_removed: int
    batches: int
    next_id: int
    boundary_id: int


@dataclass(slots=True)
class RetentionResult:
    keep_days: int
    cutoff: datetime
    method: str  # "partitions" (PostgreSQL) or "batches"
    dry_run: bool
    rows_removed: int = 0  # with dry_run: rows that would be removed
    rows_exact: bool = True  # False when a dropped month's rows come from the planner's estimate
    batches: int = 0
    partitions_removed: list[str] = field(default_factory=list)
    # Months left in place because their lock was not granted within partitions.LOCK_TIMEOUT (a long
    # query on events); the next run takes them.
    partitions_deferred: list[str] = field(default_factory=list)
    maintenance: partitions.Maintenance | None = None

    def as_dict(self) -> dict[str, object]:
        return {"keep_days": self.keep_days, "cutoff": self.cutoff.isoformat(), "method": self.method,
                "dry_run": self.dry_run, "rows_removed": self.rows_removed, "rows_exact": self.rows_exact,
                "batches": self.batches, "partitions_removed": self.partitions_removed,
                "partitions_deferred": self.partitions_deferred,
                "maintenance": self.maintenance.as_dict() if self.maintenance else None}

    def summary(self) -> str:
        """One line for people: what was (or would be) removed, and the cutoff."""
        verb = "would remove" if self.dry_run else "removed"
        rows = f"{self.rows_removed} event{'' if self.rows_removed == 1 else 's'}"
        rows = rows if self.rows_exact else f"~{rows} (estimated)"
        if self.method == "partitions":
            names = f" ({', '.join(self.partitions_removed)})" if self.partitions_removed else ""
            where = f" in {len(self.partitions_removed)} monthly partitions{names}"
        else:
            where = "" if self.dry_run else f" in {self.batches} batches"
        deferred = f"; deferred (busy): {', '.join(self.partitions_deferred)}" if self.partitions_deferred else ""
        cutoff = self.cutoff.isoformat(timespec="seconds")
        return (f"event retention: {verb} {rows}{where}, received before {cutoff} "
                f"(keeping {self.keep_days} days){deferred}")


def cutoff_for(*, now: datetime, keep_days: int) -> datetime:
    """The instant before which events are removed; refuses a retention below the minimum."""
    if now.tzinfo is None:
        raise InvalidInput("retention needs an aware 'now' (UTC), not a naive datetime")
    return now - timedelta(days=check_keep_days(keep_days))


def run_retention(db: Database, *, now: datetime, keep_days: int = DEFAULT_KEEP_DAYS, dry_run: bool = False,
                  batch_size: int = BATCH_SIZE, pause_s: float = PAUSE_S,
                  progress: Callable[[Progress], None] | None = None) -> RetentionResult:
    """Remove (or with ``dry_run`` only count) the events received more than ``keep_days`` before ``now``."""
    cutoff = cutoff_for(now=now, keep_days=keep_days)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput(f"batch size must be a positive whole number, not {batch_size!r}")
    with db.engine.connect() as conn:
        partitioned = partitions.is_partitioned(conn)
    result = RetentionResult(keep_days=keep_days, cutoff=cutoff, dry_run=dry_run,
                             method="partitions" if partitioned else "batches")
    if partitioned:
        if not dry_run:  # months stranded in DEFAULT get their partition first, so they can be dropped too
            result.maintenance = partitions.maintain(db, now=now)
        _drop_months(db, result=result, now=now)
    else:
        _delete_in_batches(db, result=result, batch_size=batch_size, pause_s=pause_s, progress=progress)
    log.info("event retention: %s", result.as_dict())
    return result


# --- PostgreSQL: whole months --------------------------------------------------------------------------

def _drop_months(db: Database, *, result: RetentionResult, now: datetime) -> None:
    this_month = partitions.month_of(now)
    with db.engine.connect() as conn:
        expired = [p for p in partitions.list_(conn) if p.end <= result.cutoff and p.end <= this_month]
        if result.dry_run:
            for part in expired:
                _count_rows(conn, part, result)
                result.partitions_removed.append(part.name)
            _count_stranded(conn, result)
            return
    for part in expired:
        try:
            with db.engine.begin() as conn:
                conn.execute(text(f"SET LOCAL lock_timeout = '{partitions.LOCK_TIMEOUT}'"))
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": partitions.MAINTENANCE_LOCK})
                if part not in partitions.list_(conn):  # another server process dropped it meanwhile
                    continue
                rows, exact = _rows_of(conn, part)
                conn.execute(text(f"ALTER TABLE events DETACH PARTITION {part.qualified}"))
                conn.execute(text(f"DROP TABLE {part.qualified}"))
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != partitions.LOCK_NOT_AVAILABLE:
                raise
            result.partitions_deferred.extend(p.name for p in expired[expired.index(part):])
            log.warning("event retention: %s busy, left for the next run", part.name)
            return
        result.rows_removed += rows
        result.rows_exact &= exact
        result.partitions_removed.append(part.name)


def _count_rows(conn: Connection, part: partitions.Partition, result: RetentionResult) -> None:
    rows, exact = _rows_of(conn, part)
    result.rows_removed += rows
    result.rows_exact &= exact


def _count_stranded(conn: Connection, result: RetentionResult) -> None:
    """A dry run makes no partitions, so the expired months still in DEFAULT (which a real run first moves
    into their own partitions, then drops) are counted there."""
    months = conn.execute(text(
        f"SELECT date_trunc('month', received_at, 'UTC') AS month, count(*) FROM {partitions.default_qualified()} "
        "WHERE received_at < :before GROUP BY 1 ORDER BY 1"), {"before": partitions.month_of(result.cutoff)}).all()
    for month, rows in months:
        result.rows_removed += rows
        result.partitions_removed.append(partitions.for_month(month).name)


def _rows_of(conn: Connection, part: partitions.Partition) -> tuple[int, bool]:
    """(rows, exact): counted when the planner says the month is small (or does not know), else its estimate."""
    estimate = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"),
                            {"name": part.qualified}).scalar_one()
    if estimate is not None and estimate >= EXACT_COUNT_BELOW:
        return int(estimate), False
    return int(conn.execute(text(f"SELECT count(*) FROM {part.qualified}")).scalar_one()), True


# --- SQLite (and an unpartitioned table): batches by id range -------------------------------------------

def _delete_in_batches(db: Database, *, result: RetentionResult, batch_size: int, pause_s: float,
                       progress: Callable[[Progress], None] | None) -> None:
    ids = Event.__table__.c.id
    with db.engine.connect() as conn:
        low, high = conn.execute(select(func.min(ids), func.max(ids))).one()
        if low is None:
            return
        boundary = _first_id_received_since(conn, cutoff=result.cutoff, low=low, high=high)
        if result.dry_run:
            result.rows_removed = conn.execute(select(func.count()).select_from(Event.__table__)
                                               .where(*_expired(low, boundary, result.cutoff))).scalar_one()
            return
    start = low
    while start < boundary:
        with db.transaction() as session:
            conn = session.connection()
            # The id ``batch_size`` rows on: exactly one batch of rows, however sparse the ids are.
            end = conn.execute(select(ids).where(ids >= start).order_by(ids).offset(batch_size).limit(1)
                               ).scalar_one_or_none()
            end = boundary if end is None else min(end, boundary)
            result.rows_removed += conn.execute(delete(Event.__table__).where(*_expired(start, end, result.cutoff))
                                                ).rowcount
        result.batches += 1
        if progress is not None:
            progress(Progress(rows_removed=result.rows_removed, batches=result.batches, next_id=end,
                              boundary_id=boundary))
        start = end
        if start < boundary and pause_s > 0:
            time.sleep(pause_s)


def _expired(start: int, end: int, cutoff: datetime) -> tuple:
    table = Event.__table__.c
    return (table.id >= start, table.id < end, table.received_at < cutoff)


def _first_id_received_since(conn: Connection, *, cutoff: datetime, low: int, high: int) -> int:
    """The smallest id from which on every stored row was received at or after ``cutoff`` (``high`` + 1
    if none), by binary search: about 30 index lookups for any table size."""
    table = Event.__table__.c

    def received_since(at_id: int) -> bool:  # the first stored row at or after ``at_id`` is recent (or none)
        first = conn.execute(select(table.received_at).where(table.id >= at_id).order_by(table.id).limit(1)
                             ).scalar_one_or_none()
        return first is None or first >= cutoff

    lo, hi = low, high + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if received_since(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
