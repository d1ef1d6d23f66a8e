"""Events: what agents report and what the collector derives, queried by unit/host/type and time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, FetchedValue, Index
from sqlmodel import Column, Field, SQLModel

from collector.types import BigIntPK, JSONData, UTCDateTime, utcnow


class Event(SQLModel, table=True):
    """One event. On PostgreSQL the table is partitioned by month of ``received_at`` (migration 0019,
    ``collector/events/partitions.py``) and its primary key there is ``(id, received_at)``, as
    partitioning requires; ``id`` stays unique because only the table's sequence assigns it, so it is
    declared the key here (and is the whole key on SQLite). No other table may reference ``events.id``
    with a foreign key: alerts keep event ids as a list and live on when retention removes the events.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_unit_ts", "unit_id", "ts"),
        Index("ix_events_host_ts", "host_id", "ts"),
        Index("ix_events_type_ts", "type", "ts"),
        Index("ix_events_tx_id", "tx", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    unit_id: int = Field(foreign_key="units.id")
    host_id: int = Field(foreign_key="hosts.id")
    type: str = Field(max_length=64)
    ts: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The server's clock at ingest: the partition key and what retention counts from, because the
    # agent's ``ts`` can be skewed by hours or years.
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # "agent" for reported events, "collector" for events derived here (inventory changes).
    origin: str = Field(default="agent", max_length=16)
    data: dict[str, Any] = Field(sa_column=Column(JSONData, nullable=False))
    # The inserting transaction (PostgreSQL: ``pg_current_xact_id()``; SQLite: 0), set by the database's
    # default (migration 0020), never by the application. Detection reads in ``(tx, id)`` order below
    # the oldest running transaction, so it never passes a row that commits later (events.service).
    tx: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=False, server_default=FetchedValue()))


class EventPublic(SQLModel):
    id: int
    host_id: int
    type: str
    ts: datetime
    origin: str
    data: dict[str, Any]
