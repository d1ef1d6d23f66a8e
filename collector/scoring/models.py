"""Scoring tables: which hosts reported on which day, daily indicator values, frozen monthly snapshots.

Daily values are working data (recomputed freely); snapshots are the record a ranking is built
from — written once, never updated, each row carrying the model version and a hash of its inputs
so a recomputation from the stored history can be checked against it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, PrimaryKeyConstraint, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from collector.types import BigIntPK, UTCDateTime


class HostActivity(SQLModel, table=True):
    """A host's agent reported on this local (Asia/Ho_Chi_Minh) day: A1's "reported on ≥ 90 % of days"."""

    __tablename__ = "host_activity"
    __table_args__ = (PrimaryKeyConstraint("host_id", "day"), Index("ix_host_activity_day", "day"))

    host_id: int = Field(foreign_key="hosts.id")
    unit_id: int = Field(foreign_key="units.id")
    day: date = Field(sa_column=Column(Date, nullable=False))


class IndicatorValue(SQLModel):
    """What a daily value and a frozen snapshot both record of one indicator of one unit."""

    indicator: str = Field(max_length=8)
    value: float | None = None  # 0–100; None when nothing could be measured
    value_without_exceptions: float | None = None  # A2 with accepted findings counted as overdue
    numerator: float = 0.0
    denominator: float = 0.0
    model_version: str = Field(max_length=32)
    inputs_hash: str = Field(max_length=64)


class ScoreValue(IndicatorValue, table=True):
    """One indicator of one unit as of the end of one day (its own hosts)."""

    __tablename__ = "score_values"
    __table_args__ = (UniqueConstraint("unit_id", "day", "indicator", name="uq_score_values_unit_day_indicator"),
                      Index("ix_score_values_day", "day"))

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    unit_id: int = Field(foreign_key="units.id")
    day: date = Field(sa_column=Column(Date, nullable=False))
    computed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ScoreSnapshot(IndicatorValue, table=True):
    """The frozen value of one indicator of one unit for one month (the snapshot day's value)."""

    __tablename__ = "score_snapshots"
    __table_args__ = (UniqueConstraint("period", "unit_id", "indicator", name="uq_score_snapshots_period_unit"),)

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    period: str = Field(max_length=7)  # YYYY-MM
    unit_id: int = Field(foreign_key="units.id", index=True)
    as_of: date = Field(sa_column=Column(Date, nullable=False))
    frozen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ScoreAdjustment(SQLModel, table=True):
    """A bonus or penalty on a unit's annual score (the model's adjustments), with why and who approved it."""

    __tablename__ = "score_adjustments"

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    year: int
    kind: str = Field(max_length=32)  # an id of the model's adjustments
    points: float | None = None  # a bonus's granted points (others take the model's)
    reason: str = Field(max_length=2000)
    approved_by: str = Field(max_length=128)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_by: str | None = Field(default=None, max_length=128)


class ScoreAppeal(SQLModel, table=True):
    """A unit contesting one frozen indicator value; an accepted appeal is the logged correction (the
    snapshot row itself is never changed)."""

    __tablename__ = "score_appeals"
    __table_args__ = (Index("ix_score_appeals_period_unit", "period", "unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=7)
    unit_id: int = Field(foreign_key="units.id")
    indicator: str = Field(max_length=8)
    reason: str = Field(max_length=4000)
    submitted_by: str = Field(max_length=128)
    submitted_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(default="pending", max_length=16)  # pending | accepted | rejected
    corrected_value: float | None = None
    decision: str | None = Field(default=None, max_length=4000)
    decided_by: str | None = Field(default=None, max_length=128)
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class PublishedRanking(SQLModel, table=True):
    """A year whose ranking an administrator published: the public page shows only these years."""

    __tablename__ = "published_rankings"

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    published_by: str = Field(max_length=128)
    published_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class AdjustmentCreate(SQLModel):
    unit: str = Field(min_length=1, max_length=64)
    year: int
    kind: str = Field(max_length=32)
    reason: str = Field(max_length=2000)
    points: float | None = None


class AppealCreate(SQLModel):
    unit: str = Field(min_length=1, max_length=64)
    period: str = Field(max_length=7)
    indicator: str = Field(max_length=8)
    reason: str = Field(max_length=4000)


class AppealDecision(SQLModel):
    accept: bool
    decision: str = Field(max_length=4000)
    corrected_value: float | None = None
