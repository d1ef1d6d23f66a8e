"""Leader election: of several ``khien server`` processes on one database, exactly one runs the work that
must not run twice — the detection worker (one cursor, correlation state in memory), the stale-agent
check and the scheduled jobs. The others serve ingest, the API and the console.

PostgreSQL: the leader holds a session-level advisory lock (``pg_try_advisory_lock``) on a dedicated
connection outside the request pool. A standby tries for it every ``retry_s``; the leader checks every
``check_s`` that its lock connection still answers. When a leader process dies, its socket closes and
PostgreSQL releases the lock at once: a standby leads within ``retry_s``. When the leader's host
vanishes without closing the socket, PostgreSQL notices through the TCP keepalives this connection sets
on its server side (``SERVER_KEEPALIVES``: about 25 s), and a standby leads ``retry_s`` after that.

The order on a lost connection keeps two leaders from working at once: the leader stops its work
first and only then drops the connection, and its own check (``check_s`` plus ``CLIENT_TIMEOUT_S``,
about 7 s) fails well before the server side gives the lock away (about 25 s). The window that
remains — the server ends the session first (``pg_terminate_backend``, a PostgreSQL restart) — lasts
at most ``check_s`` plus the time the work takes to stop; within it the work fences itself: the
detection cursor is compare-and-set (collector/detection.py), the stale check and every scheduled job
take their own advisory lock (``exclusive``), and jobs record the tick they ran for (collector/scheduler.py).

SQLite (one writer; one server process expected): an exclusive ``fcntl.flock`` on a file next to
the database file, with the same interface, so a second process started on the same file stands by
instead of running the jobs twice; the kernel releases it when the process dies.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from collector.db import Database, redact

log = logging.getLogger(__name__)

# Advisory lock keys: "khien" (0x6B6869656E) plus a number; ...01 was the event-order lock (retired by
# migration 0020: do not reuse it, an older server process may still take it during an upgrade).
LEADER_LOCK = 0x6B6869656E02
STALE_CHECK_LOCK = 0x6B6869656E03
MIGRATION_LOCK = 0x6B6869656E04
JOB_LOCKS = {"nightly-match": 0x6B6869656E10, "daily-scores": 0x6B6869656E11, "scan-tick": 0x6B6869656E12,
             "event-retention": 0x6B6869656E13}  # ...19 is the events partitions' lock
SCAN_LOCK_BASE = 0x6B6869656E000000  # + unit id: one scheduled scan of a unit at a time, in any process

CLIENT_TIMEOUT_S = 5  # a check on a broken connection fails within this (connect, unacknowledged send)
# Set on the lock session's server side, so PostgreSQL ends the session of a leader that vanished
# without closing its socket (idle 10 s, then 3 probes 5 s apart) instead of after the OS default 2 h.
SERVER_KEEPALIVES = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"


class LeaderLock(Protocol):
    """What the elector needs of a lock; ``where`` names it in logs."""

    where: str

    def try_acquire(self) -> bool: ...
    def alive(self) -> bool: ...
    def release(self) -> None: ...


class PostgresLock:
    """``pg_try_advisory_lock`` held by a dedicated connection (not from the pool, never recycled)."""

    def __init__(self, url: str, *, key: int = LEADER_LOCK, name: str = "khien-leader") -> None:
        self.key = key
        self.where = f"advisory lock {key:#x} on {redact(url)}"
        self._engine = create_engine(url, poolclass=NullPool, connect_args={
            "connect_timeout": CLIENT_TIMEOUT_S, "tcp_user_timeout": CLIENT_TIMEOUT_S * 1000,
            "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2,
            "application_name": f"{name} pid={os.getpid()}", "options": SERVER_KEEPALIVES})
        self._conn: Connection | None = None
        self._healthy = False  # the last statement on the connection succeeded

    def try_acquire(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar())
            self._healthy = True
            return got
        except Exception as exc:  # noqa: BLE001 - the database is down or the connection broke: stand by, retry
            log.warning("leader election: cannot reach the database: %s", _first_line(exc))
            self._healthy = False
            self.release()
            return False

    def alive(self) -> bool:
        """The session holding the lock still answers (a live session keeps its advisory locks)."""
        try:
            self._healthy = self._conn is not None and self._conn.execute(text("SELECT 1")).scalar() == 1
        except Exception as exc:  # noqa: BLE001 - any failure means the lock can no longer be trusted
            log.warning("leader election: lock connection lost: %s", _first_line(exc))
            self._healthy = False
        return self._healthy

    def release(self) -> None:
        """Unlock (a standby may take over at once), then close: a session that ends releases its locks too."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._healthy:  # never wait on a connection that just failed: closing it is enough
                conn.execute(text("SELECT pg_advisory_unlock_all()"))
        except Exception as exc:  # noqa: BLE001 - the connection broke meanwhile: closing it releases the lock
            log.debug("leader election: unlocking: %s", exc)
        finally:
            self._healthy = False
            with suppress(Exception):  # a broken connection may fail to close; it is gone either way
                conn.invalidate()  # the socket closes now, whatever state the session is in
                conn.close()


