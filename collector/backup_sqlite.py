"""SQLite backup and restore: an online copy with the backup API; a checked copy swapped into place.

The copy runs while the server writes. The backup API restarts its copy whenever another connection
changes the database, so under steady ingest a copy in steps would never finish; holding one read
transaction on the source for the whole copy pins a single WAL snapshot instead (writers go on —
in WAL mode readers do not block them; only checkpoints wait for the copy to end).

Whether a server holds the database is read from SQLite's own locks: every connection that has the
database open in WAL mode holds a shared lock on the "dead man switch" byte of the ``-shm`` file
(``unixOpenSharedMemory`` in SQLite's os_unix.c). A restore takes that byte exclusively for the swap,
so it refuses while a server (or any other process) has the database open, and a server starting
during the swap fails to open it instead of reading a half-replaced file. Processes on another host
sharing the file over NFS are not seen (SQLite on NFS is unsupported anyway).
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from collector.backup_archive import Archive, BackupFailed, Meter, Progress, fsync_dir, human
from collector.backup_tables import Snapshot, count_difference, populated_tables, row_counts, schema_revision
from collector.errors import Conflict, InvalidInput

STEP_PAGES = 4096  # 16 MiB at the default page size: progress every step, negligible overhead
SHM_DMS_BYTE = 128  # WALINDEX_LOCK_OFFSET (120) + SQLITE_SHM_NLOCK (8)


@contextmanager
def _connection(path: Path) -> Iterator[Connection]:
    """A plain connection (no WAL switch, no pragmas): for reading copies and targets."""
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def snapshot(*, db_path: Path, dest: Path, progress: Progress) -> Snapshot:
    """Copy the database into ``dest`` (an existing empty file) as one consistent, self-contained file."""
    if not db_path.is_file():
        raise InvalidInput(f"no SQLite database at {db_path}")
    try:
        _copy(db_path, dest, progress)
        with _connection(dest) as conn:
            check = conn.exec_driver_sql("PRAGMA quick_check").scalar()
            if check != "ok":
                raise BackupFailed(f"the copy of {db_path} fails SQLite's quick_check: {check}")
            revision = schema_revision(conn)
            if revision is None:
                raise InvalidInput(f"{db_path} has no Khiên schema (no alembic_version table): nothing to back up")
            return Snapshot(revision=revision, tables=row_counts(conn))
    except (DBAPIError, sqlite3.DatabaseError) as exc:
        raise InvalidInput(f"{db_path}: {getattr(exc, 'orig', None) or exc}") from None


def _copy(db_path: Path, dest: Path, progress: Progress) -> None:
    src = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    dst = sqlite3.connect(dest, isolation_level=None)
    try:
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the read snapshot starts here
        page_size = src.execute("PRAGMA page_size").fetchone()[0]
        pages = src.execute("PRAGMA page_count").fetchone()[0]
        progress(f"backup: copying {db_path} ({pages:,} pages, {human(pages * page_size)}) "
                 "from one consistent snapshot")
        meter = Meter(progress, "backup: copied", pages * page_size)
        src.backup(dst, pages=STEP_PAGES,
                   progress=lambda _status, remaining, total: meter.update((total - remaining) * page_size))
        src.execute("COMMIT")
        meter.finish()
        # The copied header says WAL; a self-contained file needs no -wal beside it.
        dst.execute("PRAGMA journal_mode=DELETE").fetchone()
    finally:
        src.close()
        dst.close()


def check_target(*, db_path: Path, force: bool) -> None:
    """Conflict if a process has the database open, or it holds data and ``force`` is not given."""
    if db_path.exists():
        with _exclusive(db_path):
            pass  # checked again, and held, for the swap itself
        _refuse_if_populated(db_path, force=force)


def restore(*, archive: Archive, db_path: Path, force: bool, progress: Progress) -> None:
    """Replace the database file with the backup's, after checking the copy; nothing changes on error."""
    manifest = archive.manifest
    check_target(db_path=db_path, force=force)
    new_dir = not db_path.parent.exists()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd, raw = tempfile.mkstemp(dir=db_path.parent, prefix=f".{db_path.name}.", suffix=".restoring")
    staged = Path(raw)
    done = False
    try:
        with os.fdopen(fd, "wb") as fh:
            archive.copy_payload(fh, progress=progress, label="restore: unpacking")
            fh.flush()
            os.fsync(fh.fileno())
        _check_copy(staged, archive, progress)
        _same_owner(staged, db_path)
        with _exclusive(db_path):
            # A journal left beside the old file would be replayed into the new one: remove it first.
            for suffix in ("-wal", "-journal"):
                Path(f"{db_path}{suffix}").unlink(missing_ok=True)
            os.replace(staged, db_path)
            Path(f"{db_path}-shm").unlink(missing_ok=True)
        fsync_dir(db_path.parent)
        done = True
        progress(f"restore: {db_path} replaced ({human(manifest.payload_bytes)})")
    finally:
        staged.unlink(missing_ok=True)
        if new_dir and not done:
            db_path.parent.rmdir()  # a refused restore leaves no trace


