"""Console sign-in and sign-out: the login form, password check with lockout, session cookie."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from collector.access import Actor
from collector.audit import service as audit
from collector.deps import SESSION_COOKIE, SessionDep, SettingsDep, client_ip
from collector.errors import Forbidden, Unauthorized
from collector.scope import Scope
from collector.users import service as users
from console.deps import (
    CsrfCheckedViewer,
    CsrfRejected,
    ViewerDep,
    clear_login_csrf_cookie,
    clear_session_cookie,
    login_csrf_cookie_name,
    login_csrf_token,
    safe_next,
    set_login_csrf_cookie,
    set_session_cookie,
    tokens_match,
)
from console.templating import render

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form(max_length=4096)]


@router.get("/")
def home(_viewer: ViewerDep) -> RedirectResponse:
    """The hosts list for someone logged in (LoginRequired sends everyone else to /login)."""
    return RedirectResponse("/hosts", status_code=303)


@router.get("/login")
def login_form(request: Request, session: SessionDep, settings: SettingsDep, next: str | None = None) -> Response:
    """The login form, with a fresh pre-session CSRF token in a cookie and a hidden field."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and _is_live(session, cookie):
        return RedirectResponse(safe_next(next), status_code=303)
    token = login_csrf_token(request, settings)
    response = render(request, "login.html", {"csrf_token": token, "next": safe_next(next)})
    set_login_csrf_cookie(response, token, settings)
    return response


@router.post("/login")
def login(request: Request, session: SessionDep, settings: SettingsDep, username: FormText = "",
          password: FormText = "", csrf_token: FormText = "", next: FormText = "") -> Response:
    """Check the password; on success start a session and go where the person was heading."""
    # No session exists yet, so the CSRF check is double-submit: the form must echo the cookie.
    if not tokens_match(csrf_token, request.cookies.get(login_csrf_cookie_name(settings))):
        raise CsrfRejected
    ip = client_ip(request)
    try:
        user = users.authenticate(session, username=username, password=password)
    except (Unauthorized, Forbidden) as exc:
        known = users.get_by_username(session, username=username)
        audit.log(session, actor=Actor(username=username[:128], role=known.role if known else "",
                                       scope=Scope.units(frozenset()), source_ip=ip, via="console"),
                  action="login_locked" if isinstance(exc, Forbidden) else "login_failed", target_type="users",
                  target_id=known.id if known else None, unit_id=known.unit_id if known else None)
        session.commit()  # the failure counter, any lockout and the audit entry must survive this request
        context = {"csrf_token": csrf_token, "next": safe_next(next), "username": username,
                   "error": "locked" if isinstance(exc, Forbidden) else "invalid"}
        return render(request, "login.html", context, status_code=exc.status_code)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # a fresh token on every login: an old (possibly planted) session never carries over
        users.delete_console_session(session, token=previous)
    new = users.create_console_session(session, user=user, ttl=timedelta(seconds=settings.session_ttl_s),
                                       source_ip=ip)
    audit.log(session, actor=Actor(username=user.username, role=user.role, user_id=user.id, scope=Scope.everything(),
                                   source_ip=ip, via="console"),
              action="login", target_type="users", target_id=user.id, unit_id=user.unit_id)
    session.commit()
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, new.token, settings)
    clear_login_csrf_cookie(response, settings)
    return response


@router.post("/logout")
def logout(request: Request, viewer: CsrfCheckedViewer, session: SessionDep,
           settings: SettingsDep) -> RedirectResponse:
    """End the session server-side (the old cookie stops working) and clear the cookie."""
    # The CSRF-checked viewer dependency has already proved this cookie names a live session.
    users.delete_console_session(session, token=request.cookies[SESSION_COOKIE])
    audit.log(session, actor=viewer.actor, action="logout", target_type="users", target_id=viewer.user.id,
              unit_id=viewer.user.unit_id)
    session.commit()
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    return response


def _is_live(session: SessionDep, token: str) -> bool:
    try:
        users.get_console_session(session, token=token)
    except Unauthorized:
        return False
    return True
