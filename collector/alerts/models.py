"""Alert rows and the pipeline's cursors (how far each stage has read the events table)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index
from sqlmodel import Column, Field, SQLModel

from collector.types import BigIntPK, JSONData, UTCDateTime, utcnow

OPEN_STATUSES = ("new", "acknowledged", "in_progress")
STATUSES = (*OPEN_STATUSES, "resolved", "false_positive", "duplicate")
MAX_EVENT_IDS = 20


class Alert(SQLModel, table=True):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_unit_status_last", "unit_id", "status", "last_seen"),
        Index("ix_alerts_dedupe_key", "dedupe_key", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    unit_id: int = Field(foreign_key="units.id")
    host_id: int | None = Field(default=None, foreign_key="hosts.id", index=True)
    rule_id: str = Field(max_length=128, index=True)
    severity: str = Field(max_length=16)
    # sha256 of (rule, host, group values): repeats of the same thing fold into one alert.
    dedupe_key: str = Field(max_length=64)
    group: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONData, nullable=False))
    status: str = Field(default="new", max_length=24)
    count: int = 1  # detections folded into this alert
    event_count: int = 0  # events behind those detections
    event_ids: list[int] = Field(default_factory=list, sa_column=Column(JSONData, nullable=False))
    first_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class AlertPublic(SQLModel):
    id: int
    unit_id: int
    host_id: int | None
    rule_id: str
    severity: str
    group: dict[str, Any]
    status: str
    count: int
    event_count: int
    event_ids: list[int]
    first_seen: datetime
    last_seen: datetime


class PipelineCursor(SQLModel, table=True):
    """The last event id a pipeline stage has finished with, committed with that stage's results."""

    __tablename__ = "pipeline_cursors"

    name: str = Field(primary_key=True, max_length=64)
    position: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
