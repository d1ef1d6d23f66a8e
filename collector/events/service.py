"""Events: bulk insert and unit-scoped time-range queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text, tuple_
from sqlmodel import Session, select

from collector import bulk
from collector.events.models import Event
from collector.scope import Scope

MAX_PAGE = 1000

# Where a reader of the events table in commit-safe order stands: ``(Event.tx, Event.id)``.
Position = tuple[int, int]
START: Position = (0, 0)


def add_many(session: Session, *, rows: list[dict[str, Any]]) -> int:
    """Insert event rows (unit_id, host_id, type, ts, received_at, origin, data) in one bulk write.

    ``tx`` is left to the database (migration 0020), so concurrent inserts never wait for each other:
    readers that must not skip a row use ``newest_final`` and ``read_final`` instead of id order.
    """
    # In the session's transaction, each distinct value converted once and, on PostgreSQL, streamed with
    # COPY: psycopg's per-row executemany was the largest single cost of ingest (bench/load.py profile).
    return bulk.insert_many(session.connection(), Event.__table__, rows)


# The oldest transaction still running in this database, as a 64-bit id, or the first id not yet
# assigned when none runs. Transactions of other databases on the same PostgreSQL server are left out
# (they never write here, and a long one there must not hold detection back). pg_stat_activity shows
# 32-bit xids: each is widened with the epoch of the snapshot's xmax, which no running xid trails by
# 2^31 or more (wraparound protection).
_PG_HORIZON = text("""
WITH s AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS n)
SELECT LEAST(s.n, min(s.n - ((s.n % 4294967296) - a.backend_xid::text::bigint + 4294967296) % 4294967296))
FROM s LEFT JOIN pg_stat_activity a ON a.datname = current_database() AND a.backend_xid IS NOT NULL
GROUP BY s.n
""")


def newest_final(session: Session) -> Position | None:
    """The last position, in ``(tx, id)`` order, of the rows no transaction can still add to or before.

    On PostgreSQL ids are drawn at insert and become visible at commit, so a reader in id order could
    pass an id whose transaction commits later. ``tx`` is the inserting transaction; the horizon is
    taken in its own statement before the rows are read (READ COMMITTED: a later snapshot), so every
    transaction under it has ended by then — committed and visible, or rolled back — and no new row
    can sort before the newest of them. On SQLite one writer at a time commits ids in order and
    ``tx`` is 0: the newest row is final.
    """
    query = select(Event.tx, Event.id).order_by(Event.tx.desc(), Event.id.desc()).limit(1)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        query = query.where(Event.tx < connection.execute(_PG_HORIZON).scalar_one())
    row = session.exec(query).first()
    return (row[0], row[1]) if row is not None else None


def read_final(session: Session, *, after: Position, upto: Position, types: list[str], limit: int,
               columns: tuple = ()) -> list:
    """Rows of ``types`` with ``after < (tx, id) <= upto`` in that order (``upto`` from ``newest_final``),
    each as ``(tx, id, *columns)``."""
    order = tuple_(Event.tx, Event.id)
    return list(session.exec(select(Event.tx, Event.id, *columns)
                             .where(order > tuple_(*after), order <= tuple_(*upto), Event.type.in_(types))
                             .order_by(Event.tx, Event.id).limit(limit)).all())


def list_(
    session: Session,
    *,
    scope: Scope,
    host_id: int | None = None,
    types: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[Event]:
    """Newest events first, within the caller's unit scope."""
    query = select(Event).where(scope.where(Event.unit_id))
    if host_id is not None:
        query = query.where(Event.host_id == host_id)
    if types:
        query = query.where(Event.type.in_(types))
    if since is not None:
        query = query.where(Event.ts >= since)
    if until is not None:
        query = query.where(Event.ts < until)
    return list(session.exec(query.order_by(Event.ts.desc(), Event.id.desc()).limit(min(limit, MAX_PAGE))))
