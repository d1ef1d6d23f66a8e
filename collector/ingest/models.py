"""Ingest batches: one row per accepted ``(agent_id, batch_id)`` makes every send idempotent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from collector.types import UTCDateTime, utcnow


class IngestBatch(SQLModel, table=True):
    __tablename__ = "ingest_batches"
    __table_args__ = (UniqueConstraint("agent_id", "batch_id", name="uq_ingest_agent_batch"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_id: str = Field(foreign_key="agents.id", max_length=36)
    batch_id: str = Field(max_length=36)
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    item_count: int