def _refuse_if_populated(db_path: Path, *, force: bool) -> None:
    try:
        with _connection(db_path) as conn:
            populated = populated_tables(conn)
    except (DBAPIError, sqlite3.DatabaseError) as exc:  # an unreadable old file is what a restore replaces
        if not force:
            raise Conflict(f"{db_path} exists but cannot be read ({exc.__class__.__name__}); "
                           "use --force to replace it") from None
        return
    if populated and not force:
        shown = ", ".join(populated[:4]) + (", …" if len(populated) > 4 else "")
        raise Conflict(f"{db_path} already holds data ({len(populated)} tables with rows: {shown}); "
                       "use --force to replace it")


def _check_copy(staged: Path, archive: Archive, progress: Progress) -> None:
    """The unpacked file must be a sound SQLite database holding exactly what the manifest says."""
    manifest = archive.manifest
    progress("restore: checking the unpacked database (integrity_check, revision, row counts)")
    try:
        with _connection(staged) as conn:
            check = conn.exec_driver_sql("PRAGMA integrity_check").scalars().all()
            if check != ["ok"]:
                raise InvalidInput(f"{archive.path}: the database in the backup is corrupt: {check[0]}")
            revision, counts = schema_revision(conn), row_counts(conn)
    except (DBAPIError, sqlite3.DatabaseError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise InvalidInput(f"{archive.path}: the payload is not a usable SQLite database ({reason})") from None
    if revision != manifest.revision:
        raise InvalidInput(f"{archive.path}: the database is at revision {revision}, the manifest says "
                           f"{manifest.revision}")
    difference = count_difference(expected=manifest.tables, actual=counts)
    if difference:
        raise InvalidInput(f"{archive.path}: the database differs from its manifest: {difference}")


def _same_owner(staged: Path, db_path: Path) -> None:
    """Run as root, give the file the old file's owner (or its directory's, for a new file): the server,
    running as its own user, must still be able to open the database."""
    if os.geteuid() == 0:
        st = (db_path if db_path.exists() else db_path.parent).stat()
        os.chown(staged, st.st_uid, st.st_gid)


@contextmanager
def _exclusive(db_path: Path) -> Iterator[None]:
    """Hold SQLite's shared-memory "dead man switch" exclusively; Conflict if any process has it open."""
    shm = Path(f"{db_path}-shm")
    created = not shm.exists()  # then no process has the database open in WAL mode; ours blocks any that tries
    fd = os.open(shm, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, SHM_DMS_BYTE, os.SEEK_SET)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise Conflict(f"{db_path} is open in another process (a running khien server?): "
                               "stop it before restoring") from None
            raise
        yield
    finally:
        os.close(fd)  # releases the lock
        if created:
            shm.unlink(missing_ok=True)
