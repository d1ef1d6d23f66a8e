"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``KHIEN_TEST_PG_URL`` (default: the local server's ``test`` database). It is
never skipped silently: set ``KHIEN_TEST_BACKENDS=sqlite`` to opt out explicitly.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from collector.db import Database

PG_URL = os.environ.get("KHIEN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = [b.strip() for b in os.environ.get("KHIEN_TEST_BACKENDS", "sqlite,postgresql").split(",") if b.strip()]


def _pg_admin():
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_size=1)


def _with_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated once; each test clones it (CREATE DATABASE ... TEMPLATE)."""
    name = f"khien_tpl_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(_with_db(PG_URL, name))
    db.upgrade()
    db.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def new_database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database of the given backend, dropped at the end of the test."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'khien.db'}"
        db = Database(url)
        db.upgrade()
        db.dispose()
        return url
    return new_pg_database(request, template=request.getfixturevalue("pg_template"))


def new_pg_database(request: pytest.FixtureRequest, *, template: str | None = None, prefix: str = "khien_t") -> str:
    """The URL of a new PostgreSQL database (a copy of ``template``, or empty), dropped at the end of the test."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    request.addfinalizer(drop)
    return _with_db(PG_URL, name)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return new_database_url(request.param, tmp_path, request)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
