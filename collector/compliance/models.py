"""Check results with history: a row per (host, check) state, closed (valid_to) when it changes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Column, Field, SQLModel

from collector.types import BigIntPK, JSONData, UTCDateTime

MAX_EVIDENCE = 4000


class CheckResultRow(SQLModel, table=True):
    __tablename__ = "check_results"
    __table_args__ = (
        Index("ix_check_results_host_current", "host_id", "valid_to"),
        Index("ix_check_results_unit_check", "unit_id", "check_id", "valid_to"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    unit_id: int = Field(foreign_key="units.id")
    host_id: int = Field(foreign_key="hosts.id")
    policy_id: str = Field(max_length=64)
    check_id: str = Field(max_length=128)
    status: str = Field(max_length=16)  # pass | fail | not_applicable | error
    severity: str = Field(max_length=16)
    critical: bool = False
    level: int  # the security level the host was judged at
    evidence: str = Field(default="", max_length=MAX_EVIDENCE)
    requirements: list[str] = Field(default_factory=list, sa_column=Column(JSONData, nullable=False))
    valid_from: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    valid_to: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class CheckResultPublic(SQLModel):
    check_id: str
    policy_id: str
    status: str  # as judged; ``accepted`` when an active exception covers a failure
    judged: str
    severity: str
    critical: bool
    level: int
    evidence: str
    requirements: list[str]
    valid_from: datetime
    valid_to: datetime | None
    exception_id: int | None = None
