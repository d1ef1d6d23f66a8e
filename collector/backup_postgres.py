"""PostgreSQL backup and restore with the server's own tools: pg_dump, pg_restore and psql.

The backup is ``pg_dump --format=custom`` of an exported snapshot, so the row counts in the manifest
are exactly what the dump holds, however busy the server. The restore is one transaction: psql runs
BEGIN, drops Khiên's tables, replays ``pg_restore``'s script with ``ON_ERROR_STOP``, and gets COMMIT
only once pg_restore has succeeded and the payload matched its checksum — any error leaves the target
as it was. Khiên's tables are dropped first (not only those in the dump) so that restoring an older
backup over a newer schema leaves no table the migrations would then fail to create.

A restore refuses while other sessions are connected to the target database (a running server
would keep writing into what is being replaced, and its open transactions would block the DROP).

The password travels in ``PGPASSWORD`` (never on a command line, where ``ps`` shows it); the other
URL parts become a libpq connection string.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from collector.backup_archive import CHUNK, Archive, BackupFailed, Meter, Progress, human
from collector.backup_tables import (
    VERSION_TABLE,
    Snapshot,
    count_difference,
    known_revisions,
    populated_tables,
    row_counts,
    schema_revision,
    table_names,
)
from collector.db import redact
from collector.errors import Conflict, DatabaseUnavailable, InvalidInput

CLIENT_HINT = "install the PostgreSQL client tools of the server's major version (Debian: postgresql-client)"
CONNECT_TIMEOUT_S = 10  # an unreachable server fails the command quickly (a URL's connect_timeout wins)


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and the environment carrying the password."""
    from psycopg.conninfo import make_conninfo

    parsed = make_url(url)
    params: dict[str, str] = {}
    for key, value in parsed.query.items():
        if not isinstance(value, str):
            raise InvalidInput(f"database URL option {key!r} is given more than once")
        params[key] = value
    for key, value in (("host", parsed.host), ("port", parsed.port), ("user", parsed.username),
                       ("dbname", parsed.database)):
        if value is not None:
            params[key] = str(value)
    password = params.pop("password", None) or parsed.password
    params.setdefault("application_name", "khien-backup")
    env = dict(os.environ)
    env.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT_S))
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupFailed(f"{name} not found: {CLIENT_HINT}")
    return path


@contextmanager
def _connect(url: str) -> Iterator[Connection]:
    given = make_url(url).query
    engine = create_engine(url, poolclass=NullPool,
                           connect_args={} if "connect_timeout" in given else {"connect_timeout": CONNECT_TIMEOUT_S})
    try:
        try:
            conn = engine.connect()
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseUnavailable(f"database unreachable ({redact(url)}): {reason}") from None
        with conn:
            yield conn
    finally:
        engine.dispose()


