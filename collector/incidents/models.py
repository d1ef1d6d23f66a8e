"""Security incidents: when each was detected and reported (initial notice and full report)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime
from sqlalchemy import Index
from sqlmodel import Column, Field, SQLModel

from collector.types import UTCDateTime

SEVERITIES = ("serious", "normal")  # serious: must be reported to the authorities (Decree 331 Art. 31)
MAX_TEXT = 4000


class IncidentBase(SQLModel):
    title: str = Field(min_length=3, max_length=500)
    severity: str = Field(max_length=16)
    detected_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    initial_report_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    full_report_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    caused_by_overdue: bool = False  # through a finding already past its deadline (the −10 adjustment)
    summary: str = Field(default="", max_length=MAX_TEXT)


class IncidentCreate(SQLModel):
    unit: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=3, max_length=500)
    severity: str = Field(max_length=16)
    # Aware times only: an incident's deadlines are hours long, a guessed time zone moves them by seven.
    detected_at: AwareDatetime
    initial_report_at: AwareDatetime | None = None
    full_report_at: AwareDatetime | None = None
    caused_by_overdue: bool = False
    summary: str = Field(default="", max_length=MAX_TEXT)


class IncidentReported(SQLModel):
    stage: str = Field(max_length=8)  # initial | full
    at: AwareDatetime


class Incident(IncidentBase, table=True):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_unit_detected", "unit_id", "detected_at"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id")
    recorded_by: str = Field(max_length=128)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
