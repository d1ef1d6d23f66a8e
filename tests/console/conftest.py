"""Console fixtures: the whole server app (collector + console) over a seeded database.

``db`` comes from tests/conftest.py, so every console test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from collector.settings import Settings, load_settings
from khien.app import build_app
from tests.console import helpers as h


@pytest.fixture
def world(db) -> h.World:
    return h.seed_world(db)


@pytest.fixture
def settings(db, tmp_path) -> Settings:
    """Plain-HTTP settings (TestClient speaks http://), so cookies go without the Secure flag."""
    return dataclasses.replace(load_settings(data_dir=tmp_path, database_url=db.url), cookie_secure=False)


@pytest.fixture
def client(db, settings, world) -> Iterator[TestClient]:
    with TestClient(build_app(settings, db=db)) as c:
        yield c


@pytest.fixture
def https_client(db, tmp_path, world) -> Iterator[TestClient]:
    """The production cookie policy (Secure cookies) over https://, as behind the TLS proxy."""
    settings = dataclasses.replace(load_settings(data_dir=tmp_path, database_url=db.url), cookie_secure=True)
    with TestClient(build_app(settings, db=db), base_url="https://testserver") as c:
        yield c


@pytest.fixture
def admin(client) -> TestClient:
    return h.logged_in(client, "admin")


@pytest.fixture
def officer1(client) -> TestClient:
    return h.logged_in(client, "officer1")
