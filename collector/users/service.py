"""Users: creation, password login with lockout, the TOTP second factor, API tokens, console sessions
(with an idle timeout), each person's language, unit scope, and the administrator's changes to people.

``create`` and ``create_api_token`` take no actor: they are the bootstrap path of ``khien user`` on the
server itself, where being on the machine is the authority. Everything an administrator does from
the console goes through the functions below them that take ``actor`` and require manage_users.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, select

from collector import security
from collector.access import Action, Actor
from collector.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from collector.scope import Scope
from collector.types import utcnow
from collector.units import service as units
from collector.users import totp
from collector.users.models import ApiToken, ConsoleSession, PendingLogin, Role, User

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$"
API_TOKEN_PREFIX = "khien_pat_"
USER_LANGUAGES = ("vi", "en")  # the console's catalogues; Vietnamese first
IDLE_TIMEOUT = timedelta(minutes=30)  # a console session unused this long ends, whatever its expiry
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often (one write per page is waste)
PENDING_LOGIN_TTL = timedelta(minutes=5)  # time to type the second-factor code after the password
MAX_CODE_ATTEMPTS = 5  # wrong codes before a pending login is dropped (each also counts toward lockout)


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
    """Check a password with lockout after repeated failures; the caller commits the counters.

    For someone with a second factor the password alone is not a login: the failure counter is left
    as it is until the code is right too, so alternating a known password with code guesses cannot
    keep resetting it.
    """
    now = now or utcnow()
    user = get_by_username(session, username=username)
    if user is not None and user.locked_until and user.locked_until > now:
        security.verify_password(password, None)  # same cost as a real check
        raise Forbidden("account temporarily locked after repeated failures")
    ok = security.verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        if user is not None and user.is_active:
            _count_failure(session, user, now)
        raise Unauthorized("wrong username or password")
    if user.totp_enabled:
        return user
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session.add(user)
    return user


def _count_failure(session: Session, user: User, now: datetime) -> None:
    user.failed_logins += 1
    if user.failed_logins >= MAX_FAILED_LOGINS:
        user.locked_until = now + LOCKOUT
        user.failed_logins = 0
    session.add(user)


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


def get_console_session(session: Session, *, token: str, now: datetime | None = None) -> tuple[ConsoleSession, User]:
    """The live session and its user for a cookie value, or Unauthorized (expired, idle too long, unknown)."""
    now = now or utcnow()
    row = session.exec(select(ConsoleSession).where(
        ConsoleSession.token_hash == security.hash_token(token))).first()
    if row is None or row.expires_at <= now or (row.last_seen_at or row.created_at) + IDLE_TIMEOUT <= now:
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


def needs_touch(row: ConsoleSession, *, now: datetime | None = None) -> bool:
    """Whether this request should refresh the session's last_seen_at (at most once a minute)."""
    return (row.last_seen_at or row.created_at) + TOUCH_EVERY <= (now or utcnow())


def touch_console_session(session: Session, *, session_id: int, now: datetime | None = None) -> None:
    """Record activity on a console session, pushing its idle timeout back."""
    row = session.get(ConsoleSession, session_id)
    if row is not None:
        row.last_seen_at = now or utcnow()
        session.add(row)
        session.flush()


# --- the second factor at login --------------------------------------------------------------------

def start_pending_login(session: Session, *, user: User, next_path: str, source_ip: str | None) -> str:
    """The password was right and a code is due: a short-lived server-side state, named by a random token."""
    now = utcnow()
    session.execute(delete(PendingLogin).where(PendingLogin.expires_at <= now))
    token = security.new_secret()
    session.add(PendingLogin(user_id=user.id, token_hash=security.hash_token(token), next_path=next_path[:2048],
                             source_ip=source_ip, created_at=now, expires_at=now + PENDING_LOGIN_TTL))
    session.flush()
    return token


def get_pending_login(session: Session, *, token: str, now: datetime | None = None) -> PendingLogin:
    row = session.exec(select(PendingLogin).where(PendingLogin.token_hash == security.hash_token(token))).first()
    if row is None or row.expires_at <= (now or utcnow()):
        raise Unauthorized("the login has expired: start again")
    return row


