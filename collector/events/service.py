"""Events: bulk insert and unit-scoped time-range queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, text
from sqlmodel import Session, select

from collector.events.models import Event
from collector.scope import Scope

MAX_PAGE = 1000
EVENT_ORDER_LOCK = 0x6B6869656E01  # "khien" + 1: the advisory lock that orders event inserts


def add_many(session: Session, *, rows: list[dict[str, Any]]) -> int:
    """Insert event rows (unit_id, host_id, type, ts, received_at, origin, data) in one executemany."""
    if rows:
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            # Event ids must become visible in id order, or the detection cursor (collector/
            # detection.py) could pass an id whose transaction commits later. Held to commit, this
            # lock orders the event-inserting transactions; SQLite has one writer anyway.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_ORDER_LOCK})
        # Core executemany on the session's connection: the ORM bulk path costs ~2x per row here.
        connection.execute(insert(Event.__table__), rows)
    return len(rows)


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
