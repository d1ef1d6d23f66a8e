"""Findings and their history.

A finding is keyed by (stable host identity, rule, location): the same CVE on the same package of
the same host is one finding whichever source saw it, and ``sources`` says which producers see it
now. A finding that comes back more than 90 days after it was fixed starts a new *generation* — a
new row, so the old one stays as history — while one that comes back sooner reopens its own row
and keeps its first-seen date and deadline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, PrimaryKeyConstraint, UniqueConstraint
from sqlmodel import Column, Field, SQLModel
from sqlmodel.sql.sqltypes import AutoString

from collector.types import BigIntPK, JSONData, UTCDateTime

KINDS = ("vulnerability", "patch", "check", "exposure", "unmanaged", "eol")
STORED_STATUSES = ("open", "reopened", "fixed")
STATUSES = (*STORED_STATUSES, "accepted")  # accepted: open, and covered by an active exception (computed)
# What people say about the work on an open finding. "fixed" is not among them: only the engine closes a
# finding, when agent or scan data proves it gone (``status``/``fixed_proof``).
REMEDIATION_STATUSES = ("open", "in_progress", "fixed_pending_verification", "risk_accepted")
MAX_COMMENT = 4000


class Finding(SQLModel, table=True):
    __tablename__ = "findings"
    __table_args__ = (
        UniqueConstraint("dedupe_key", "generation", name="uq_findings_key_generation"),
        Index("ix_findings_identity_kind", "identity", "kind"),
        Index("ix_findings_unit_status", "unit_id", "status"),
        Index("ix_findings_host_status", "host_id", "status"),
        Index("ix_findings_due", "status", "due_at"),
        Index("ix_findings_status_first_seen", "status", "first_seen"),  # remediation age buckets
    )

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    unit_id: int = Field(foreign_key="units.id")
    host_id: int | None = Field(default=None, foreign_key="hosts.id")
    address: str | None = Field(default=None, max_length=64)  # scan findings and unmanaged hosts
    identity: str = Field(max_length=96)  # "host:<id>" or "addr:<unit id>:<address>"
    kind: str = Field(max_length=16)
    rule: str = Field(max_length=255)  # CVE id, check id, exposed-service:rdp, os-eol ...
    location: str = Field(default="", max_length=255)  # package, proto/port, "" for host-wide
    dedupe_key: str = Field(max_length=64)
    generation: int = 0
    title: str = Field(max_length=500)
    finding_class: str = Field(max_length=24)  # P0–P4 | critical_misconfig | failed_check | eol
    cvss_score: float | None = None
    cvss_vector: str | None = Field(default=None, max_length=255)
    fix_available: bool = True
    distro_state: str | None = Field(default=None, max_length=24)  # fixed | no-dsa | postponed | open ...
    fixed_version: str | None = Field(default=None, max_length=255)
    status: str = Field(default="open", max_length=16)
    # Producers that see it now, comma-separated ("agent,scan"): a plain string because the nightly
    # re-match reads it for every finding, and decoding a million JSON lists costs seconds.
    sources: str = Field(default="", max_length=64)
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONData, nullable=False))
    first_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # When the finding last changed or was last seen by a producer reporting only part of a subject
    # (a scan of one address); a complete report is recorded once per subject (FindingSighting).
    last_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    clock_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    mitigate_by: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    sla_version: str = Field(default="", max_length=32)
    fixed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    fixed_proof: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONData, nullable=True))
    reopened_count: int = 0
    obs_hash: str = Field(default="", max_length=32)  # what the producer last reported (collector.findings.service)
    # Remediation (people's side): where the work stands and who does it (collector.findings.remediation).
    # The default lives in the database (not a Python column default): the bulk loaders (collector.bulk)
    # insert exactly the keys they are given, and the engine's older callers do not give this one.
    remediation_status: str = Field(default="open", sa_column=Column(AutoString(32), nullable=False,
                                                                      server_default="open"))
    assignee: str | None = Field(default=None, max_length=64)


class FindingSighting(SQLModel, table=True):
    """When a producer last reported a subject's complete list of findings of one kind.

    Every open finding on the list was seen then, so its last-seen time is this, not a column
    rewritten on each finding: the nightly re-match would otherwise update ~10^6 unchanged rows
    (on PostgreSQL a new row version each, to be vacuumed) just to move a timestamp.
    """

    __tablename__ = "finding_sightings"
    __table_args__ = (PrimaryKeyConstraint("identity", "kind", "producer"),)

    identity: str = Field(max_length=96)
    kind: str = Field(max_length=16)
    producer: str = Field(max_length=16)
    seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class FindingEvent(SQLModel, table=True):
    """Append-only history of what changed after a finding opened: reclassified, fixed (with what proved
    it), reopened. The opening is the finding row itself (first_seen, clock_start, due_at)."""

    __tablename__ = "finding_events"
    __table_args__ = (Index("ix_finding_events_finding", "finding_id", "at"),)

    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    finding_id: int = Field(sa_column=Column(BigIntPK, nullable=False))
    unit_id: int = Field(foreign_key="units.id", index=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    action: str = Field(max_length=16)  # reclassified | fixed | reopened (opening is the finding row itself)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONData, nullable=False))


class RemediationComment(SQLModel, table=True):
    """A note on a remediation item; append-only (the audit log keeps who wrote it, from where)."""

    __tablename__ = "remediation_comments"
    __table_args__ = (Index("ix_remediation_comments_finding", "finding_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    finding_id: int = Field(sa_column=Column(BigIntPK, ForeignKey("findings.id"), nullable=False))
    unit_id: int = Field(foreign_key="units.id")  # the finding's unit, so reads filter by scope directly
    author: str = Field(max_length=128)
    body: str = Field(max_length=MAX_COMMENT)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class RemediationEvidence(SQLModel, table=True):
    """A file showing the work done (a change ticket, a screenshot); its bytes are stored like attestation
    evidence, content-addressed under ``<data dir>/evidence/`` (collector.attestations.evidence)."""

    __tablename__ = "remediation_evidence"
    __table_args__ = (Index("ix_remediation_evidence_finding", "finding_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    finding_id: int = Field(sa_column=Column(BigIntPK, ForeignKey("findings.id"), nullable=False))
    unit_id: int = Field(foreign_key="units.id")
    filename: str = Field(max_length=255)  # sanitised display name, never a path
    content_type: str = Field(max_length=128)  # detected from the bytes, not the client's claim
    size: int
    sha256: str = Field(max_length=64)
    stored_path: str = Field(max_length=255)
    uploaded_by: str = Field(max_length=128)
    uploaded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class RemediationEvidencePublic(SQLModel):
    id: int
    finding_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


class FindingPublic(SQLModel):
    id: int
    unit: str
    unit_id: int
    host_id: int | None
    hostname: str | None
    address: str | None
    kind: str
    rule: str
    location: str
    title: str
    finding_class: str
    cvss_score: float | None
    cvss_vector: str | None
    fix_available: bool
    distro_state: str | None
    fixed_version: str | None
    status: str  # open | reopened | fixed | accepted
    sources: list[str]
    evidence: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    clock_start: datetime
    due_at: datetime
    mitigate_by: datetime | None
    overdue: bool
    sla_version: str
    fixed_at: datetime | None
    fixed_proof: dict[str, Any] | None
    reopened_count: int
    exception_id: int | None = None
    # "fixed" when the engine proved it fixed, else the people's remediation status.
    remediation_status: str = "open"
    assignee: str | None = None