def finish_pending_login(session: Session, *, token: str, code: str,
                         now: datetime | None = None) -> tuple[User, PendingLogin]:
    """Check the second-factor code of a pending login: the user (counters reset) or Unauthorized/Forbidden.

    A wrong code counts toward the account's lockout like a wrong password; the caller commits either way.
    """
    now = now or utcnow()
    pending = get_pending_login(session, token=token, now=now)
    user = session.get(User, pending.user_id)
    if user is None or not user.is_active or not user.totp_enabled or not user.totp_secret:
        session.delete(pending)
        raise Unauthorized("the login has expired: start again")
    if user.locked_until and user.locked_until > now:
        session.delete(pending)
        raise Forbidden("account temporarily locked after repeated failures")
    step = totp.matching_step(user.totp_secret, code, now=now, after_step=user.totp_last_step)
    if step is None:
        _count_failure(session, user, now)
        pending.attempts += 1
        if pending.attempts >= MAX_CODE_ATTEMPTS or user.locked_until:
            session.delete(pending)
        else:
            session.add(pending)
        raise Unauthorized("wrong code")
    user.totp_last_step = step
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session.add(user)
    session.delete(pending)
    return user, pending


def drop_pending_login(session: Session, *, token: str) -> None:
    session.execute(delete(PendingLogin).where(PendingLogin.token_hash == security.hash_token(token)))


# --- a person's own account: language and second factor --------------------------------------------

def _own_account(session: Session, actor: Actor) -> User:
    user = session.get(User, actor.user_id) if actor.user_id is not None else None
    if user is None or not user.is_active:
        raise NotFound("no such user")
    return user


def set_language(session: Session, *, actor: Actor, language: str) -> None:
    """Remember the console language the person chose (used on every later page and login)."""
    if language not in USER_LANGUAGES:
        raise InvalidInput(f"unknown language {language!r} (one of: {', '.join(USER_LANGUAGES)})")
    user = _own_account(session, actor)
    if user.language != language:
        user.language = language
        session.add(user)
        session.flush()


def begin_totp(session: Session, *, actor: Actor) -> str:
    """The secret to enrol in an authenticator app (the same one until confirmed); Conflict once enabled."""
    user = _own_account(session, actor)
    if user.totp_enabled:
        raise Conflict("the second factor is already enabled")
    if not user.totp_secret:
        user.totp_secret = totp.new_secret()
        session.add(user)
        session.flush()
    return user.totp_secret


def confirm_totp(session: Session, *, actor: Actor, code: str, now: datetime | None = None) -> None:
    """Enable the second factor once a code from the app proves it was set up right."""
    user = _own_account(session, actor)
    if user.totp_enabled:
        raise Conflict("the second factor is already enabled")
    if not user.totp_secret:
        raise InvalidInput("start the enrolment first")
    step = totp.matching_step(user.totp_secret, code, now=now or utcnow(), after_step=None)
    if step is None:
        raise InvalidInput("wrong code")
    user.totp_enabled = True
    user.totp_last_step = step  # the confirming code cannot then be replayed at login
    session.add(user)
    session.flush()


def disable_totp(session: Session, *, actor: Actor, code: str, now: datetime | None = None) -> None:
    """Turn the second factor off; a current code proves the phone (not only the session) is at hand."""
    user = _own_account(session, actor)
    if not user.totp_enabled or not user.totp_secret:
        raise Conflict("the second factor is not enabled")
    step = totp.matching_step(user.totp_secret, code, now=now or utcnow(), after_step=user.totp_last_step)
    if step is None:
        raise InvalidInput("wrong code")
    _clear_totp(user)
    session.add(user)
    session.flush()


def _clear_totp(user: User) -> None:
    user.totp_secret, user.totp_enabled, user.totp_last_step = None, False, None


# --- the administrator's changes to people -------------------------------------------------------------

def list_users(session: Session, *, actor: Actor) -> list[tuple[User, str | None]]:
    """Every user with their unit's code, by username; administrators only."""
    actor.require(Action.manage_users)
    codes = {u.id: u.code for u in units.list_(session, scope=actor.scope)}
    rows = session.exec(select(User).order_by(User.username)).all()
    return [(u, codes.get(u.unit_id) if u.unit_id is not None else None) for u in rows
            if u.unit_id is None or actor.scope.allows(u.unit_id)]


