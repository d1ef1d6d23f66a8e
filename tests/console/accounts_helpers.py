"""Builders for the account tests: a second factor switched on directly, codes for a given time step."""

from __future__ import annotations

import re
import time

import pyotp
from sqlmodel import select

from collector.db import Database
from collector.users import totp
from collector.users.models import ConsoleSession, User
from tests.console import helpers as h

SECRET_IN_PAGE = re.compile(r'class="secret mono">([A-Z2-7]+)<')


def enable_totp(db: Database, username: str) -> str:
    """Turn the second factor on for ``username`` with a fresh secret (no code used yet); the secret."""
    secret = totp.new_secret()
    with db.transaction() as s:
        user = s.exec(select(User).where(User.username == username)).one()
        user.totp_secret, user.totp_enabled, user.totp_last_step = secret, True, None
    return secret


def code(secret: str, *, steps_ahead: int = 0) -> str:
    """The code for the current 30-second step (or one ahead: still inside the ±1 window)."""
    return pyotp.TOTP(secret).at(time.time() + steps_ahead * totp.STEP_SECONDS)


def user_row(db: Database, username: str) -> User:
    with db.session() as s:
        return s.exec(select(User).where(User.username == username)).one()


def sessions_of(db: Database, username: str) -> list[ConsoleSession]:
    with db.session() as s:
        user = s.exec(select(User).where(User.username == username)).one()
        return list(s.exec(select(ConsoleSession).where(ConsoleSession.user_id == user.id)))


def submit_code(client, value: str):
    """Post a code on the second-step form, as a browser would (the form's CSRF token)."""
    form = client.get("/login/totp")
    assert form.status_code == 200, form.text
    return client.post("/login/totp", data={"code": value, "csrf_token": h.csrf_token(form.text)},
                       follow_redirects=False)


def page_csrf(client, path: str = "/hosts") -> str:
    return h.csrf_token(client.get(path).text)
