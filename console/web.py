"""Attach the web console to the server app: pages, static files, security headers, page errors."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.deps import SESSION_COOKIE
from console import i18n
from console.deps import CsrfRejected, LoginRequired, clear_session_cookie, login_url
from console.routes import admin, alerts, auth, hosts, public, remediation, reports, scores
from console.templating import render

STATIC_DIR = Path(__file__).parent / "static"
# Machine-facing JSON (agents, API clients) is left to the collector; everything else is the console.
API_PREFIX = "/api/"
SECURITY_HEADERS = {
    # No 'unsafe-inline' anywhere: templates carry no inline script or style, so injected markup
    # that slipped past escaping still could not run.
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders:
    """Pure ASGI middleware adding the console's security headers (no BaseHTTPMiddleware buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount(app: FastAPI) -> None:
    """Add the console to ``app``; catalogues are read here so a broken .po fails at startup."""
    i18n.load_all()
    for area in (auth, hosts, alerts, remediation, scores, admin, public, reports):
        app.include_router(area.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)


async def _to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    response = RedirectResponse(login_url(exc.next_path), status_code=303)
    if request.cookies.get(SESSION_COOKIE):  # expired or unknown: stop sending it
        clear_session_cookie(response, request.app.state.settings)
    return response


async def _csrf_rejected(request: Request, _exc: Exception) -> Response:
    return render(request, "error.html", {"status": 403}, status_code=403)
