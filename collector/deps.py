"""FastAPI dependencies shared by the collector's routes and the console (as Annotated aliases)."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from collector.access import Actor
from collector.audit import tracking
from collector.db import Database
from collector.errors import Forbidden, Unauthorized
from collector.metrics import IngestMetrics
from collector.scope import Scope
from collector.settings import Settings
from collector.users import service as users
from collector.users.models import User

SESSION_COOKIE = "khien_session"


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_metrics(request: Request) -> IngestMetrics:
    return request.app.state.metrics


def get_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    with db.session() as session:
        yield session


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[IngestMetrics, Depends(get_metrics)]
SessionDep = Annotated[Session, Depends(get_session)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"


def client_ip(request: Request) -> str | None:
    client = getattr(request, "client", None)  # None when the ASGI server does not say (and in unit tests)
    return client.host if client else None


def act_as(request: Request, session: Session, user: User, *, via: str) -> Actor:
    """The caller as an ``Actor``, attached to the request's session so every change it makes is audited."""
    actor = Actor(username=user.username, role=user.role, scope=users.scope_for(session, user=user),
                  user_id=user.id, source_ip=client_ip(request), via=via)
    tracking.attach(session, actor)
    return actor


def current_user(request: Request, session: SessionDep) -> User:
    """The person calling: a Bearer API token, else the console session cookie (CSRF-checked on writes)."""
    token = bearer_token(request)
    if token:
        user = users.get_by_api_token(session, token=token)
        act_as(request, session, user, via="api")
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        console_session, user = users.get_console_session(session, token=cookie)
        # A browser sends the cookie on cross-site requests too: unsafe methods must prove origin.
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
                request.headers.get(CSRF_HEADER, ""), console_session.csrf_token):
            raise Forbidden("missing or wrong CSRF token")
        act_as(request, session, user, via="console")
        return user
    raise Unauthorized("authentication required")


CurrentUser = Annotated[User, Depends(current_user)]


def caller_scope(session: SessionDep, user: CurrentUser) -> Scope:
    actor = tracking.actor_of(session)
    return actor.scope if actor is not None else users.scope_for(session, user=user)


def current_actor(session: SessionDep, user: CurrentUser) -> Actor:
    """The caller as the services' ``Actor`` (role, unit scope, source address), audited."""
    actor = tracking.actor_of(session)
    assert actor is not None and actor.user_id == user.id  # current_user attached it
    return actor


CallerScope = Annotated[Scope, Depends(caller_scope)]
CurrentActor = Annotated[Actor, Depends(current_actor)]
