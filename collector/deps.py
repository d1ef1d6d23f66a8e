"""FastAPI dependencies shared by the collector's routes and the console (as Annotated aliases)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from collector.db import Database
from collector.errors import Unauthorized
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


def current_user(request: Request, session: SessionDep) -> User:
    """The person calling: a Bearer API token, else the console session cookie."""
    token = bearer_token(request)
    if token:
        return users.get_by_api_token(session, token=token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return users.get_console_session(session, token=cookie)[1]
    raise Unauthorized("authentication required")


CurrentUser = Annotated[User, Depends(current_user)]


def caller_scope(session: SessionDep, user: CurrentUser) -> Scope:
    return users.scope_for(session, user=user)


CallerScope = Annotated[Scope, Depends(caller_scope)]
