from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from collector.app import create_app
from collector.db import Database
from collector.settings import load_settings
from tests.collector import helpers as h
from tests.collector.events_helpers import database_of


@pytest.fixture
def settings(db, tmp_path):
    return dataclasses.replace(load_settings(data_dir=tmp_path, database_url=db.url), cookie_secure=False,
                               scheduler=False)  # jobs are tested on their own (test_scheduler)


@pytest.fixture
def client(db, settings) -> Iterator[TestClient]:
    h.seed_units(db)
    with TestClient(create_app(settings, db=db)) as c:
        yield c


@pytest.fixture
def enrolled(client, db) -> dict:
    """An agent enrolled in unit D1; returns its credential headers and ids."""
    resp = client.post("/api/v1/agent/enroll", json={"token": h.enroll_token(db), **h.identity()})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    body["headers"] = h.batch_headers(body)
    return body


@pytest.fixture
def pg(tmp_path, request) -> Iterator[Database]:
    """A PostgreSQL database at head (the suite's template, cloned), for what only PostgreSQL does."""
    yield from database_of("postgresql", tmp_path, request)


@pytest.fixture
def sqlite_db(tmp_path, request) -> Iterator[Database]:
    """A SQLite database at head, for what only SQLite does."""
    yield from database_of("sqlite", tmp_path, request)