def _tool_error(name: str, err: BinaryIO) -> str:
    """The line of a tool's stderr that says what went wrong."""
    err.seek(0)
    lines = [ln.strip() for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
    chosen = next((ln for ln in lines if "error:" in ln.lower() or ln.startswith("ERROR")), lines[-1] if lines else "")
    return f"{name} failed: {chosen or 'no message'}"


def dump(*, url: str, dest: Path, progress: Progress) -> Snapshot:
    """``pg_dump --format=custom`` into ``dest``, from a snapshot whose row counts go in the manifest."""
    pg_dump = _tool("pg_dump")
    conninfo, env = libpq_target(url)
    with _connect(url) as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            snapshot_id = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            revision = schema_revision(conn)
            if revision is None:
                raise InvalidInput(f"{redact(url)} has no Khiên schema (no alembic_version table): nothing to back up")
            progress(f"backup: counting rows in {redact(url)} (snapshot {snapshot_id})")
            snap = Snapshot(revision=revision, tables=row_counts(conn))
            progress(f"backup: pg_dump of {len(snap.tables)} tables, {snap.rows:,} rows")
            # The exporting transaction stays open until pg_dump is done: it keeps the snapshot alive.
            _run_pg_dump([pg_dump, "--format=custom", "--no-password", f"--snapshot={snapshot_id}",
                          f"--file={dest}", f"--dbname={conninfo}"], env=env, dest=dest, progress=progress)
    return snap


def _run_pg_dump(cmd: list[str], *, env: dict[str, str], dest: Path, progress: Progress) -> None:
    meter = Meter(progress, "backup: pg_dump wrote", None, every=5.0)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        try:
            while True:
                try:
                    code = proc.wait(timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    meter.update(dest.stat().st_size)
        finally:
            if proc.poll() is None:  # interrupted: do not leave pg_dump running
                proc.kill()
                proc.wait()
        if code != 0:
            raise BackupFailed(_tool_error("pg_dump", err))
    meter.update(dest.stat().st_size)
    meter.finish()


def restore(*, archive: Archive, url: str, force: bool, progress: Progress) -> None:
    """Replace Khiên's tables in the target database with the backup's, in one transaction."""
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    conninfo, env = libpq_target(url)
    with _connect(url) as conn:
        _check_target(conn, url=url, force=force)  # again: a server may have started meanwhile
        drop = _drop_statement(conn)
    archive.copy_payload(None, progress=progress, label="restore: verifying checksum")
    progress(f"restore: loading into {redact(url)} in one transaction")
    _load(archive, pg_restore=pg_restore, psql=psql, conninfo=conninfo, env=env, drop=drop, progress=progress)
    with _connect(url) as conn:
        present = set(table_names(conn))
        actual = row_counts(conn, [name for name in archive.manifest.tables if name in present])
    difference = count_difference(expected=archive.manifest.tables, actual=actual)
    if difference:
        raise BackupFailed(f"the restored database differs from the backup: {difference}")
    progress(f"restore: {len(actual)} tables, {sum(actual.values()):,} rows restored")


def check_target(*, url: str, force: bool) -> None:
    """Conflict if others use the database, it holds data (without ``force``) or has a newer schema."""
    for name in ("pg_restore", "psql"):
        _tool(name)
    with _connect(url) as conn:
        _check_target(conn, url=url, force=force)


def _check_target(conn: Connection, *, url: str, force: bool) -> None:
    others = conn.execute(text(
        "SELECT count(*), string_agg(DISTINCT coalesce(nullif(application_name, ''), usename::text, '?'), ', ') "
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'")).one()
    if others[0]:
        raise Conflict(f"{redact(url)} has {others[0]} other open session(s) ({others[1]}): stop the khien "
                       "server(s) and other clients of this database before restoring")
    revision = schema_revision(conn)
    if revision is not None and revision not in known_revisions():
        raise Conflict(f"{redact(url)} is at schema revision {revision}, which this Khiên does not know "
                       "(made by a newer version): restore with that version, or into an empty database")
    populated = populated_tables(conn)
    if populated and not force:
        shown = ", ".join(populated[:4]) + (", …" if len(populated) > 4 else "")
        raise Conflict(f"{redact(url)} already holds data ({len(populated)} tables with rows: {shown}); "
                       "use --force to replace it")


def _drop_statement(conn: Connection) -> str:
    """DROP every table this Khiên knows (and the schema version): the restore recreates the backup's."""
    from collector.models import metadata

    names = sorted({table.name for table in metadata.sorted_tables} | {VERSION_TABLE})
    quote = conn.dialect.identifier_preparer.quote_identifier
    return "DROP TABLE IF EXISTS " + ", ".join(quote(name) for name in names) + " CASCADE"


class _PipelineGone(Exception):
    """pg_restore stopped reading: its exit status and stderr say why."""


class _Feed:
    """pg_restore's standard input."""

    name = "pg_restore"

    def __init__(self, pipe: BinaryIO) -> None:
        self.pipe = pipe

    def write(self, chunk: bytes) -> None:
        try:
            self.pipe.write(chunk)
        except BrokenPipeError:
            raise _PipelineGone from None

    def close(self) -> None:
        with suppress(BrokenPipeError):
            self.pipe.close()


class _Feeder(threading.Thread):
    """Streams the payload into pg_restore while the main thread passes its script on to psql."""

    def __init__(self, archive: Archive, pipe: BinaryIO, progress: Progress) -> None:
        super().__init__(name="khien-restore-feed", daemon=True)
        self.archive, self.feed, self.progress = archive, _Feed(pipe), progress
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.archive.copy_payload(self.feed, progress=self.progress, label="restore: loaded")
        except _PipelineGone:
            pass  # nothing is committed; the main thread reports the tool's error
        except Exception as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            self.error = exc
        finally:
            self.feed.close()


def _pump(source: BinaryIO, sink: BinaryIO, *, prelude: bytes) -> bool:
    """Copy pg_restore's script to psql; False if psql stopped reading (it failed)."""
    try:
        sink.write(prelude)
        while chunk := source.read(CHUNK):
            sink.write(chunk)
    except BrokenPipeError:
        return False
    return True


def _load(archive: Archive, *, pg_restore: str, psql: str, conninfo: str, env: dict[str, str], drop: str,
          progress: Progress) -> None:
    """psql runs BEGIN, the DROP, pg_restore's script — and COMMIT only once pg_restore has succeeded and
    the payload matched its checksum again; otherwise psql ends with the transaction open (rolled back)."""
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        script = subprocess.Popen([pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges",
                                   "--file=-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=restore_err)
        load = subprocess.Popen([psql, "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1",
                                 "--file=-", f"--dbname={conninfo}"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=psql_err, env=env)
        feeder = _Feeder(archive, script.stdin, progress)
        feeder.start()
        try:
            # lock_timeout: a session that slipped in since the check fails the restore instead of hanging it.
            prelude = f"BEGIN;\nSET LOCAL lock_timeout = '30s';\n{drop};\n".encode()
            piped = _pump(script.stdout, load.stdin, prelude=prelude)
            if not piped:
                script.kill()  # psql failed: stop pg_restore rather than wait on a full pipe
            restore_code = script.wait()
            feeder.join()
            if piped and restore_code == 0 and feeder.error is None:
                piped = _pump(io.BytesIO(), load.stdin, prelude=b"\nCOMMIT;\n")
            with suppress(BrokenPipeError):
                load.stdin.close()
            load_code = load.wait()
        finally:
            for proc in (script, load):
                if proc.poll() is None:  # interrupted: psql's session ends, its transaction rolls back
                    proc.kill()
                    proc.wait()
            feeder.join()
        if load_code != 0 or not piped:
            raise BackupFailed(_tool_error("psql", psql_err) + " (nothing was changed)")
        if feeder.error is not None:
            raise feeder.error
        if restore_code != 0:
            raise BackupFailed(_tool_error("pg_restore", restore_err) + " (nothing was changed)")
    progress(f"restore: transaction committed ({human(archive.manifest.payload_bytes)} of dump)")
