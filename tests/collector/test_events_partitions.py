"""Events partitioned by month of receipt on PostgreSQL (migration 0019): the migration, where rows land,
partitions made ahead from several processes at once, and the way back (downgrade); SQLite untouched."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import select

from collector.alerts import service as alerts
from collector.db import Database, alembic_config
from collector.detection import DetectionWorker
from collector.events import partitions
from collector.events import service as events
from collector.events.models import Event
from collector.scope import Scope
from collector.types import utcnow
from rules.detect import load_rules
from tests.collector.events_helpers import add, failure, seed_host


def where_rows_are(db: Database) -> dict[int, str]:
    """Event id -> the table (partition) that holds it."""
    with db.engine.connect() as conn:
        return dict(conn.execute(text("SELECT id, tableoid::regclass::text FROM events")).all())


def attached(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.execute(text("SELECT inhrelid::regclass::text FROM pg_inherits "
                                     "WHERE inhparent = 'events'::regclass")).scalars())


def qualified(at: datetime) -> str:
    return f"{partitions.SCHEMA}.{partitions.for_month(at).name}"


DEFAULT = f"{partitions.SCHEMA}.{partitions.DEFAULT_NAME}"


def migrate(db: Database, revision: str, *, down: bool = False) -> None:
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def test_events_is_range_partitioned_on_receive_time_with_months_ahead_and_a_default(pg):
    with pg.engine.connect() as conn:
        strategy, key = conn.execute(text(
            "SELECT pt.partstrat, a.attname FROM pg_partitioned_table pt "
            "JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0] "
            "WHERE pt.partrelid = 'events'::regclass")).one()
        primary_key = conn.execute(text("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                        "WHERE conrelid = 'events'::regclass AND contype = 'p'")).scalar_one()
    assert (strategy, key) == ("r", "received_at")
    assert primary_key == "PRIMARY KEY (id, received_at)"
    this_month = partitions.month_of(utcnow())
    months = {qualified(partitions.add_months(this_month, i)) for i in range(partitions.MONTHS_AHEAD + 1)}
    assert months | {DEFAULT} <= attached(pg)


def test_rows_land_in_the_month_they_were_received_whatever_the_agent_clock_says(pg):
    unit, host = seed_host(pg)
    now = utcnow()
    next_month = partitions.add_months(partitions.month_of(now), 1)
    three_months_ago = partitions.add_months(partitions.month_of(now), -3) + timedelta(days=4)
    far_future = datetime(2099, 5, 1, tzinfo=UTC)
    add(pg, [failure(unit, host, ts=now - timedelta(days=900), received_at=now),  # agent clock years behind
             failure(unit, host, ts=far_future, received_at=now),  # agent clock far ahead
             failure(unit, host, ts=now, received_at=next_month + timedelta(hours=1)),
             failure(unit, host, ts=now, received_at=three_months_ago),  # no partition for it (yet)
             failure(unit, host, ts=now, received_at=far_future)])  # a server clock once badly wrong
    first = min(where_rows_are(pg))
    assert [where_rows_are(pg)[first + i] for i in range(5)] == [
        qualified(now), qualified(now), qualified(next_month), DEFAULT, DEFAULT]

    report = partitions.maintain(pg, now=now)
    # The stranded month gets its partition and its row; the far-future row stays in DEFAULT, counted.
    assert report.created == [partitions.for_month(three_months_ago).name]
    assert (report.moved_from_default, report.left_in_default) == (1, 1)
    assert where_rows_are(pg)[first + 3] == qualified(three_months_ago)
    assert where_rows_are(pg)[first + 4] == DEFAULT
    assert partitions.maintain(pg, now=now).created == []  # nothing left to do


def test_months_ahead_are_created_once_when_several_processes_race(pg):
    later = partitions.add_months(partitions.month_of(utcnow()), 7) + timedelta(days=3)
    engines = [Database(pg.url) for _ in range(4)]  # own sessions: to PostgreSQL, as separate processes are
    reports: list[partitions.Maintenance] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(engines))

    def run(database: Database) -> None:
        start.wait()
        try:
            reports.append(partitions.maintain(database, now=later))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert errors == []
    # The template made this month and the next ones; months 7 to 9 ahead are new, each made once.
    created = sorted(name for r in reports for name in r.created)
    wanted = [partitions.for_month(partitions.add_months(partitions.month_of(later), i)).name
              for i in range(partitions.MONTHS_AHEAD + 1)]
    assert created == wanted
    with pg.engine.connect() as conn:
        assert set(wanted) <= {p.name for p in partitions.list_(conn)}


@pytest.fixture
def at_0018(pg) -> tuple[Database, int, int]:
    """A database migrated step by step to 0018 (plain ``events``), with a unit and a host."""
    with pg.engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA public CASCADE; DROP SCHEMA IF EXISTS {partitions.SCHEMA}; "
                          "CREATE SCHEMA public"))
    migrate(pg, "0018")
    unit, host = seed_host(pg)
    return pg, unit, host


def test_migrating_a_database_with_events_moves_every_row_and_ids_continue(at_0018):
    db, unit, host = at_0018
    now = utcnow()
    received = [now - timedelta(days=70), now - timedelta(days=40), now - timedelta(days=1), now]
    t0 = now - timedelta(minutes=10)
    add(db, [failure(unit, host, ts=t0 + timedelta(seconds=i), received_at=r, pid=i) for i, r in enumerate(received)])
    with db.engine.connect() as conn:
        before = conn.execute(text("SELECT id, received_at FROM events ORDER BY id")).all()
        assert conn.execute(text("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass")).scalar_one() == "r"

    migrate(db, "head")
    with db.engine.connect() as conn:
        after = conn.execute(text("SELECT id, received_at FROM events ORDER BY id")).all()
        assert partitions.is_partitioned(conn)
    assert after == before
    placed = where_rows_are(db)
    assert [placed[row.id] for row in before] == [qualified(r) for r in received]
    # New events continue the same sequence, and detection reads old and new rows as one stream.
    add(db, [failure(unit, host, ts=t0 + timedelta(seconds=10 + i), received_at=utcnow(), pid=10 + i)
             for i in range(4)])
    new_ids = sorted(set(where_rows_are(db)) - {row.id for row in before})
    assert len(new_ids) == 4 and min(new_ids) > max(row.id for row in before)
    assert DetectionWorker(db, load_rules()).run_once() == 8
    with db.session() as s:
        [alert] = alerts.list_(s, scope=Scope.everything(), rule_id="ssh_lnx_brute_force")
    assert sorted(alert.event_ids) == sorted([row.id for row in before] + new_ids)


def test_downgrade_restores_a_plain_table_with_every_row_and_the_sequence(at_0018):
    db, unit, host = at_0018
    migrate(db, "head")
    now = utcnow()
    add(db, [failure(unit, host, ts=now, received_at=now - timedelta(days=d), pid=d) for d in (0, 35, 400)])
    with db.engine.connect() as conn:
        before = conn.execute(text("SELECT id, unit_id, host_id, type, ts, received_at, origin, data "
                                   "FROM events ORDER BY id")).all()

    migrate(db, "0018", down=True)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass")).scalar_one() == "r"
        assert conn.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"),
                            {"s": partitions.SCHEMA}).scalar_one() == 0
        assert conn.execute(text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                                 "conrelid = 'events'::regclass AND contype = 'p'")).scalar_one() == "PRIMARY KEY (id)"
        after = conn.execute(text("SELECT id, unit_id, host_id, type, ts, received_at, origin, data "
                                  "FROM events ORDER BY id")).all()
    assert after == before
    add(db, [failure(unit, host, ts=now, received_at=now)])
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT max(id) FROM events")).scalar_one() == before[-1].id + 1
    migrate(db, "head")  # and up again
    assert len(where_rows_are(db)) == 4


def test_sqlite_keeps_a_plain_table_and_maintenance_does_nothing(sqlite_db):
    with sqlite_db.engine.connect() as conn:
        assert not partitions.is_partitioned(conn)
        assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name LIKE 'events_%' AND type = 'table'")
                            ).scalar_one() == 0
    report = partitions.maintain(sqlite_db, now=utcnow())
    assert report.as_dict() == {"created": [], "moved_from_default": 0, "left_in_default": 0, "deferred": False}


def test_partition_names_and_bounds_follow_utc_months():
    part = partitions.for_month(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert (part.name, part.start, part.end) == (
        "events_2026_12", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    # 1 January 05:00 in Hanoi is still December in UTC: months are UTC, whatever the server's zone.
    from zoneinfo import ZoneInfo
    assert partitions.month_of(datetime(2027, 1, 1, 5, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))) == part.start
    assert partitions.add_months(part.start, -12) == datetime(2025, 12, 1, tzinfo=UTC)


def test_events_still_read_by_id_and_time_through_the_parent(pg):
    unit, host = seed_host(pg)
    now = utcnow()
    add(pg, [failure(unit, host, ts=now - timedelta(minutes=i), received_at=now, pid=i) for i in range(3)])
    with pg.session() as s:
        listed = events.list_(s, scope=Scope.everything(), host_id=host, limit=10)
        ids = list(s.exec(select(Event.id).order_by(Event.id)))
    assert [e.data["pid"] for e in listed] == [0, 1, 2] and ids == sorted(ids) and len(ids) == 3
