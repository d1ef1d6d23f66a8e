"""Console sign-in and sign-out: the login form, password check with lockout, the second-factor step,
throttling per source address, the session cookie; and a person's own account page (language, TOTP)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from collector.access import Actor
from collector.audit import service as audit
from collector.deps import SESSION_COOKIE, DbDep, SessionDep, SettingsDep, client_ip
from collector.errors import Conflict, Forbidden, InvalidInput, RateLimited, Unauthorized
from collector.scope import Scope
from collector.settings import Settings
from collector.types import utcnow
from collector.users import service as users
from collector.users import totp
from collector.users.models import User
from collector.users.throttle import LoginThrottle
from console import i18n
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
from console.templating import LANG_COOKIE_MAX_AGE, render

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form(max_length=4096)]
PENDING_COOKIE = "khien_pending_login"
PENDING_COOKIE_SECURE = "__Host-khien_pending_login"  # see LOGIN_CSRF_COOKIE_SECURE: no subdomain may plant it
_throttle_lock = threading.Lock()


def login_throttle(request: Request) -> LoginThrottle:
    """The app's per-address failure counter (one per app, created on first use)."""
    state = request.app.state
    with _throttle_lock:
        throttle = getattr(state, "login_throttle", None)
        if throttle is None:
            throttle = state.login_throttle = LoginThrottle()
    return throttle


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
    throttle = login_throttle(request)
    context = {"csrf_token": csrf_token, "next": safe_next(next), "username": username}
    try:
        throttle.check(ip)
    except RateLimited as exc:
        return _throttled(request, "login.html", context, exc)
    try:
        user = users.authenticate(session, username=username, password=password)
    except (Unauthorized, Forbidden) as exc:
        throttle.failed(ip)
        known = users.get_by_username(session, username=username)
        audit.log(session, actor=Actor(username=username[:128], role=known.role if known else "",
                                       scope=Scope.units(frozenset()), source_ip=ip, via="console"),
                  action="login_locked" if isinstance(exc, Forbidden) else "login_failed", target_type="users",
                  target_id=known.id if known else None, unit_id=known.unit_id if known else None)
        session.commit()  # the failure counter, any lockout and the audit entry must survive this request
        context["error"] = "locked" if isinstance(exc, Forbidden) else "invalid"
        return render(request, "login.html", context, status_code=exc.status_code)
    if user.totp_enabled:  # the password is right; the session waits for the code
        token = users.start_pending_login(session, user=user, next_path=safe_next(next), source_ip=ip)
        session.commit()
        response = RedirectResponse("/login/totp", status_code=303)
        response.set_cookie(_pending_cookie_name(settings), token, path="/", httponly=True, samesite="strict",
                            max_age=int(users.PENDING_LOGIN_TTL.total_seconds()), secure=settings.cookie_secure)
        return response
    return _logged_in(request, session, settings, user, next_path=safe_next(next))


