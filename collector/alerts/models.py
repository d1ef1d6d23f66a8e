"""Alert rows with their triage (status workflow, times, assignee), comments, suppressions, pipeline cursors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index
from sqlmodel import Column, Field, SQLModel

from collector.types import BigIntPK, JSONData, UTCDateTime, utcnow

OPEN_STATUSES = ("new", "acknowledged", "in_progress")
CLOSED_STATUSES = ("resolved", "false_positive", "duplicate")
# A detection that matched an active suppression: kept and counted, but out of the working queue.
SUPPRESSED = "suppressed"
STATUSES = (*OPEN_STATUSES, *CLOSED_STATUSES, SUPPRESSED)
SEVERITIES = ("info", "low", "medium", "high", "critical")
SUPPRESSION_KINDS = ("snooze", "dedup")
MAX_EVENT_IDS = 20
MAX_COMMENT_CHARS = 4000
MAX_REASON_CHARS = 1000


class Alert(SQLModel, table=True):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_unit_status_last", "unit_id", "status", "last_seen"),
        Index("ix_alerts_dedupe_key", "dedupe_key", "id"),
        Index("ix_alerts_status_id", "status", "id"),
        Index("ix_alerts_severity_status_id", "severity", "status", "id"),  # the queue's bounded counts
        Index("ix_alerts_unit_severity_status", "unit_id", "severity", "status"),  # a unit's counts, index-only
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
    # Triage times are set once and never cleared (a reopened alert keeps them), so a past day's A8
    # recomputed later sees what was true then: the first time it left `new`, the first time it closed.
    acknowledged_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    acknowledged_by: str | None = Field(default=None, max_length=64)
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    closed_by: str | None = Field(default=None, max_length=64)
    assignee: str | None = Field(default=None, max_length=64, index=True)
    # The suppression a detection matched when this alert was opened as `suppressed` (no foreign key:
    # adding one to this big table would make SQLite rebuild it).
    suppression_id: int | None = None


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
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    assignee: str | None = None
    suppression_id: int | None = None


class AlertComment(SQLModel, table=True):
    __tablename__ = "alert_comments"

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    alert_id: int = Field(sa_column=Column(BigInteger, ForeignKey("alerts.id"), nullable=False, index=True))
    unit_id: int = Field(foreign_key="units.id")  # the alert's: scopes the audit entry and reads
    author: str = Field(max_length=64)
    body: str = Field(max_length=MAX_COMMENT_CHARS)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class AlertCommentPublic(SQLModel):
    id: int
    alert_id: int
    author: str
    body: str
    created_at: datetime


class AlertSuppression(SQLModel, table=True):
    """Detections of ``rule_id`` on one host (or anywhere in one unit) are suppressed until ``expires_at``.

    snooze: each matching detection becomes (or folds into) a `suppressed` alert, out of the queue.
    dedup: it folds into the newest open alert with the same key whatever the rule's window; with no
    open alert it is kept as `suppressed`. Either way ``hits`` counts it: nothing is lost.
    """

    __tablename__ = "alert_suppressions"
    __table_args__ = (Index("ix_alert_suppressions_rule_unit", "rule_id", "unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    rule_id: str = Field(max_length=128)
    unit_id: int = Field(foreign_key="units.id")  # the host's unit for a host suppression
    host_id: int | None = Field(default=None, foreign_key="hosts.id")
    kind: str = Field(max_length=16)
    reason: str = Field(max_length=MAX_REASON_CHARS)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expired_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    expired_by: str | None = Field(default=None, max_length=64)
    hits: int = 0  # detections it suppressed
    last_hit_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))

    def active(self, at: datetime) -> bool:
        return self.expired_at is None and self.expires_at > at


class AlertSuppressionPublic(SQLModel):
    id: int
    rule_id: str
    unit_id: int
    host_id: int | None
    kind: str
    reason: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    expired_at: datetime | None
    expired_by: str | None
    hits: int
    last_hit_at: datetime | None


class PipelineCursor(SQLModel, table=True):
    """How far a pipeline stage has got, committed with that stage's results: for detection the last
    event's ``(position_tx, position)`` = ``(Event.tx, Event.id)`` (events.service), for a scheduled job
    the last tick it ran for (``position``)."""

    __tablename__ = "pipeline_cursors"

    name: str = Field(primary_key=True, max_length=64)
    position: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    position_tx: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


# ---- request bodies of the triage API ---------------------------------------------------------------

class StatusChange(SQLModel):
    status: str
    comment: str | None = None


class Assignment(SQLModel):
    assignee: str | None = None  # empty or null: unassign


class CommentCreate(SQLModel):
    body: str


class BulkChange(SQLModel):
    alert_ids: list[int]
    status: str | None = None
    assignee: str | None = None
    unassign: bool = False
    comment: str | None = None


class SuppressionIn(SQLModel):
    rule_id: str
    kind: str = "snooze"
    reason: str
    expires_at: datetime
    host_id: int | None = None
    unit: str | None = None
