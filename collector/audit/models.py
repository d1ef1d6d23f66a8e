"""One row per change a person made (or a login): kept apart from the rows it describes, never updated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Column, Field, SQLModel

from collector.types import BigIntPK, JSONData, UTCDateTime


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target", "target_type", "target_id"),
                      Index("ix_audit_log_unit_id", "unit_id"), Index("ix_audit_log_at", "at"))

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    actor: str = Field(max_length=128)
    role: str = Field(max_length=16)
    via: str = Field(max_length=16)  # api | console | cli | system
    source_ip: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=64)  # create | update | delete, or a named event (login, login_failed…)
    target_type: str = Field(max_length=64)  # the table changed (or "session" for logins)
    target_id: str | None = Field(default=None, max_length=64)
    unit_id: int | None = None  # the unit the row belongs to (no foreign key: the log outlives rows)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONData, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONData, nullable=True))


class AuditEntryPublic(SQLModel):
    id: int
    at: datetime
    actor: str
    role: str
    via: str
    source_ip: str | None
    action: str
    target_type: str
    target_id: str | None
    unit_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
