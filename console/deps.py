"""Console page dependencies: the logged-in viewer (or a redirect to /login), CSRF checks, cookies.

The JSON API answers 401; a browser page instead sends the person to the login form, so these
dependencies raise console-only exceptions that ``console.web`` turns into redirects and HTML pages.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Request
from sqlalchemy.orm.attributes import set_committed_value
from starlette.responses import Response

from collector.access import Actor
from collector.deps import SESSION_COOKIE, DbDep, SessionDep, act_as
from collector.errors import Unauthorized
from collector.scope import Scope
from collector.security import new_secret
from collector.settings import Settings
from collector.users import service as users
from collector.users.models import User
from console import i18n

CSRF_FIELD = "csrf_token"
LOGIN_CSRF_COOKIE = "khien_login_csrf"
# With TLS the __Host- prefix forbids a Domain attribute, so a sibling subdomain cannot plant
# ("toss") its own login CSRF cookie and defeat the double-submit check.
LOGIN_CSRF_COOKIE_SECURE = "__Host-khien_login_csrf"
LOGIN_CSRF_TTL = timedelta(hours=2)


class LoginRequired(Exception):
    """No valid console session: the page answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    """A form arrived without the token its session (or login page) issued: the page answers 403."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person looking at a console page, their unit scope and their session's CSRF token.

    The session token itself stays out: a viewer is handed to templates, which must never see it.
    """

    user: User
    scope: Scope
    csrf_token: str
    actor: Actor


def current_viewer(request: Request, session: SessionDep, db: DbDep) -> Viewer:
    """The logged-in viewer from the session cookie; otherwise LoginRequired (also after 30 idle minutes).

    Two small writes ride on page views: the session's last_seen_at (at most once a minute, for the
    idle timeout) and, when the page was asked for with ``?lang=``, the person's saved language.
    """
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired(requested_path(request))
    try:
        console_session, user = users.get_console_session(session, token=token)
    except Unauthorized:
        raise LoginRequired(requested_path(request)) from None
    actor = act_as(request, session, user, via="console")  # every change this page makes is audited
    chosen = i18n.requested_language(request)
    if users.needs_touch(console_session) or (chosen and chosen != user.language):
        with db.transaction(actor=actor) as writing:  # the language change is audited as the person's
            users.touch_console_session(writing, session_id=console_session.id)
            if chosen:
                users.set_language(writing, actor=actor, language=chosen)
        if chosen:  # this request's copy, without marking it changed (the row is already written above)
            set_committed_value(user, "language", chosen)
    request.state.user_language = chosen or user.language  # console.i18n.language_of reads it
    return Viewer(user=user, scope=actor.scope, csrf_token=console_session.csrf_token, actor=actor)


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


def tokens_match(sent: object, expected: str | None) -> bool:
    """Constant-time comparison that refuses missing or empty tokens."""
    if not isinstance(sent, str) or not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


async def csrf_checked_viewer(request: Request, viewer: ViewerDep) -> Viewer:
    """The viewer, after checking the form's CSRF token against their session's."""
    form = await request.form()
    if not tokens_match(form.get(CSRF_FIELD), viewer.csrf_token):
        raise CsrfRejected
    return viewer


CsrfCheckedViewer = Annotated[Viewer, Depends(csrf_checked_viewer)]


def safe_next(path: str | None) -> str:
    """A same-site path to return to after login; anything else (//evil, https://…) becomes /hosts."""
    # Browsers drop tabs/newlines and read backslashes as slashes, so "/\t/evil" would leave the site.
    unsafe = (not path or not path.startswith("/") or path.startswith("//") or "\\" in path
              or any(ch < " " or ch == "\x7f" for ch in path))
    return "/hosts" if unsafe or path in ("/", "/login", "/logout") else path


def requested_path(request: Request) -> str:
    """Path and query of this request, to come back to after logging in."""
    query = request.url.query
    return safe_next(f"{request.url.path}?{query}" if query else request.url.path)


def login_url(next_path: str) -> str:
    return "/login" if next_path == "/hosts" else f"/login?{urlencode({'next': next_path})}"


def login_csrf_cookie_name(settings: Settings) -> str:
    return LOGIN_CSRF_COOKIE_SECURE if settings.cookie_secure else LOGIN_CSRF_COOKIE


def login_csrf_token(request: Request, settings: Settings) -> str:
    """The pre-session CSRF token: reuse the browser's (so two open login tabs both work) or mint one."""
    existing = request.cookies.get(login_csrf_cookie_name(settings))
    return existing if existing and 20 <= len(existing) <= 64 else new_secret(24)


def set_login_csrf_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(login_csrf_cookie_name(settings), token, max_age=int(LOGIN_CSRF_TTL.total_seconds()),
                        path="/", httponly=True, samesite="strict", secure=settings.cookie_secure)


def clear_login_csrf_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(login_csrf_cookie_name(settings), path="/", httponly=True, samesite="strict",
                           secure=settings.cookie_secure)


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure under TLS, living as long as the session."""
    response.set_cookie(SESSION_COOKIE, token, max_age=settings.session_ttl_s, path="/", httponly=True,
                        samesite="lax", secure=settings.cookie_secure)


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure)
