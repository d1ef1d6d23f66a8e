"""Leader election and the fences behind it, on real PostgreSQL and SQLite.

Two electors (or workers, or job runners) on two connections of one database in this test process
stand for two server processes; tests/integration/test_scale_out.py runs the real processes.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, text
from sqlmodel import select

from collector import leader, pipeline
from collector.agents.models import Agent
from collector.alerts import service as alerts
from collector.alerts.models import Alert
from collector.db import Database
from collector.detection import CursorMoved, DetectionWorker, get_position
from collector.events.models import Event
from collector.ingest.schema import parse_batch
from collector.leader import Elector, FileLock, NeverLock, PostgresLock, lock_for
from collector.scheduler import Jobs
from collector.scoring.models import ScoreSnapshot, ScoreValue
from collector.types import utcnow
from rules.detect import load_rules
from tests.collector import helpers as h
from tests.collector.test_detection import failures
from tests.conftest import BACKENDS, free_port, new_database_url

FAST = {"retry_s": 0.2, "check_s": 0.2}


def require_postgresql() -> None:
    """Several processes on one database is a PostgreSQL matter; KHIEN_TEST_BACKENDS=sqlite opts out explicitly."""
    if "postgresql" not in BACKENDS:
        pytest.skip("KHIEN_TEST_BACKENDS excludes postgresql")


def postgresql_database(tmp_path, request: pytest.FixtureRequest) -> str:
    require_postgresql()
    return new_database_url("postgresql", tmp_path, request)


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> float:
    """Seconds until ``condition`` held; fails the test at ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition not met in time"
        time.sleep(0.02)
    return time.monotonic() - started


def leader_backend_pid(url: str, key: int = leader.LEADER_LOCK) -> int | None:
    """The PostgreSQL backend holding advisory lock ``key`` in this database (None: nobody)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
    with engine.connect() as conn:
        pid = conn.execute(text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = :hi AND objid::bigint = :lo"), {"hi": key >> 32, "lo": key & 0xFFFFFFFF}).scalar()
    engine.dispose()
    return pid


def terminate_backend(url: str, pid: int) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    engine.dispose()


class Recorder:
    """An elector's callbacks, recording what happened in order."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def elected(self) -> None:
        self.log.append(f"{self.name} elected")

    def deposed(self) -> None:
        self.log.append(f"{self.name} deposed")


@pytest.fixture
def pair(db_url) -> Iterator[tuple[Elector, Elector, list[str]]]:
    """Two electors on two connections (two Database objects) of one database."""
    log: list[str] = []
    dbs = [Database(db_url), Database(db_url)]
    electors = []
    for name, db in zip("ab", dbs, strict=True):
        rec = Recorder(name, log)
        electors.append(Elector(lock_for(db), on_elected=rec.elected, on_deposed=rec.deposed, **FAST))
    yield electors[0], electors[1], log
    for elector in electors:
        elector.stop()
    for db in dbs:
        db.dispose()


# --- the election -----------------------------------------------------------------------------------

def test_of_two_electors_exactly_one_leads_and_stopping_it_hands_over(pair):
    a, b, log = pair
    a.start()
    b.start()
    assert (a.is_leader, b.is_leader) == (True, False)  # the first attempt happens inside start()
    assert (a.role, b.role) == ("leader", "standby")
    time.sleep(0.6)  # a few rounds: the standby keeps trying and keeps failing
    assert (a.is_leader, b.is_leader) == (True, False) and log == ["a elected"]
    a.stop()
    wait_for(lambda: b.is_leader)  # within a few retry_s; the bound here only stops a hung test
    assert not a.is_leader
    assert log == ["a elected", "a deposed", "b elected"] and (a.elections, b.elections) == (1, 1)


def test_a_process_that_is_not_a_candidate_never_leads_even_alone(db_url):
    log: list[str] = []
    db = Database(db_url)
    rec = Recorder("candidate", log)
    never = Elector(NeverLock(), on_elected=Recorder("never", log).elected, on_deposed=lambda: None, **FAST)
    candidate = Elector(lock_for(db), on_elected=rec.elected, on_deposed=rec.deposed, **FAST)
    try:
        never.start()
        candidate.start()
        assert (never.role, candidate.role) == ("standby", "leader")
        candidate.stop()
        time.sleep(0.6)  # a few of its rounds with the lock free
        assert not never.is_leader and log == ["candidate elected", "candidate deposed"]
    finally:
        never.stop()
        candidate.stop()
        db.dispose()


def test_a_leader_stops_its_work_before_it_lets_the_lock_go(db_url):
    """While the deposed leader is still stopping, no other process can get the lock."""
    db, probe_db = Database(db_url), Database(db_url)
    probe = lock_for(probe_db)
    seen: list[bool] = []
    elector = Elector(lock_for(db), on_elected=lambda: None, on_deposed=lambda: seen.append(probe.try_acquire()),
                      **FAST)
    try:
        elector.start()
        assert elector.is_leader
        elector.stop()
        assert seen == [False]  # during on_deposed the lock was still held
        assert probe.try_acquire()  # afterwards it is free
    finally:
        probe.release()
        db.dispose()
        probe_db.dispose()


