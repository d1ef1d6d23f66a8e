"""Hosts (identified by machine-id / product UUID / MACs, not by agent) and their inventory history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Column, Field, SQLModel

from collector.types import BigIntPK, JSONData, UTCDateTime, utcnow


class Host(SQLModel, table=True):
    __tablename__ = "hosts"
    # The console's host list pages by (hostname, id) and (last_seen, id) keysets.
    __table_args__ = (Index("ix_hosts_hostname", "hostname", "id"), Index("ix_hosts_last_seen", "last_seen", "id"))

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    machine_id: str | None = Field(default=None, max_length=64, index=True)
    product_uuid: str | None = Field(default=None, max_length=64, index=True)
    macs: list[str] = Field(default_factory=list, sa_column=Column(JSONData, nullable=False))
    hostname: str = Field(max_length=255)
    platform: str | None = Field(default=None, max_length=32)
    os_name: str | None = Field(default=None, max_length=255)
    os_version: str | None = Field(default=None, max_length=128)
    kernel: str | None = Field(default=None, max_length=255)
    agent_version: str | None = Field(default=None, max_length=64)
    security_level: int | None = None  # cấp độ 1–5; None = not yet declared
    internet_facing: bool = False
    # "debian:12", "ubuntu:22.04", "rocky:9" ...: the release vulnerability feeds are keyed by.
    distro: str | None = Field(default=None, max_length=32)
    first_seen: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    last_seen: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # section -> content hash of the current rows, so an unchanged section is skipped cheaply.
    inventory_hashes: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSONData, nullable=False))


class HostPublic(SQLModel):
    id: int
    hostname: str
    unit: str
    unit_id: int
    platform: str | None
    os_name: str | None
    os_version: str | None
    kernel: str | None
    agent_version: str | None
    security_level: int | None
    internet_facing: bool
    first_seen: datetime
    last_seen: datetime | None
    stale: bool


class InventoryRow(SQLModel, table=True):
    """One row of one inventory section, valid from ``valid_from`` until ``valid_to`` (NULL = current).

    A single table for every section keeps "what was installed/listening on date D" one query;
    ``name`` and ``version`` are promoted out of ``data`` so package matching can be set-based SQL.
    """

    __tablename__ = "inventory_rows"
    __table_args__ = (
        Index("ix_inventory_current", "host_id", "section", "valid_to"),
        # Covering index for vulnerability matching: the distinct installed versions and the hosts
        # that have a given (name, version) are read from the index alone, never from the rows' JSON.
        Index("ix_inventory_packages", "section", "valid_to", "name", "version", "source", "source_version",
              "host_id"),
        Index("ix_inventory_unit", "unit_id", "section"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    host_id: int = Field(foreign_key="hosts.id")
    unit_id: int = Field(foreign_key="units.id")
    section: str = Field(max_length=32)
    key: str = Field(max_length=600)
    name: str | None = Field(default=None, max_length=255)
    version: str | None = Field(default=None, max_length=255)
    # Packages only: the source package and its version, which Debian's feeds are keyed by.
    source: str | None = Field(default=None, max_length=255)
    source_version: str | None = Field(default=None, max_length=255)
    row_hash: str = Field(max_length=64)
    data: dict[str, Any] = Field(sa_column=Column(JSONData, nullable=False))
    valid_from: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    valid_to: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
