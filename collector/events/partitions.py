"""Monthly partitions of the events table on PostgreSQL: created ahead of need, and any month that fell
into the DEFAULT partition moved out into its own.

Since migration 0019 ``events`` is partitioned by RANGE on ``received_at``: the server's clock, never
the agent's, so an agent whose clock is off by hours or years (or that resends a week-old spool)
still writes into the current month, never into a dropped or far-future one. A month is one
partition ``event_partitions.events_YYYY_MM`` covering [first instant, first instant of the next
month) in UTC; ``event_partitions.events_default`` takes anything no month covers, so an insert never
fails. The partitions live in their own schema so the public one holds exactly the tables the
models declare (Alembic's schema comparison, ``\\dt``).

``create_ahead`` runs at start-up and daily: it makes this month and the next ``MONTHS_AHEAD``, and
moves rows stranded in DEFAULT (inserted while no month covered them) into their month's partition.
PostgreSQL would refuse to create a month while DEFAULT holds rows of it, so the rows are moved into
the new table before it is attached, in the same transaction. An advisory lock makes it safe to run
from several server processes at once; SQLite has no partitions and is left alone.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from collector.db import Database

log = logging.getLogger(__name__)

SCHEMA = "event_partitions"
DEFAULT_NAME = "events_default"
MONTHS_AHEAD = 2  # this month and the next two exist at any time: a missed daily run costs nothing
MAINTENANCE_LOCK = 0x6B6869656E19  # "khien" + 0x19 (migration 0019): serialises partition DDL
# Partition DDL needs a strong lock on ``events`` or its DEFAULT partition; queued behind a long
# query it would stall every ingest behind it, so it gives up instead and runs again tomorrow.
LOCK_TIMEOUT = "5s"
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout expires
_NAME = re.compile(r"^events_(\d{4})_(\d{2})$")


@dataclass(frozen=True, slots=True)
class Partition:
    """One month of events: received at or after ``start`` and before ``end`` (UTC)."""

    name: str
    start: datetime
    end: datetime

    @property
    def qualified(self) -> str:
        return f'{SCHEMA}."{self.name}"'


@dataclass(slots=True)
class Maintenance:
    """What ``create_ahead`` did: partitions created, rows moved out of DEFAULT, rows left there."""

    created: list[str] = field(default_factory=list)
    moved_from_default: int = 0
    left_in_default: int = 0  # rows received beyond the horizon (a server clock far ahead): kept, counted
    deferred: bool = False  # the locks were busy: nothing done, the next run does it (months exist ahead)

    def as_dict(self) -> dict[str, object]:
        return {"created": self.created, "moved_from_default": self.moved_from_default,
                "left_in_default": self.left_in_default, "deferred": self.deferred}


def month_of(at: datetime) -> datetime:
    """The first instant (UTC) of the month ``at`` falls in."""
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def add_months(start: datetime, months: int) -> datetime:
    index = start.year * 12 + start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def for_month(start: datetime) -> Partition:
    start = month_of(start)
    return Partition(name=f"events_{start:%Y_%m}", start=start, end=add_months(start, 1))


def default_qualified() -> str:
    return f'{SCHEMA}."{DEFAULT_NAME}"'


def is_partitioned(conn: Connection) -> bool:
    """True on PostgreSQL once migration 0019 has partitioned ``events``."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table "
                                  "WHERE partrelid = to_regclass('events'))")).scalar_one())


def list_(conn: Connection) -> list[Partition]:
    """The monthly partitions attached to ``events``, oldest first (DEFAULT and foreign ones left out)."""
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE i.inhparent = to_regclass('events') AND n.nspname = :schema"), {"schema": SCHEMA}).scalars()
    months = []
    for name in names:
        match = _NAME.match(name)
        if match:  # only partitions this module made, whose bounds the name states
            months.append(for_month(datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)))
    return sorted(months, key=lambda p: p.start)


def create(conn: Connection, *, start: datetime) -> int:
    """Create (and attach) the partition of ``start``'s month; returns the rows moved into it from DEFAULT."""
    part = for_month(start)
    # Built detached, filled from DEFAULT, then attached: ATTACH takes a weaker lock on ``events``
    # than CREATE ... PARTITION OF, and PostgreSQL refuses either while DEFAULT holds rows of the month.
    conn.execute(text(f"CREATE TABLE IF NOT EXISTS {part.qualified} (LIKE events)"))
    moved = conn.execute(text(
        f"WITH gone AS (DELETE FROM {default_qualified()} WHERE received_at >= :start AND received_at < :end "
        f"RETURNING *) INSERT INTO {part.qualified} SELECT * FROM gone"),
        {"start": part.start, "end": part.end}).rowcount
    # DDL takes no bind parameters; both bounds are datetimes built here, never input.
    conn.execute(text(f"ALTER TABLE events ATTACH PARTITION {part.qualified} "
                      f"FOR VALUES FROM ('{part.start.isoformat()}') TO ('{part.end.isoformat()}')"))
    return max(moved, 0)


def create_ahead(conn: Connection, *, now: datetime, months_ahead: int = MONTHS_AHEAD) -> Maintenance:
    """Make this month and the next ``months_ahead`` exist; move every earlier month out of DEFAULT."""
    report = Maintenance()
    if not is_partitioned(conn):
        return report
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MAINTENANCE_LOCK})
    have = {p.start for p in list_(conn)}
    this_month = month_of(now)
    horizon = add_months(this_month, months_ahead + 1)
    wanted = {add_months(this_month, i) for i in range(months_ahead + 1)}
    stranded = conn.execute(text(
        f"SELECT DISTINCT date_trunc('month', received_at, 'UTC') FROM {default_qualified()} "
        "WHERE received_at < :horizon"), {"horizon": horizon}).scalars()
    wanted |= {month_of(m) for m in stranded}
    for start in sorted(wanted - have):
        report.moved_from_default += create(conn, start=start)
        report.created.append(for_month(start).name)
    report.left_in_default = conn.execute(text(f"SELECT count(*) FROM {default_qualified()}")).scalar_one()
    return report


def maintain(db: Database, *, now: datetime, months_ahead: int = MONTHS_AHEAD) -> Maintenance:
    """``create_ahead`` in its own transaction: the start-up and daily call (nothing to do on SQLite)."""
    if db.is_sqlite:
        return Maintenance()
    try:
        with db.engine.begin() as conn:
            conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            report = create_ahead(conn, now=now, months_ahead=months_ahead)
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        log.warning("event partitions: events busy for %s, left for the next run", LOCK_TIMEOUT)
        return Maintenance(deferred=True)
    if report.moved_from_default:
        _vacuum_after_move(db, created=report.created)
    if report.created or report.left_in_default:
        log.info("event partitions: %s", report.as_dict())
    return report


def _vacuum_after_move(db: Database, *, created: list[str]) -> None:
    """The rows moved out of DEFAULT stay there as dead tuples that every index scan of ``events`` walks
    until autovacuum comes (a million of them made ``max(id)`` take 0.4 s instead of 0.3 ms): clean them
    now, and give the new months their planner statistics. VACUUM's lock does not stop inserts."""
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # VACUUM runs outside a transaction
        conn.execute(text(f"VACUUM (ANALYZE) {default_qualified()}"))
        for name in created:
            conn.execute(text(f'ANALYZE {SCHEMA}."{name}"'))