def test_a_leader_whose_lock_connection_is_killed_stops_and_the_standby_takes_over(tmp_path, request):
    url = postgresql_database(tmp_path, request)
    log: list[str] = []
    ra, rb = Recorder("a", log), Recorder("b", log)
    a = Elector(PostgresLock(url), on_elected=ra.elected, on_deposed=ra.deposed, **FAST)
    b = Elector(PostgresLock(url), on_elected=rb.elected, on_deposed=rb.deposed, **FAST)
    try:
        a.start()
        b.start()
        holder = leader_backend_pid(url)
        assert a.is_leader and holder is not None
        terminate_backend(url, holder)  # as a PostgreSQL restart or an administrator would
        wait_for(lambda: b.is_leader)
        wait_for(lambda: "a deposed" in log)
        assert log.index("a deposed") > log.index("a elected") and not a.is_leader
        assert leader_backend_pid(url) not in (None, holder)
        time.sleep(0.6)  # the former leader stands by: it tries, and the lock is taken
        assert not a.is_leader and b.is_leader and log.count("a elected") == 1
    finally:
        b.stop()
        a.stop()


def test_an_unreachable_database_leaves_the_process_standing_by():
    lock = PostgresLock(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")
    elector = Elector(lock, on_elected=lambda: pytest.fail("elected without a database"), on_deposed=lambda: None,
                      **FAST)
    started = time.monotonic()
    elector.start()
    try:
        assert elector.role == "standby" and time.monotonic() - started < leader.CLIENT_TIMEOUT_S
    finally:
        elector.stop()


def test_a_leader_whose_lock_file_is_replaced_stands_down(tmp_path):
    path = tmp_path / "khien.db.leader.lock"
    log: list[str] = []
    rec = Recorder("a", log)
    elector = Elector(FileLock(path), on_elected=rec.elected, on_deposed=rec.deposed, **FAST)
    elector.start()
    try:
        assert elector.is_leader and path.read_text().strip().isdigit()  # the holder's pid, for people
        path.unlink()  # a new process would create and lock a new file: this one must not lead beside it
        wait_for(lambda: "a deposed" in log)
        other = FileLock(path)
        assert other.try_acquire()
        time.sleep(0.5)
        assert not elector.is_leader
        other.release()
        wait_for(lambda: elector.is_leader)
    finally:
        elector.stop()


def test_a_failing_start_of_the_leaders_work_gives_the_lock_up(db_url):
    db, probe_db = Database(db_url), Database(db_url)
    calls: list[str] = []

    def broken() -> None:
        calls.append("elected")
        raise RuntimeError("cannot start")

    elector = Elector(lock_for(db), on_elected=broken, on_deposed=lambda: calls.append("deposed"), retry_s=60)
    probe = lock_for(probe_db)
    try:
        elector.start()
        assert not elector.is_leader and calls == ["elected", "deposed"]
        assert probe.try_acquire()  # released for a healthier process
    finally:
        probe.release()
        elector.stop()
        db.dispose()
        probe_db.dispose()


# --- the detection cursor fence ------------------------------------------------------------------------

class PausedWorker(DetectionWorker):
    """Waits, after reading the cursor and the events, until its twin has read them too."""

    def __init__(self, db: Database, barrier: threading.Barrier) -> None:
        super().__init__(db, load_rules())
        self.barrier = barrier

    def _unit_context(self, session):
        self.barrier.wait(timeout=30)
        return super()._unit_context(session)


def test_two_workers_on_one_cursor_raise_each_alert_once(client, db, enrolled):
    client.app.state.detection.stop()  # the two workers below stand for two leaders at once
    with db.session() as s:
        agent = s.get(Agent, enrolled["agent_id"])

    def ingest(items: list[dict]) -> None:
        pipeline.ingest_batch(db, agent=agent, batch=parse_batch(json.dumps(h.batch(items)).encode()))

    ingest(failures(1, ip="198.51.100.1"))
    assert DetectionWorker(db, load_rules()).run_once() == 1  # the cursor row exists from here on
    ingest(failures(8))
    barrier = threading.Barrier(2)
    workers = [PausedWorker(Database(db.url), barrier) for _ in range(2)]
    outcomes: dict[int, object] = {}

    def run(i: int) -> None:
        try:
            outcomes[i] = workers[i].run_once()
        except CursorMoved as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(type(o).__name__ for o in outcomes.values()) == ["CursorMoved", "int"], outcomes
    [winner] = [i for i, o in outcomes.items() if o == 8]
    with db.session() as s:
        [alert] = s.exec(select(Alert).where(Alert.rule_id == "ssh_lnx_brute_force")).all()
        assert (alert.count, alert.event_count) == (1, 8)  # not folded in twice
        assert get_position(s)[1] == s.exec(select(func.max(Event.id))).one()
    loser = workers[1 - winner]
    loser.barrier = threading.Barrier(1)
    assert loser.engine is None  # its state ran ahead of what was stored: dropped, to be rebuilt
    assert loser.run_once() == 0  # rebuilt from the stored cursor: nothing left, nothing raised again
    for worker in workers:
        worker.db.dispose()


# --- scheduled jobs: once per tick, whoever leads -----------------------------------------------------

def computed_at(db: Database):
    with db.session() as s:
        return set(s.exec(select(ScoreValue.computed_at)).all())


def test_a_singleton_job_runs_once_per_tick_whichever_process_asks(db, settings):
    h.seed_units(db)
    other = Database(db.url)  # the second process
    first, second = Jobs(db, settings), Jobs(other, settings)
    try:
        tick = first.latest_tick("daily-scores", utcnow())
        assert first.run_scheduled("daily-scores", tick) == "ran"
        stamp = computed_at(db)
        assert len(stamp) == 1
        assert second.run_scheduled("daily-scores", tick) == "already_ran"
        assert first.run_scheduled("daily-scores", tick) == "already_ran"
        assert computed_at(db) == stamp  # nothing recomputed
        assert second.run_scheduled("daily-scores", tick + 86_400) == "ran"  # the next day's tick
        assert computed_at(db) != stamp
        assert (first.runs, second.runs) == ({("daily-scores", "ran"): 1, ("daily-scores", "already_ran"): 1},
                                             {("daily-scores", "already_ran"): 1, ("daily-scores", "ran"): 1})
    finally:
        first.stop()
        second.stop()
        other.dispose()


def test_a_job_running_in_another_process_is_not_started_again(tmp_path, request, settings):
    url = postgresql_database(tmp_path, request)
    db, other = Database(url), Database(url)
    jobs = Jobs(db, settings)
    try:
        with leader.exclusive(other, leader.JOB_LOCKS["scan-tick"]) as held:  # "another process" runs it
            assert held
            assert jobs.run_scheduled("scan-tick") == "locked"
        assert jobs.run_scheduled("scan-tick") == "ran"
    finally:
        jobs.stop()
        db.dispose()
        other.dispose()


def test_interval_ticks_are_aligned_so_every_process_names_the_same_tick(db, settings):
    jobs = Jobs(db, dataclasses.replace(settings, score_every_s=60.0))
    at = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)
    ticks = {jobs.latest_tick("daily-scores", at + timedelta(seconds=s)) for s in (-0.4, 0.0, 0.7, 25)}
    assert ticks == {int(at.timestamp())}
    # Daily jobs stand for their local time: 01:15 Asia/Ho_Chi_Minh is 18:15 UTC the day before.
    daily = Jobs(db, settings)
    assert daily.latest_tick("daily-scores", datetime(2026, 3, 2, 18, 20, tzinfo=UTC)) == \
        int(datetime(2026, 3, 2, 18, 15, tzinfo=UTC).timestamp())
    assert daily.latest_tick("daily-scores", datetime(2026, 3, 2, 18, 10, tzinfo=UTC)) == \
        int(datetime(2026, 3, 1, 18, 15, tzinfo=UTC).timestamp())
    jobs.stop()
    daily.stop()


