"""Enrollment tokens and enrolled agents. Secrets are random and stored only as sha256."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Column, Field, SQLModel

from collector.types import JSONData, UTCDateTime, utcnow


class EnrollmentToken(SQLModel, table=True):
    __tablename__ = "enrollment_tokens"

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)  # shown in listings so a token can be named without revealing it
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    max_uses: int | None = None
    uses: int = 0
    revoked: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Agent(SQLModel, table=True):
    __tablename__ = "agents"

    id: str = Field(primary_key=True, max_length=36)  # uuid4, public
    host_id: int = Field(foreign_key="hosts.id", index=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    secret_hash: str = Field(max_length=64)
    token_id: int | None = Field(default=None, foreign_key="enrollment_tokens.id")
    version: str | None = Field(default=None, max_length=64)
    enrolled_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked: bool = False
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # The last heartbeat as reported (spool depth, drops, collector health): shown, never trusted.
    last_heartbeat: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONData, nullable=True))
    # When an ``agent.stale`` event was last raised for this agent; a new one needs a heartbeat since.
    stale_reported_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