class FileLock:
    """An exclusive ``flock`` on ``path``; the file also says which process holds it, for people."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"file lock {path}"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def alive(self) -> bool:
        """Still the file at ``path``: were it deleted or replaced, another process could lock the new one."""
        try:
            return self._fd is not None and os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
        except OSError:
            return False

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock


class SoleLock:
    """No election: this process is the only one (election switched off, or an in-memory database)."""

    where = "no election"

    def try_acquire(self) -> bool:
        return True

    def alive(self) -> bool:
        return True

    def release(self) -> None:
        return None


class NeverLock:
    """Not a candidate (KHIEN_LEADER_CANDIDATE=0): this process serves requests and never leads, so the
    leader's detection and jobs can have processes of their own that take no agent traffic."""

    where = "not a candidate"

    def try_acquire(self) -> bool:
        return False

    def alive(self) -> bool:
        return False

    def release(self) -> None:
        return None


def lock_for(db: Database) -> LeaderLock:
    """The leader lock that fits the database: advisory lock, lock file next to the SQLite file, or none."""
    if not db.is_sqlite:
        return PostgresLock(db.url)
    database = db.engine.url.database
    if not database or database == ":memory:":
        return SoleLock()
    # Next to the database file (in the data dir by default), so processes meet on the file they share.
    return FileLock(Path(f"{Path(database).resolve()}.leader.lock"))


class Elector:
    """Calls ``on_elected`` when this process becomes leader and ``on_deposed`` when it stops being one.

    ``start()`` makes the first attempt before returning, so a lone server leads from its first request.
    """

    def __init__(self, lock: LeaderLock, *, on_elected: Callable[[], None], on_deposed: Callable[[], None],
                 retry_s: float = 5.0, check_s: float = 2.0) -> None:
        self.lock, self.on_elected, self.on_deposed = lock, on_elected, on_deposed
        self.retry_s, self.check_s = retry_s, check_s
        self.elections = 0  # times this process became leader
        self._leader = False
        self._mutex = threading.Lock()  # one step at a time: the thread's, or stop()'s
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def role(self) -> str:
        return "leader" if self._leader else "standby"

    def start(self) -> None:
        self._halt.clear()
        self.step()
        self._thread = threading.Thread(target=self._run, name="khien-leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop trying; a leader stops its work, then gives the lock up for a standby to take."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=CLIENT_TIMEOUT_S * 2 + self.retry_s)
        with self._mutex:
            if self._leader:
                self._depose("shutting down")
            else:
                self.lock.release()

    def step(self) -> None:
        """One round: a standby tries for the lock; a leader checks it still holds it."""
        with self._mutex:
            if self._halt.is_set():
                return
            if not self._leader:
                if self.lock.try_acquire():
                    self._elect()
            elif not self.lock.alive():
                self._depose("lost the lock")

    def _run(self) -> None:
        while not self._halt.wait(self.check_s if self._leader else self.retry_s):
            self.step()

    def _elect(self) -> None:
        try:
            self.on_elected()
        except Exception:  # the elector's one boundary: a leader that cannot start its work must not hold the lock
            log.exception("leader election: starting the leader's work failed; standing by")
            self._depose("could not start its work")
            return
        self._leader = True
        self.elections += 1
        log.info("leader election: this process leads (%s)", self.lock.where)

    def _depose(self, why: str) -> None:
        # Work first, lock second: while this process may still be working, nobody else can lead.
        self._leader = False
        try:
            self.on_deposed()
        except Exception:  # the lock must be given up whatever stopping did
            log.exception("leader election: stopping the leader's work failed")
        finally:
            self.lock.release()
        log.warning("leader election: this process stands by (%s)", why)


# --- locks the singleton work takes itself: a second fence, for the window described above ----------

@contextmanager
def exclusive(db: Database, key: int) -> Iterator[bool]:
    """True for the block if this process got PostgreSQL's advisory lock ``key`` (held to the block's end,
    in a transaction of its own, so an error or a lost connection releases it); False if another session
    holds it. On SQLite always True: the file lock already keeps a second process out."""
    if db.is_sqlite:
        yield True
        return
    with db.engine.connect() as conn, conn.begin():
        yield bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}).scalar())


def serialise(session: Session, key: int) -> None:
    """Wait for PostgreSQL's advisory lock ``key`` until this transaction ends (SQLite: one writer already)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


@contextmanager
def migration_lock(db: Database) -> Iterator[None]:
    """Hold off other processes' schema upgrades while this one checks and upgrades (PostgreSQL): servers
    started together on a new database would otherwise all run the same migrations at once."""
    if db.is_sqlite:
        yield
        return
    try:
        conn = db.engine.connect()
    except OperationalError:
        db.check()  # DatabaseUnavailable: the one clear line the commands print for an unreachable database
        raise
    with conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})


def _first_line(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(exc).__name__])[0]