def test_a_new_leader_runs_a_daily_job_whose_tick_was_missed(db, settings):
    h.seed_units(db)
    jobs = Jobs(db, settings)
    tick = jobs.latest_tick("daily-scores", utcnow())
    with db.transaction() as s:  # it last ran the day before: the leader was changing at 01:15 today
        alerts.set_cursor(s, name="job:daily-scores", position=tick - 86_400)
    jobs.start()
    try:
        jobs.lead()
        wait_for(lambda: jobs.runs.get(("daily-scores", "ran")) == 1, timeout=30)
        with db.session() as s:
            assert alerts.get_cursor(s, name="job:daily-scores") == tick
        assert computed_at(db)
        # Nightly match never ran on this database: no catch-up, it waits for its first 02:00.
        assert not any(job == "nightly-match" for job, _ in jobs.runs)
        jobs.step_down()
        assert [j.id for j in jobs.scheduler.get_jobs()] == ["match-requested"]
    finally:
        jobs.stop()


def test_the_monthly_freeze_racing_in_two_processes_freezes_once_without_error(db, settings):
    h.seed_units(db)
    other = Database(db.url)
    runners = [Jobs(db, settings), Jobs(other, settings)]
    now = utcnow()
    results: list[object] = []
    barrier = threading.Barrier(2)

    def freeze(jobs: Jobs) -> None:
        barrier.wait(timeout=30)
        try:
            results.append(jobs._freeze_due(now))
        except Exception as exc:  # recorded for the assertion below
            results.append(exc)

    threads = [threading.Thread(target=freeze, args=(j,)) for j in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert len(results) == 2 and not any(isinstance(r, Exception) for r in results), results
        [period] = [r for r in results if r is not None]
        with db.session() as s:
            periods = s.exec(select(ScoreSnapshot.period)).all()
        assert set(periods) == {period} and len(periods) == 33  # one snapshot: 3 units x 11 indicators
    finally:
        for jobs in runners:
            jobs.stop()
        other.dispose()
