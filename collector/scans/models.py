"""Network compliance scans: per-unit ranges and policy, scan runs, and what each run saw (history).

Results are append-only (a run's hosts and ports are never rewritten), so "what was open on this
address on date D" is the newest run before D. ``scan_assets`` is the one mutable summary: per
address, when it was last seen up and when it is next due, which is what the scheduler reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from collector.types import BigIntPK, JSONData, UTCDateTime

PROFILES = ("discovery", "standard", "full")


class UnitRange(SQLModel, table=True):
    """A network a unit owns (``exclude`` False) or carves out of its ranges (``exclude`` True)."""

    __tablename__ = "unit_ranges"
    __table_args__ = (UniqueConstraint("unit_id", "network", "exclude", name="uq_unit_ranges"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    network: str = Field(max_length=64)  # canonical CIDR
    exclude: bool = False


class ScanPolicy(SQLModel, table=True):
    """When and how a unit's ranges are scanned (no row: the defaults in settings)."""

    __tablename__ = "scan_policies"

    unit_id: int = Field(foreign_key="units.id", primary_key=True)
    enabled: bool = True
    profile: str = Field(default="standard", max_length=16)
    # Hours (local time, Asia/Ho_Chi_Minh) when scanning is allowed: [[start, end], ...], end exclusive;
    # [22, 6] wraps midnight. Empty: any time.
    windows: list[list[int]] = Field(default_factory=list, sa_column=Column(JSONData, nullable=False))


class ScanRun(SQLModel, table=True):
    __tablename__ = "scan_runs"
    __table_args__ = (Index("ix_scan_runs_unit", "unit_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id")
    profile: str = Field(max_length=16)
    targets: list[str] = Field(default_factory=list, sa_column=Column(JSONData, nullable=False))
    excludes: list[str] = Field(default_factory=list, sa_column=Column(JSONData, nullable=False))
    trigger: str = Field(max_length=32)  # schedule | cli | api
    status: str = Field(default="running", max_length=16)  # running | completed | interrupted | failed
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    chunks_total: int = 0
    chunks_done: int = 0
    addresses: int = 0
    hosts_up: int = 0
    nmap_seconds: float = 0.0
    command: str = Field(default="", max_length=2000)
    error: str | None = Field(default=None, max_length=2000)
    findings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONData, nullable=False))


class ScanHost(SQLModel, table=True):
    __tablename__ = "scan_hosts"
    __table_args__ = (Index("ix_scan_hosts_address", "unit_id", "address", "run_id"),)

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    run_id: int = Field(foreign_key="scan_runs.id", index=True)
    unit_id: int = Field(foreign_key="units.id")
    address: str = Field(max_length=64)
    state: str = Field(max_length=16)
    hostnames: list[str] = Field(default_factory=list, sa_column=Column(JSONData, nullable=False))
    os_guess: str | None = Field(default=None, max_length=255)
    host_id: int | None = Field(default=None, foreign_key="hosts.id")  # the managed host at this address
    scanned_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ScanPort(SQLModel, table=True):
    __tablename__ = "scan_ports"

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    scan_host_id: int = Field(sa_column=Column(BigIntPK, nullable=False, index=True))
    run_id: int = Field(foreign_key="scan_runs.id")
    proto: str = Field(max_length=8)
    port: int
    state: str = Field(max_length=24)
    service: str | None = Field(default=None, max_length=64)
    product: str | None = Field(default=None, max_length=255)
    version: str | None = Field(default=None, max_length=255)
    extrainfo: str | None = Field(default=None, max_length=255)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONData, nullable=False))  # tls/http/ssh


class ScanAsset(SQLModel, table=True):
    """Per scanned address: last state and when it is next due (rescan interval by worst finding)."""

    __tablename__ = "scan_assets"
    __table_args__ = (UniqueConstraint("unit_id", "address", name="uq_scan_assets"),
                      Index("ix_scan_assets_due", "unit_id", "next_scan_at"))

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id")
    address: str = Field(max_length=64)
    host_id: int | None = Field(default=None, foreign_key="hosts.id")
    state: str = Field(max_length=16)
    first_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_scanned: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_up: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    next_scan_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
