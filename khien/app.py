"""Build the whole server application: collector API plus the web console."""

from __future__ import annotations

from fastapi import FastAPI

from collector.app import create_app
from collector.db import Database
from collector.settings import Settings
from console.web import mount as mount_console


def build_app(settings: Settings, *, db: Database | None = None) -> FastAPI:
    app = create_app(settings, db=db)
    mount_console(app)
    return app