@router.get("/login/totp")
def totp_form(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """The second step: the code from the authenticator app (only with a live pending login)."""
    token = request.cookies.get(_pending_cookie_name(settings))
    try:
        users.get_pending_login(session, token=token or "")
    except Unauthorized:
        return _restart_login(settings)
    csrf = login_csrf_token(request, settings)
    response = render(request, "login_totp.html", {"csrf_token": csrf})
    set_login_csrf_cookie(response, csrf, settings)
    return response


@router.post("/login/totp")
def totp_login(request: Request, session: SessionDep, settings: SettingsDep, code: FormText = "",
               csrf_token: FormText = "") -> Response:
    """Check the code: a wrong one counts toward the lockout and the address's throttle; a used one is refused."""
    if not tokens_match(csrf_token, request.cookies.get(login_csrf_cookie_name(settings))):
        raise CsrfRejected
    ip = client_ip(request)
    throttle = login_throttle(request)
    try:
        throttle.check(ip)
    except RateLimited as exc:
        return _throttled(request, "login_totp.html", {"csrf_token": csrf_token}, exc)
    token = request.cookies.get(_pending_cookie_name(settings)) or ""
    try:
        pending = users.get_pending_login(session, token=token)
    except Unauthorized:
        return _restart_login(settings)
    user, next_path = session.get(User, pending.user_id), pending.next_path
    try:
        users.finish_pending_login(session, token=token, code=code)
    except (Unauthorized, Forbidden) as exc:
        throttle.failed(ip)
        if user is not None:
            audit.log(session, actor=Actor(username=user.username, role=user.role, scope=Scope.units(frozenset()),
                                           source_ip=ip, via="console"),
                      action="login_locked" if isinstance(exc, Forbidden) else "login_failed", target_type="users",
                      target_id=user.id, unit_id=user.unit_id, after={"factor": "totp"})
        session.commit()  # counters, lockout, attempts and the audit entry survive the refusal
        if isinstance(exc, Forbidden) or not _pending_alive(session, token):
            locked = isinstance(exc, Forbidden) or bool(user and user.locked_until and user.locked_until > utcnow())
            response = render(request, "login.html", {
                "csrf_token": csrf_token, "next": next_path, "username": user.username if user else "",
                "error": "locked" if locked else "restart"}, status_code=exc.status_code)
            _clear_pending_cookie(response, settings)
            return response
        return render(request, "login_totp.html", {"csrf_token": csrf_token, "error": "code"},
                      status_code=exc.status_code)
    assert user is not None
    response = _logged_in(request, session, settings, user, next_path=next_path)
    _clear_pending_cookie(response, settings)
    return response


def _logged_in(request: Request, session: SessionDep, settings: Settings, user: User, *, next_path: str) -> Response:
    """Start the session (the password, and the code if any, were right) and go where the person was heading."""
    ip = client_ip(request)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # a fresh token on every login: an old (possibly planted) session never carries over
        users.delete_console_session(session, token=previous)
    new = users.create_console_session(session, user=user, ttl=timedelta(seconds=settings.session_ttl_s),
                                       source_ip=ip)
    audit.log(session, actor=Actor(username=user.username, role=user.role, user_id=user.id, scope=Scope.everything(),
                                   source_ip=ip, via="console"),
              action="login", target_type="users", target_id=user.id, unit_id=user.unit_id)
    session.commit()
    response = RedirectResponse(safe_next(next_path), status_code=303)
    set_session_cookie(response, new.token, settings)
    clear_login_csrf_cookie(response, settings)
    if user.language:  # a saved choice wins over whatever this browser last used (a fresh browser gets it too)
        response.set_cookie(i18n.LANG_COOKIE, user.language, max_age=LANG_COOKIE_MAX_AGE, path="/",
                            httponly=True, samesite="lax", secure=settings.cookie_secure)
    return response


def _throttled(request: Request, template: str, context: dict, exc: RateLimited) -> Response:
    response = render(request, template, {**context, "error": "throttled",
                                          "retry_minutes": max(1, -(-exc.retry_after // 60))}, status_code=429)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _pending_cookie_name(settings: Settings) -> str:
    return PENDING_COOKIE_SECURE if settings.cookie_secure else PENDING_COOKIE


def _clear_pending_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(_pending_cookie_name(settings), path="/", httponly=True, samesite="strict",
                           secure=settings.cookie_secure)


def _restart_login(settings: Settings) -> Response:
    response = RedirectResponse("/login", status_code=303)
    _clear_pending_cookie(response, settings)
    return response


def _pending_alive(session: SessionDep, token: str) -> bool:
    try:
        users.get_pending_login(session, token=token)
    except Unauthorized:
        return False
    return True


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


# --- the person's own account: language and second factor ---------------------------------------

@router.get("/account")
def account_page(request: Request, viewer: ViewerDep) -> Response:
    return render(request, "account.html", {"viewer": viewer, "active": "account"})


@router.post("/account/language")
def save_language(request: Request, viewer: CsrfCheckedViewer, db: DbDep, language: FormText = "") -> Response:
    """Save the console language on the account (the top bar's ?lang= links save it too)."""
    try:
        with db.transaction(actor=viewer.actor) as session:
            users.set_language(session, actor=viewer.actor, language=language)
    except InvalidInput:
        return render(request, "account.html", {"viewer": viewer, "active": "account", "error": "language"},
                      status_code=422)
    response = RedirectResponse("/account", status_code=303)
    response.set_cookie(i18n.LANG_COOKIE, language, max_age=LANG_COOKIE_MAX_AGE, path="/", httponly=True,
                        samesite="lax", secure=request.app.state.settings.cookie_secure)
    return response


@router.get("/account/totp")
def totp_page(request: Request, viewer: ViewerDep) -> Response:
    """Second-factor status; while enrolling (not yet confirmed) the secret and its otpauth URI."""
    return _totp_page(request, viewer)


@router.post("/account/totp")
def totp_change(request: Request, viewer: CsrfCheckedViewer, db: DbDep, action: FormText = "",
                code: FormText = "") -> Response:
    """start (make a secret) → confirm (a code from the app enables it); disable (a code turns it off)."""
    steps = {"start": lambda s: users.begin_totp(s, actor=viewer.actor),
             "confirm": lambda s: users.confirm_totp(s, actor=viewer.actor, code=code),
             "disable": lambda s: users.disable_totp(s, actor=viewer.actor, code=code)}
    if action not in steps:
        return _totp_page(request, viewer, error="action", status_code=422)
    try:
        with db.transaction(actor=viewer.actor) as session:
            steps[action](session)
    except (InvalidInput, Conflict) as exc:
        return _totp_page(request, viewer, error="code" if isinstance(exc, InvalidInput) else "state",
                          status_code=exc.status_code)
    return RedirectResponse("/account/totp", status_code=303)


def _totp_page(request: Request, viewer: ViewerDep, *, error: str | None = None, status_code: int = 200) -> Response:
    # Fresh from the database: a failed POST may have left this request's copy of the user behind.
    with request.app.state.db.session() as session:
        user = session.get(User, viewer.user.id)
    enrolling = user is not None and not user.totp_enabled and bool(user.totp_secret)
    return render(request, "account_totp.html", {
        "viewer": viewer, "active": "account", "enabled": bool(user and user.totp_enabled), "enrolling": enrolling,
        # The secret is shown only until it is confirmed; once enabled it never leaves the server again.
        "secret": user.totp_secret if enrolling else None,
        "uri": totp.provisioning_uri(user.totp_secret, username=user.username) if enrolling else None,
        "error": error}, status_code=status_code)
