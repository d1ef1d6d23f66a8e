"""Users: creation, password login with lockout, API tokens, console sessions, unit scope."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, select

from collector import security
from collector.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from collector.scope import Scope
from collector.types import utcnow
from collector.units import service as units
from collector.users.models import ApiToken, ConsoleSession, Role, User

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$"
API_TOKEN_PREFIX = "khien_pat_"


def get_by_username(session: Session, *, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def create(session: Session, *, username: str, password: str, role: str, unit_code: str | None) -> User:
    """Add a user; unit officers need a unit, everyone else may have none."""
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise InvalidInput(f"invalid username {username!r} (2–64 letters, digits, _ . @ -)")
    if role not in Role.__members__:
        raise InvalidInput(f"unknown role {role!r} (one of: {', '.join(Role.__members__)})")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password too short (at least {MIN_PASSWORD_LENGTH} characters)")
    if role == Role.unit_officer and not unit_code:
        raise InvalidInput("a unit_officer needs --unit")
    if get_by_username(session, username=username):
        raise Conflict(f"user already exists: {username!r}")
    unit = units.get_by_code(session, code=unit_code) if unit_code else None
    user = User(username=username, password_hash=security.hash_password(password), role=role,
                unit_id=unit.id if unit else None)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, *, username: str, password: str, now: datetime | None = None) -> User:
    """Check a password with lockout after repeated failures; the caller commits the counters."""
    now = now or utcnow()
    user = get_by_username(session, username=username)
    if user is not None and user.locked_until and user.locked_until > now:
        security.verify_password(password, None)  # same cost as a real check
        raise Forbidden("account temporarily locked after repeated failures")
    ok = security.verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        if user is not None and user.is_active:
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILED_LOGINS:
                user.locked_until = now + LOCKOUT
                user.failed_logins = 0
            session.add(user)
        raise Unauthorized("wrong username or password")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session.add(user)
    return user


def scope_for(session: Session, *, user: User) -> Scope:
    """Admins, analysts and auditors see every unit; a unit officer sees their unit's subtree."""
    if user.role == Role.unit_officer:
        if user.unit_id is None:
            return Scope.units(frozenset())
        return Scope.units(units.subtree_ids(session, unit_id=user.unit_id))
    return Scope.everything()


def create_api_token(session: Session, *, username: str, expires_in: timedelta | None) -> str:
    """Issue a personal API token; the plaintext is returned once and never stored."""
    user = get_by_username(session, username=username)
    if user is None:
        raise NotFound(f"unknown user: {username!r}")
    token = API_TOKEN_PREFIX + security.new_secret()
    session.add(ApiToken(user_id=user.id, token_hash=security.hash_token(token),
                         expires_at=utcnow() + expires_in if expires_in else None))
    session.flush()
    return token


def get_by_api_token(session: Session, *, token: str) -> User:
    """The active user behind a Bearer API token, or Unauthorized."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == security.hash_token(token))).first()
    if row is None or row.revoked:
        raise Unauthorized("invalid API token")
    if row.expires_at and row.expires_at <= utcnow():
        raise Unauthorized("API token expired")
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("invalid API token")
    return user


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str
    csrf_token: str
    expires_at: datetime


def create_console_session(
    session: Session, *, user: User, ttl: timedelta, source_ip: str | None
) -> NewSession:
    """Start a console session; the cookie gets ``token``, forms carry ``csrf_token``."""
    token, csrf = security.new_secret(), security.new_secret(24)
    now = utcnow()
    expires = now + ttl
    # Logging in is the natural moment to forget sessions that can no longer be used.
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    session.add(ConsoleSession(user_id=user.id, token_hash=security.hash_token(token), csrf_token=csrf,
                               expires_at=expires, source_ip=source_ip))
    session.flush()
    return NewSession(token=token, csrf_token=csrf, expires_at=expires)


def get_console_session(session: Session, *, token: str) -> tuple[ConsoleSession, User]:
    """The live session and its user for a cookie value, or Unauthorized."""
    row = session.exec(select(ConsoleSession).where(
        ConsoleSession.token_hash == security.hash_token(token))).first()
    if row is None or row.expires_at <= utcnow():
        raise Unauthorized("session expired")
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("session expired")
    return row, user


def delete_console_session(session: Session, *, token: str) -> None:
    row = session.exec(select(ConsoleSession).where(
        ConsoleSession.token_hash == security.hash_token(token))).first()
    if row is not None:
        session.delete(row)
