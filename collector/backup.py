"""Backup and restore of the whole database (``khien db backup`` / ``khien db restore``).

A backup is one file (``collector.backup_archive``): a manifest — backend, schema revision, Khiên
version, time, row counts, SHA-256 of the payload — and the payload, an online SQLite copy
(``collector.backup_sqlite``) or a ``pg_dump`` custom archive (``collector.backup_postgres``). It is
written beside the output under a temporary name, flushed to disk and renamed at the end, so the
final name never holds a partial backup; files are private (0600): they hold password hashes.

A restore checks everything it can before it changes anything: the manifest, the backend, the
revision (newer than this code knows: refused; older: restored, then migrated), the checksum, the
target (refused if it holds data, unless forced, and while a server has it open).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from collector import backup_postgres, backup_sqlite, detection
from collector.backup_archive import (
    PAYLOAD_NAMES,
    Archive,
    BackupFailed,
    Manifest,
    Progress,
    file_sha256,
    fsync_dir,
    human,
    write_archive,
)
from collector.backup_tables import known_revisions
from collector.db import Database, head_revision, redact
from collector.errors import Conflict, InvalidInput
from collector.types import utcnow

__all__ = ["BackupFailed", "BackupResult", "RestoreResult", "create_backup", "restore_backup"]


def _silent(_line: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    manifest: Manifest
    size: int  # bytes of the backup file
    seconds: float


@dataclass(frozen=True, slots=True)
class RestoreResult:
    manifest: Manifest  # what was restored
    revision: str  # the schema revision the database is at now (migrated when the backup was older)
    seconds: float

    @property
    def migrated(self) -> bool:
        return self.revision != self.manifest.revision


def backend_of(database_url: str) -> str:
    """``sqlite`` or ``postgresql``; InvalidInput for anything else."""
    try:
        backend = make_url(database_url).get_backend_name()
    except (SQLAlchemyError, ValueError):
        raise InvalidInput(f"not a database URL: {redact(database_url)!r}") from None
    if backend not in PAYLOAD_NAMES:
        raise InvalidInput(f"cannot back up a {backend} database (sqlite or postgresql only)")
    return backend


def sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise InvalidInput("the SQLite database URL names no file (sqlite:///PATH)")
    return Path(database).absolute()


def _khien_version() -> str:
    try:
        return metadata.version("khien")
    except metadata.PackageNotFoundError:
        return "unknown"


def _private_temp(beside: Path, suffix: str, temps: list[Path]) -> Path:
    """A new empty file (mode 0600) beside ``beside``, recorded in ``temps`` for removal."""
    fd, raw = tempfile.mkstemp(dir=beside.parent, prefix=f".{beside.name}.", suffix=suffix)
    os.close(fd)
    temps.append(Path(raw))
    return temps[-1]


def _sqlite_files(db_path: Path) -> set[Path]:
    return {db_path, *(Path(f"{db_path}{suffix}") for suffix in ("-wal", "-shm", "-journal"))}


def _check_output(output: Path, *, force: bool) -> Path:
    output = output.absolute()
    if output.is_dir():
        raise InvalidInput(f"{output} is a directory: give the backup file's path")
    if not output.parent.is_dir():
        raise InvalidInput(f"{output.parent}: no such directory")
    if output.exists() and not force:
        raise Conflict(f"{output} exists: use --force to overwrite it")
    if not os.access(output.parent, os.W_OK):
        raise InvalidInput(f"{output.parent}: not writable")
    return output


def create_backup(*, database_url: str, output: Path, force: bool = False,
                  progress: Progress = _silent) -> BackupResult:
    """Back up the database into ``output`` (refused if it exists unless ``force``)."""
    started = time.monotonic()
    backend = backend_of(database_url)
    output = _check_output(output, force=force)
    if backend == "sqlite" and output.resolve() in _sqlite_files(sqlite_path(database_url).resolve()):
        raise InvalidInput(f"{output} is the database itself: write the backup somewhere else")
    temps: list[Path] = []
    try:
        payload, partial = _private_temp(output, ".payload", temps), _private_temp(output, ".partial", temps)
        if backend == "sqlite":
            snap = backup_sqlite.snapshot(db_path=sqlite_path(database_url), dest=payload, progress=progress)
        else:
            snap = backup_postgres.dump(url=database_url, dest=payload, progress=progress)
        size, digest = file_sha256(payload, progress=progress)
        manifest = Manifest(backend=backend, revision=snap.revision, khien_version=_khien_version(),
                            created_at=utcnow().isoformat(timespec="seconds"), source=redact(database_url),
                            payload=PAYLOAD_NAMES[backend], payload_bytes=size, sha256=digest, tables=snap.tables)
        write_archive(path=partial, manifest=manifest, payload=payload, progress=progress)
        if output.exists() and not force:  # appeared while we worked
            raise Conflict(f"{output} exists: use --force to overwrite it")
        os.replace(partial, output)
        fsync_dir(output.parent)
    except OSError as exc:  # the disk filled, a file vanished...: one line, and nothing left behind
        raise BackupFailed(f"backup not written: {exc.strerror or exc}"
                           + (f" ({exc.filename})" if exc.filename else "")) from None
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
    return BackupResult(path=output, manifest=manifest, size=output.stat().st_size,
                        seconds=time.monotonic() - started)


def _check_revision(manifest: Manifest, where: Path) -> None:
    if manifest.revision not in known_revisions():
        raise InvalidInput(f"{where}: the backup is at schema revision {manifest.revision}, which this Khiên "
                           f"({_khien_version()}, newest revision {head_revision()}) does not know: restore it "
                           f"with Khiên {manifest.khien_version} or newer")


def restore_backup(*, database_url: str, path: Path, force: bool = False,
                   progress: Progress = _silent) -> RestoreResult:
    """Replace the database with the backup file at ``path``; migrate it when the backup is older."""
    started = time.monotonic()
    backend = backend_of(database_url)
    archive = Archive.open(path.absolute())
    manifest = archive.manifest
    if manifest.backend != backend:
        raise InvalidInput(f"{archive.path} is a backup of a {manifest.backend} database; the target "
                           f"{redact(database_url)} is {backend}")
    _check_revision(manifest, archive.path)
    try:
        if backend == "sqlite":
            db_path = sqlite_path(database_url)
            backup_sqlite.check_target(db_path=db_path, force=force)
            _announce(manifest, progress)
            backup_sqlite.restore(archive=archive, db_path=db_path, force=force, progress=progress)
        else:
            backup_postgres.check_target(url=database_url, force=force)
            _announce(manifest, progress)
            backup_postgres.restore(archive=archive, url=database_url, force=force, progress=progress)
    except OSError as exc:
        raise BackupFailed(f"restore failed: {exc.strerror or exc}"
                           + (f" ({exc.filename})" if exc.filename else "")) from None
    revision = _migrate(database_url, manifest.revision, progress)
    if backend == "postgresql":
        _rebase_commit_order(database_url, progress)
    return RestoreResult(manifest=manifest, revision=revision, seconds=time.monotonic() - started)


def _rebase_commit_order(database_url: str, progress: Progress) -> None:
    """Restored events carry the source server's transaction ids (detection's read order): renumber them
    when this server's ids are lower (collector/detection.py ``rebase_commit_order``)."""
    db = Database(database_url)
    try:
        with db.transaction() as session:
            renumbered = detection.rebase_commit_order(session)
    finally:
        db.dispose()
    if renumbered:
        progress(f"restore: {renumbered:,} events renumbered in detection's read order (the backup comes "
                 "from a PostgreSQL server whose transaction ids ran ahead of this one)")


def _announce(manifest: Manifest, progress: Progress) -> None:
    progress(f"restore: backup of {manifest.source} taken {manifest.created_at} by Khiên {manifest.khien_version} "
             f"(revision {manifest.revision}; {len(manifest.tables)} tables, {manifest.rows:,} rows, "
             f"{human(manifest.payload_bytes)})")


def _migrate(database_url: str, restored: str, progress: Progress) -> str:
    head = head_revision()
    if restored == head:
        return head
    progress(f"restore: migrating the schema from revision {restored} to {head}")
    db = Database(database_url)
    try:
        db.upgrade()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise BackupFailed(f"restored revision {restored}, but migrating to {head} failed: {reason} "
                           "(the server retries the migration when it starts)") from None
    finally:
        db.dispose()
    return head
