"""Engine, sessions and schema upgrades for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from collector.access import Actor
from collector.audit import tracking
from collector.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# libpq waits for a database that accepted the TCP connection but never answers (a stalled proxy or
# host, a half-open path) for ever, and every request would hang with it instead of answering 503.
# These bound each wait; a value given in the database URL's query string wins.
PG_CONNECT_ARGS = {
    # Seconds to establish a connection, startup and auth included (libpq's floor is 2); loopback
    # or LAN connects take milliseconds. A request meeting an unreachable database answers 503 in
    # about this time (measured 3.1 s against a blackholed proxy, tests/integration/test_faults.py).
    "connect_timeout": 3,
    # Find a silently vanished peer of an idle pooled connection in ~1 min instead of ~2 h.
    "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
    # Sent data (a query) unacknowledged this long (ms) breaks the connection: a partition mid-query
    # fails in 30 s instead of the kernel's ~15 min of retransmissions.
    "tcp_user_timeout": 30_000,
}
PG_POOL_TIMEOUT_S = 10  # waiting for a free pooled connection; the default 30 s outlasts the agents' timeout


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create an engine with the settings each backend needs."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    given = make_url(url).query
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=PG_POOL_TIMEOUT_S,
                         connect_args={k: v for k, v in PG_CONNECT_ARGS.items() if k not in given})


class Database:
    """One engine plus the write discipline its backend needs.

    SQLite allows one writer at a time; serialising writers in-process avoids SQLITE_BUSY storms
    under concurrent ingest (other processes still wait on busy_timeout). PostgreSQL needs no lock.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock() if self.is_sqlite else None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for reads (and small writes the caller commits)."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def transaction(self, *, actor: Actor | None = None) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any error. With ``actor`` (a person
        acting through the API, the console or a command) its changes are audited as theirs."""
        with (
            self._write_lock or nullcontext(),
            Session(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            if actor is not None:
                tracking.attach(session, actor)
            yield session

    def check(self) -> None:
        """Raise DatabaseUnavailable with a one-line reason if the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseUnavailable(f"database unreachable ({redact(self.url)}): {reason}") from None

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision.

        A database already at the newest revision is recognised with one query, without loading
        Alembic and every migration script (~0.7 s that every ``khien`` command would pay).
        """
        self.check()
        if self._at_head():
            return
        from alembic import command

        cfg = alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def _at_head(self) -> bool:
        try:
            with self.engine.connect() as conn:
                current = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        except Exception:  # noqa: BLE001 - no version table yet (a new database): let Alembic decide
            return False
        return current == [head_revision()]

    def dispose(self) -> None:
        self.engine.dispose()


def head_revision() -> str:
    """The newest migration's revision id: by convention the number its file name starts with."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, hostpart = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}" if ":" in creds else url
