"""Builders for the events partitioning and retention tests: a database of one backend, a unit with a
host, events stamped with chosen receive times, and where they are stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from collector.db import Database
from collector.events import service as events
from collector.events.models import Event
from tests.conftest import BACKENDS, new_database_url

FAR_FUTURE = datetime(2099, 5, 1, tzinfo=UTC)  # a clock once set far ahead


def database_of(backend: str, tmp_path, request: pytest.FixtureRequest) -> Iterator[Database]:
    """A migrated database of one backend (for what only one backend does)."""
    if backend not in BACKENDS:
        pytest.skip(f"{backend} excluded by KHIEN_TEST_BACKENDS")
    database = Database(new_database_url(backend, tmp_path, request))
    yield database
    database.dispose()


def seed_host(db: Database) -> tuple[int, int]:
    """A unit and one host in it: (unit id, host id)."""
    with db.engine.begin() as conn:
        unit = conn.execute(text("INSERT INTO units (code, name, kind, created_at) "
                                 "VALUES ('P', 'Tỉnh', 'province', CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
        host = conn.execute(text("INSERT INTO hosts (unit_id, hostname, macs, first_seen, inventory_hashes, "
                                 "internet_facing) VALUES (:u, 'web01', '[]', CURRENT_TIMESTAMP, '{}', false) "
                                 "RETURNING id"), {"u": unit}).scalar_one()
    return unit, host


def failure(unit: int, host: int, *, ts: datetime, received_at: datetime, pid: int = 1) -> dict[str, Any]:
    """An ``auth.failure`` row as ingest stores it (the brute-force rule counts eight of them)."""
    return {"unit_id": unit, "host_id": host, "type": "auth.failure", "ts": ts, "received_at": received_at,
            "origin": "agent", "data": {"action": "failed_password", "outcome": "failure", "user": "root",
                                        "source_ip": "203.0.113.9", "process": "sshd", "pid": pid}}


def add(db: Database, rows: list[dict[str, Any]]) -> None:
    with db.transaction() as s:
        events.add_many(s, rows=rows)


def add_received(db: Database, unit: int, host: int, received: list[datetime]) -> None:
    """One event per receive time; the agent's own times are years off on purpose (retention and
    partitioning go by receipt)."""
    add(db, [failure(unit, host, ts=FAR_FUTURE - timedelta(days=i), received_at=r, pid=i)
             for i, r in enumerate(received)])


def stored(db: Database) -> list[datetime]:
    """The receive times of the stored events, in id order."""
    table = Event.__table__.c
    with db.engine.connect() as conn:
        return list(conn.execute(select(table.received_at).order_by(table.id)).scalars())
