"""Frozen snapshots are immutable in the database itself, not only by the service's refusal.

A trigger rejects any UPDATE or DELETE of ``score_snapshots`` on SQLite and PostgreSQL, so neither a
bug nor a hand-run SQL statement can change a published month; corrections go through appeals.
``suspended`` lifts it for maintenance scripts (the benchmark re-freezing its own month), never for
the application.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text

MESSAGE = "score snapshots are immutable once frozen"


def install(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"""
            CREATE OR REPLACE FUNCTION khien_snapshot_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$"""))
        conn.execute(text("CREATE TRIGGER score_snapshots_immutable BEFORE UPDATE OR DELETE ON score_snapshots "
                          "FOR EACH ROW EXECUTE FUNCTION khien_snapshot_immutable()"))
    else:
        for event in ("UPDATE", "DELETE"):
            conn.execute(text(f"CREATE TRIGGER score_snapshots_no_{event.lower()} BEFORE {event} ON score_snapshots "
                              f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"))


def remove(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP TRIGGER IF EXISTS score_snapshots_immutable ON score_snapshots"))
        conn.execute(text("DROP FUNCTION IF EXISTS khien_snapshot_immutable()"))
    else:
        for event in ("update", "delete"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS score_snapshots_no_{event}"))


@contextmanager
def suspended(conn: Connection) -> Iterator[None]:
    """Maintenance only: the trigger is dropped for the block (in the caller's transaction) and put back."""
    remove(conn)
    try:
        yield
    finally:
        install(conn)
