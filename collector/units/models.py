"""Units: the province → department | commune (legacy district) tree every row belongs to."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import false
from sqlmodel import Column, Field, SQLModel

from collector.types import JSONData, UTCDateTime, utcnow


class UnitKind(StrEnum):
    province = "province"
    department = "department"
    commune = "commune"
    district = "district"  # legacy tier, kept for history before 7/2025


class UnitBase(SQLModel):
    code: str = Field(max_length=64, regex=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = Field(min_length=1, max_length=255)
    kind: UnitKind


class UnitCreate(UnitBase):
    parent_code: str | None = None


class Unit(UnitBase, table=True):
    __tablename__ = "units"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True, index=True)
    kind: str = Field(max_length=16)
    parent_id: int | None = Field(default=None, foreign_key="units.id", index=True)
    # Listening ports the unit's hosts may open (null: not configured here, ask the parent unit).
    # The detection rules see the effective list as ``@ctx.allowed_ports``.
    allowed_ports: list[int] | None = Field(default=None, sa_column=Column(JSONData, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # Generated demo data (``khien demo``), not a real agency: every page and export says so.
    synthetic: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class UnitPublic(UnitBase):
    id: int
    parent_id: int | None
    synthetic: bool = False
