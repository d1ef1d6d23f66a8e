"""Risk exceptions: who accepted what, why, with which compensating control, until when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Column, Field, SQLModel

from collector.types import UTCDateTime, utcnow

TARGET_KINDS = ("check", "finding")
SCOPES = ("host", "unit", "all")
MAX_TEXT = 4000


class RiskException(SQLModel, table=True):
    __tablename__ = "risk_exceptions"
    __table_args__ = (Index("ix_risk_exceptions_target", "target_kind", "target"),)

    id: int | None = Field(default=None, primary_key=True)
    target_kind: str = Field(max_length=16)  # check | finding
    target: str = Field(max_length=255)  # a check id, or a finding key
    scope: str = Field(max_length=8)  # host | unit (and its sub-units) | all
    unit_id: int | None = Field(default=None, foreign_key="units.id", index=True)
    host_id: int | None = Field(default=None, foreign_key="hosts.id", index=True)
    justification: str = Field(max_length=MAX_TEXT)
    compensating_control: str = Field(max_length=MAX_TEXT)
    requested_by: str | None = Field(default=None, max_length=128)
    approved_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    renewals: int = 0
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_by: str | None = Field(default=None, max_length=128)
    revoke_reason: str | None = Field(default=None, max_length=MAX_TEXT)

    def status_at(self, at: datetime) -> str:
        """active, expired or revoked — computed, so an expired exception lapses with no job to run."""
        if self.revoked_at is not None and self.revoked_at <= at:
            return "revoked"
        return "active" if at < self.expires_at else "expired"


class RiskExceptionCreate(SQLModel):
    target_kind: str
    target: str = Field(min_length=1, max_length=255)
    scope: str
    unit: str | None = None  # unit code, for scope "unit"
    host_id: int | None = None  # for scope "host"
    justification: str = Field(min_length=10, max_length=MAX_TEXT)
    compensating_control: str = Field(min_length=3, max_length=MAX_TEXT)
    expires_in_days: int = Field(default=90, ge=1)
    requested_by: str | None = Field(default=None, max_length=128)


class RiskExceptionPublic(SQLModel):
    id: int
    target_kind: str
    target: str
    scope: str
    unit_id: int | None
    host_id: int | None
    justification: str
    compensating_control: str
    requested_by: str | None
    approved_by: str
    created_at: datetime
    expires_at: datetime
    renewals: int
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    status: str
