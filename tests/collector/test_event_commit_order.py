"""Detection reads events in commit-safe ``(tx, id)`` order (migration 0020), so event inserts need not
take turns: a row whose transaction commits after a later id is neither skipped nor read twice, a long
transaction in another database holds nothing back, and the cursor carries over from the id-only one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import select

from collector.alerts import service as alerts
from collector.alerts.models import PipelineCursor
from collector.db import Database, alembic_config
from collector.detection import DetectionWorker, get_position
from collector.events.models import Event
from collector.scope import Scope
from collector.types import utcnow
from rules.detect import load_rules
from tests.collector.events_helpers import add, failure, seed_host
from tests.conftest import new_pg_database


def failures(unit: int, host: int, pids: range) -> list[dict]:
    now = utcnow()
    return [failure(unit, host, ts=now + timedelta(seconds=pid), received_at=now, pid=pid) for pid in pids]


def insert_uncommitted(conn, rows: list[dict]) -> None:
    conn.execute(Event.__table__.insert(), rows)


def brute_force_event_ids(db: Database) -> list[int]:
    with db.session() as s:
        found = alerts.list_(s, scope=Scope.everything(), rule_id="ssh_lnx_brute_force")
    return sorted(i for alert in found for i in alert.event_ids)


def all_event_ids(db: Database) -> list[int]:
    with db.session() as s:
        return sorted(s.exec(select(Event.id)).all())


def test_lower_ids_committed_after_higher_ones_are_read_once_when_they_commit(pg):
    """Transaction A draws the lower ids but commits last. Reading in id order would pass A's ids
    while A is open (the detection cursor moves past them) and never read them; the brute-force rule
    needs all eight failures, so the alert shows whether any was skipped or counted twice."""
    unit, host = seed_host(pg)
    worker = DetectionWorker(pg, load_rules())
    with pg.engine.connect() as a:
        insert_uncommitted(a, failures(unit, host, range(0, 4)))  # lower ids, still open
        add(pg, failures(unit, host, range(4, 8)))  # higher ids, committed first
        assert worker.run_once() == 0  # B's rows wait behind A, which may still add before them
        a.commit()
    assert worker.run_once() == 8
    assert worker.run_once() == 0
    assert brute_force_event_ids(pg) == all_event_ids(pg)


def test_a_transaction_that_began_first_but_inserts_last_is_not_skipped(pg):
    """B takes its transaction id first, A inserts and commits, then B inserts (higher ids) and commits:
    B's rows sort first by transaction, after the cursor has not passed them."""
    unit, host = seed_host(pg)
    worker = DetectionWorker(pg, load_rules())
    with pg.engine.connect() as b:
        b.execute(text("SELECT pg_current_xact_id()"))  # B's id is assigned now, below A's
        add(pg, failures(unit, host, range(0, 4)))
        assert worker.run_once() == 0
        insert_uncommitted(b, failures(unit, host, range(4, 8)))
        b.commit()
    assert worker.run_once() == 8
    assert brute_force_event_ids(pg) == all_event_ids(pg)


def test_a_rolled_back_transaction_releases_what_came_after_it(pg):
    unit, host = seed_host(pg)
    worker = DetectionWorker(pg, load_rules())
    with pg.engine.connect() as a:
        insert_uncommitted(a, failures(unit, host, range(0, 4)))
        add(pg, failures(unit, host, range(4, 12)))
        assert worker.run_once() == 0
        a.rollback()
    assert worker.run_once() == 8
    assert len(brute_force_event_ids(pg)) == 8


def test_a_long_transaction_in_another_database_holds_nothing_back(pg, request):
    """Transaction ids are shared by every database of a PostgreSQL server; only this database's
    running transactions can still write events here."""
    unit, host = seed_host(pg)
    other = Database(new_pg_database(request, prefix="khien_other"))
    try:
        with other.engine.connect() as elsewhere:
            elsewhere.execute(text("SELECT pg_current_xact_id()"))  # a writing transaction, left open
            add(pg, failures(unit, host, range(0, 8)))
            assert DetectionWorker(pg, load_rules()).run_once() == 8
            elsewhere.rollback()
    finally:
        other.dispose()


@pytest.mark.parametrize("database", ["sqlite_db", "pg"])
def test_the_cursor_of_an_earlier_version_carries_over(database, request):
    """At 0019 the cursor was an event id; after 0020 the rows already stored sort first (``tx`` 0) in
    id order, so detection goes on from exactly that id: nothing before it again, nothing after it lost."""
    db = request.getfixturevalue(database)
    cfg = alembic_config()

    def migrate(revision: str, *, down: bool = False) -> None:
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)

    migrate("0019", down=True)
    unit, host = seed_host(db)
    with db.engine.begin() as conn:  # the 0019 shape: no tx column yet
        for row in failures(unit, host, range(0, 6)):
            conn.execute(text("INSERT INTO events (unit_id, host_id, type, ts, received_at, origin, data) "
                              "VALUES (:unit_id, :host_id, :type, :ts, :received_at, :origin, :data)"),
                         row | {"data": '{"action": "failed_password", "outcome": "failure", "user": "root", '
                                         '"source_ip": "203.0.113.9", "process": "sshd", "pid": 1}'})
        ids = conn.execute(text("SELECT id FROM events ORDER BY id")).scalars().all()
        conn.execute(text("INSERT INTO pipeline_cursors (name, position, updated_at) "
                          "VALUES ('detect', :p, CURRENT_TIMESTAMP)"), {"p": ids[1]})
    migrate("head")
    with db.session() as s:
        assert get_position(s) == (0, ids[1])
        assert s.get(PipelineCursor, "detect").position_tx == 0
    add(db, failures(unit, host, range(6, 10)))
    worker = DetectionWorker(db, load_rules())
    assert worker.run_once() == 4 + 4  # ids[2:] and the four new ones, not ids[0:2]
    assert worker.run_once() == 0