def get_user(session: Session, *, actor: Actor, user_id: int) -> User:
    """One user the administrator may manage; NotFound otherwise (as if it did not exist)."""
    actor.require(Action.manage_users)
    user = session.get(User, user_id)
    if user is None or (user.unit_id is not None and not actor.scope.allows(user.unit_id)):
        raise NotFound("no such user")
    return user


def add_user(session: Session, *, actor: Actor, username: str, password: str, role: str,
             unit_code: str | None) -> User:
    """An administrator adds a person with a role and (for unit officers) a unit."""
    actor.require(Action.manage_users)
    if unit_code:
        actor.require(Action.manage_users, unit_id=units.get_visible(session, scope=actor.scope, code=unit_code).id)
    return create(session, username=username, password=password, role=role, unit_code=unit_code or None)


def set_active(session: Session, *, actor: Actor, user_id: int, active: bool) -> User:
    """Deactivate (their sessions and pending logins end; tokens stop working) or reactivate a person."""
    user = get_user(session, actor=actor, user_id=user_id)
    if not active and user.id == actor.user_id:
        raise InvalidInput("you cannot deactivate your own account")
    if user.is_active != active:
        user.is_active = active
        session.add(user)
        if not active:
            _end_sessions(session, user)
        session.flush()
    return user


def reset_password(session: Session, *, actor: Actor, user_id: int, password: str) -> User:
    """Set a new password (told to the person out of band); their open sessions end and any lock lifts."""
    user = get_user(session, actor=actor, user_id=user_id)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password too short (at least {MIN_PASSWORD_LENGTH} characters)")
    user.password_hash = security.hash_password(password)
    user.failed_logins, user.locked_until = 0, None
    session.add(user)
    _end_sessions(session, user)
    session.flush()
    return user


def unlock(session: Session, *, actor: Actor, user_id: int) -> User:
    """Lift a lockout before it runs out (the person called and proved who they are)."""
    user = get_user(session, actor=actor, user_id=user_id)
    if user.locked_until is not None or user.failed_logins:
        user.failed_logins, user.locked_until = 0, None
        session.add(user)
        session.flush()
    return user


def reset_totp(session: Session, *, actor: Actor, user_id: int) -> User:
    """Remove a person's second factor (a lost phone); they log in with the password and enrol again."""
    user = get_user(session, actor=actor, user_id=user_id)
    if user.totp_enabled or user.totp_secret:
        _clear_totp(user)
        session.add(user)
        session.flush()
    return user


def _end_sessions(session: Session, user: User) -> None:
    for row in session.exec(select(ConsoleSession).where(ConsoleSession.user_id == user.id)).all():
        session.delete(row)
    for row in session.exec(select(PendingLogin).where(PendingLogin.user_id == user.id)).all():
        session.delete(row)


def issue_api_token(session: Session, *, actor: Actor, user_id: int, expires_in: timedelta | None) -> str:
    """A personal API token for a user (acting with that user's role and scope); the plaintext is shown once."""
    user = get_user(session, actor=actor, user_id=user_id)
    if not user.is_active:
        raise InvalidInput("the account is deactivated")
    if expires_in is not None and expires_in <= timedelta(0):
        raise InvalidInput("the expiry must be in the future")
    return create_api_token(session, username=user.username, expires_in=expires_in)


def list_api_tokens(session: Session, *, actor: Actor, user_id: int) -> list[ApiToken]:
    """A user's tokens, newest first (hashes only: a token cannot be shown again)."""
    user = get_user(session, actor=actor, user_id=user_id)
    return list(session.exec(select(ApiToken).where(ApiToken.user_id == user.id)
                             .order_by(ApiToken.id.desc())).all())


def revoke_api_token(session: Session, *, actor: Actor, user_id: int, token_id: int) -> ApiToken:
    """Revoke one of a user's tokens; it stops working on the next request."""
    user = get_user(session, actor=actor, user_id=user_id)
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound("no such token")
    if not row.revoked:
        row.revoked = True
        session.add(row)
        session.flush()
    return row
