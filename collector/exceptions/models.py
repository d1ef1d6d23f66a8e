"""Risk exceptions: who accepted what, why, with which compensating control, until when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Column, Field, SQLModel

from collector.types import BigIntPK, UTCDateTime, utcnow

TARGET_KINDS = ("check", "finding")
SCOPES = ("host", "unit", "all")
MAX_TEXT = 4000
MAX_DAYS = 90
# requested: asked by a unit or an analyst, not in force; approved: in force until it expires or is
# revoked; rejected: refused by an administrator, never in force.
DECISIONS = ("requested", "approved", "rejected")


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
    approved_by: str = Field(max_length=128)  # "" while requested or when rejected
    # When it came into force (the approval). A request that is not approved has a zero-length validity
    # (expires_at == created_at), so any "created before T and expiring after T" query never counts it.
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(default="approved", max_length=16, sa_column_kwargs={"server_default": "approved"})
    finding_id: int | None = Field(default=None, sa_column=Column(BigIntPK, nullable=True, index=True))
    requested_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    requested_days: int | None = None  # the expiry asked for, in days from the approval
    decided_by: str | None = Field(default=None, max_length=128)
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    decision_comment: str | None = Field(default=None, max_length=MAX_TEXT)
    renewals: int = 0
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_by: str | None = Field(default=None, max_length=128)
    revoke_reason: str | None = Field(default=None, max_length=MAX_TEXT)

    def status_at(self, at: datetime) -> str:
        """requested, rejected, or (approved) active, expired or revoked — computed, so an expired exception
        lapses with no job to run."""
        if self.status != "approved":
            return self.status
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
    status: str  # requested | rejected | active | expired | revoked
    finding_id: int | None = None
    requested_at: datetime | None = None
    requested_days: int | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_comment: str | None = None


class ExceptionRequestCreate(SQLModel):
    """A request for a risk acceptance: of one finding (``finding_id``: its rule on its host), or of an
    explicit target like ``RiskExceptionCreate``."""

    finding_id: int | None = None
    target_kind: str | None = None
    target: str | None = Field(default=None, min_length=1, max_length=255)
    scope: str | None = None
    unit: str | None = None
    host_id: int | None = None
    justification: str = Field(min_length=10, max_length=MAX_TEXT)
    compensating_control: str = Field(min_length=3, max_length=MAX_TEXT)
    expires_in_days: int = Field(default=MAX_DAYS, ge=1, le=MAX_DAYS)


class ExceptionDecision(SQLModel):
    comment: str | None = Field(default=None, max_length=MAX_TEXT)
    days: int | None = Field(default=None, ge=1, le=MAX_DAYS)  # approve for less than asked
