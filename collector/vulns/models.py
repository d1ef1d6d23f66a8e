"""Imported feeds and their records.

Each import is a ``feeds`` row (source, version, file hash, record count, import time); its records
point back to it. A newer version of the same source replaces the older in one transaction: the
old records are deleted and the old feed row stays, marked replaced, as the import history.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Column, Field, SQLModel

from collector.types import BigIntPK, JSONData, UTCDateTime


class Feed(SQLModel, table=True):
    __tablename__ = "feeds"
    __table_args__ = (Index("ix_feeds_source_active", "kind", "source", "replaced_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=24)  # osv | debian-tracker | kev | warnings
    source: str = Field(max_length=128)
    version: str = Field(default="", max_length=64)
    sha256: str = Field(max_length=64, index=True)
    filename: str = Field(max_length=255)
    records: int = 0
    skipped: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSONData, nullable=False))
    imported_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    imported_by: str | None = Field(default=None, max_length=128)
    replaced_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class VulnRecord(SQLModel, table=True):
    __tablename__ = "vuln_records"
    __table_args__ = (Index("ix_vuln_records_feed", "feed_id"),)

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    feed_id: int = Field(foreign_key="feeds.id")
    vuln_id: str = Field(max_length=128, index=True)
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSONData, nullable=False))
    summary: str = Field(default="", max_length=2000)
    published: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    modified: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    cvss_vector: str | None = Field(default=None, max_length=255)
    cvss_version: str | None = Field(default=None, max_length=8)
    cvss_score: float | None = None
    cvss_severity: str | None = Field(default=None, max_length=16)
    severity: str | None = Field(default=None, max_length=32)  # vendor text: tracker urgency, Ubuntu priority


class VulnAffected(SQLModel, table=True):
    __tablename__ = "vuln_affected"
    __table_args__ = (Index("ix_vuln_affected_pkg", "distro", "package"), Index("ix_vuln_affected_feed", "feed_id"))

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    feed_id: int = Field(foreign_key="feeds.id")
    vuln_id: str = Field(max_length=128)
    cves: list[str] = Field(default_factory=list, sa_column=Column(JSONData, nullable=False))
    distro: str | None = Field(default=None, max_length=32)
    ecosystem: str = Field(max_length=16)
    package: str = Field(max_length=255)
    introduced: str | None = Field(default=None, max_length=255)
    fixed: str | None = Field(default=None, max_length=255)
    last_affected: str | None = Field(default=None, max_length=255)
    status: str = Field(max_length=24)
    urgency: str | None = Field(default=None, max_length=32)
    # OSV entries with only an explicit list of affected versions (no range): exactly these.
    versions: list[str] = Field(default_factory=list, sa_column=Column(JSONData, nullable=False))


class KnownExploitedRow(SQLModel, table=True):
    __tablename__ = "known_exploited"

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feeds.id", index=True)
    cve: str = Field(max_length=32, index=True)
    vendor: str = Field(default="", max_length=255)
    product: str = Field(default="", max_length=255)
    name: str = Field(default="", max_length=500)
    date_added: date
    due_date: date | None = None
    ransomware: bool | None = None


class OfficialWarningRow(SQLModel, table=True):
    __tablename__ = "official_warnings"

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feeds.id", index=True)
    warning_id: str = Field(max_length=128)
    cve: str = Field(max_length=32, index=True)
    title: str = Field(max_length=500)
    source: str = Field(max_length=128)
    date: date
    exploited: bool = False
    url: str | None = Field(default=None, max_length=1000)


class FeedPublic(SQLModel):
    id: int
    kind: str
    source: str
    version: str
    sha256: str
    filename: str
    records: int
    skipped: dict[str, Any]
    imported_at: datetime
    imported_by: str | None
    replaced_at: datetime | None
