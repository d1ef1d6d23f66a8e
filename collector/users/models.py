"""People who use the console and the JSON API, their API tokens and console sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger
from sqlmodel import Column, Field, SQLModel

from collector.types import UTCDateTime, utcnow


class Role(StrEnum):
    admin = "admin"
    analyst = "analyst"
    unit_officer = "unit_officer"
    auditor = "auditor"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str = Field(max_length=255)  # argon2id
    role: str = Field(max_length=16)
    unit_id: int | None = Field(default=None, foreign_key="units.id", index=True)
    is_active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_login_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # The console language the person chose; None until they choose (pages then follow the browser's
    # language cookie, else Vietnamese). A choice made while logged in follows them to any browser.
    language: str | None = Field(default=None, max_length=8)
    # Second factor: the base32 secret is kept from enrolment on, but never shown again once enabled
    # (and redacted by the audit log); the last accepted time step makes every code single-use.
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_enabled: bool = False
    totp_last_step: int | None = Field(default=None, sa_type=BigInteger)


class UserPublic(SQLModel):
    id: int
    username: str
    role: str
    unit_id: int | None
    is_active: bool


class ApiToken(SQLModel, table=True):
    """A personal Bearer token for the JSON API; only its sha256 is stored."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked: bool = False


class ConsoleSession(SQLModel, table=True):
    """A logged-in browser; the cookie holds a random token whose sha256 is stored here."""

    __tablename__ = "console_sessions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    csrf_token: str = Field(max_length=64)
    source_ip: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The last request seen (refreshed at most once a minute): an idle session ends before it expires.
    last_seen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class PendingLogin(SQLModel, table=True):
    """A password accepted, the second factor still to come: the browser holds only a random token
    (its sha256 is stored here), so who is logging in, until when and where to go next stay server-side."""

    __tablename__ = "pending_logins"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    next_path: str = Field(default="/hosts", max_length=2048)
    source_ip: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
