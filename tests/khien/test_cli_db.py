"""``khien db backup`` / ``khien db restore`` on SQLite and PostgreSQL: real files, real pg_dump,
pg_restore and psql, a real server holding the database, a writer inserting during an online backup."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path

import pytest
from alembic import command
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.pool import NullPool

from collector import backup, backup_sqlite
from collector.agents import service as agents
from collector.agents.models import Agent
from collector.backup_postgres import libpq_target
from collector.db import Database, alembic_config, head_revision
from collector.events.models import Event
from collector.scoring.models import ScoreSnapshot
from collector.units.models import Unit
from collector.users.models import User
from khien import demo
from khien.cli import main
from khien.demo_history import Size, seed_history
from tests.collector import helpers as h
from tests.conftest import BACKENDS, PG_URL, free_port, new_pg_database
from tests.integration.conftest import Server
from tests.khien.test_cli import run

KHIEN_SCRIPT = Path(sys.executable).with_name("khien")  # the installed console script
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
SMALL = Size(departments=2, communes=1, hosts=(2, 3), start=date(2026, 6, 1))


# --- helpers --------------------------------------------------------------------------------------

def khien(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``khien`` in this process (argument parsing and error reporting included)."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(result: tuple[int, str, str], fragment: str) -> None:
    """Failed, with the error as the last stderr line (progress lines may precede it), no traceback."""
    code, _out, err = result
    lines = err.strip().splitlines()
    assert code != 0 and lines, err
    assert lines[-1].startswith("khien: error: ") and fragment in lines[-1], err
    assert "Traceback" not in err and sum("error" in line for line in lines) == 1, err


@pytest.fixture
def blank(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Empty databases (never migrated) of the backend under test, dropped at the end."""
    def make(label: str) -> str:
        if db_url.startswith("sqlite"):
            return f"sqlite:///{tmp_path / label / 'khien.db'}"
        return new_pg_database(request, prefix="khien_bk")
    return make


def populate(url: str) -> None:
    """Units, users (password hashes), an enrolled agent (secret hash), a host's events, a scored history."""
    db = Database(url)
    db.upgrade()
    demo.seed(db)
    seed_history(db, size=SMALL, now=NOW, out=lambda _line: None)
    h.add_user(db, "analyst1", "analyst")
    token = h.enroll_token(db, unit="DEMO-SKHCN")
    with db.transaction() as s:
        enrolled = agents.enroll(s, token=token, identity=h.identity(), agent_version="0.1.0")
        unit_id = s.execute(select(Unit.id).where(Unit.code == "DEMO-SKHCN")).scalar_one()
        for i in range(50):
            s.add(Event(unit_id=unit_id, host_id=enrolled.host_id, type="auth.failure", ts=NOW - timedelta(minutes=i),
                        data={"user": f"u{i}", "message": "Đăng nhập thất bại", "src_ip": "10.0.0.7"}))
    db.dispose()


def _engine(url: str):
    return create_engine(url, poolclass=NullPool)


def table_counts(url: str) -> dict[str, int]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                    for t in inspect(conn).get_table_names()}
    finally:
        engine.dispose()


def sample(url: str) -> dict[str, list]:
    """A few exact rows, compared between a source and its restored copy."""
    queries = {
        "users": select(User.id, User.username, User.password_hash, User.role).order_by(User.id),
        "agents": select(Agent.id, Agent.secret_hash, Agent.host_id, Agent.enrolled_at).order_by(Agent.id),
        "units": select(Unit.id, Unit.code, Unit.name, Unit.synthetic, Unit.parent_id).order_by(Unit.id),
        "events": select(Event.id, Event.type, Event.ts, Event.data).order_by(Event.id).limit(5),
        "snapshots": select(ScoreSnapshot.id, ScoreSnapshot.period, ScoreSnapshot.value, ScoreSnapshot.frozen_at)
        .order_by(ScoreSnapshot.id).limit(5),
    }
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return {name: [tuple(row) for row in conn.execute(q)] for name, q in queries.items()}
    finally:
        engine.dispose()


def unit_codes(url: str) -> set[str]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(select(Unit.code)).scalars())
    finally:
        engine.dispose()


def read_backup(path: Path) -> tuple[dict, bytes]:
    with tarfile.open(path, "r:*") as tar:
        members = tar.getmembers()
        manifest = json.loads(tar.extractfile(members[0]).read())
        assert [m.name for m in members] == ["manifest.json", manifest["payload"]]
        return manifest, tar.extractfile(members[1]).read()


def rewrite_backup(src: Path, dst: Path, *, manifest: Callable[[dict], dict] = lambda m: m,
                   payload: Callable[[bytes], bytes] = lambda b: b, reseal: bool = False) -> Path:
    """A copy of a backup with its manifest or payload changed (``reseal``: checksum made to match)."""
    data, body = read_backup(src)
    body = payload(body)
    if reseal:
        data |= {"sha256": hashlib.sha256(body).hexdigest(), "payload_bytes": len(body)}
    data = manifest(data)
    raw = json.dumps(data).encode()
    with tarfile.open(dst, "w:gz" if data["backend"] == "sqlite" else "w") as tar:
        for name, content in (("manifest.json", raw), (data["payload"], body)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return dst


def flip_middle_byte(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# --- round trips ----------------------------------------------------------------------------------

def test_backup_then_restore_into_an_empty_database(db_url, tmp_path, blank, capsys):
    populate(db_url)
    source_counts = table_counts(db_url)
    out = tmp_path / "khien.backup"
    done = subprocess.run([str(KHIEN_SCRIPT), "db", "backup", "--output", str(out), "--database-url", db_url],
                          capture_output=True, text=True, timeout=120)  # the real console script
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"backup written: {out} (") and "khien: backup: " in done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and leftovers(tmp_path) == []

    manifest, payload = read_backup(out)
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    assert manifest["backend"] == backend and manifest["revision"] == head_revision()
    assert manifest["khien_version"] == metadata.version("khien") and manifest["format_version"] == 1
    assert datetime.fromisoformat(manifest["created_at"]) > datetime.now(UTC) - timedelta(minutes=5)
    assert manifest["sha256"] == hashlib.sha256(payload).hexdigest() and manifest["payload_bytes"] == len(payload)
    assert manifest["tables"] == source_counts
    assert source_counts["events"] == 50 and source_counts["users"] == 2 and source_counts["agents"] == 1
    _payload_opens_with_standard_tools(backend, payload, tmp_path)

    target = blank("restored")
    code, stdout, err = khien(capsys, "db", "restore", "--input", str(out), "--database-url", target)
    assert code == 0, err
    assert stdout.startswith("restored ") and "migrated" not in stdout
    assert table_counts(target) == source_counts
    assert sample(target) == sample(db_url)
    db = Database(target)  # the restored database takes new rows after the restored ones (sequences too)
    try:
        db.upgrade()
        with db.transaction() as s:
            s.add(Unit(code="NEW", name="Đơn vị mới", kind="province"))
        with db.session() as s:
            ids = sorted(s.execute(select(Unit.id)).scalars())
        assert ids[-1] == max(row[0] for row in sample(db_url)["units"]) + 1
    finally:
        db.dispose()


def _payload_opens_with_standard_tools(backend: str, payload: bytes, tmp_path: Path) -> None:
    if backend == "sqlite":  # one self-contained file, in rollback-journal mode (no -wal needed)
        copy = tmp_path / "payload.db"
        copy.write_bytes(payload)
        con = sqlite3.connect(copy)
        try:
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert con.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        finally:
            con.close()
    else:
        listing = subprocess.run(["pg_restore", "--list"], input=payload, capture_output=True, timeout=60)
        assert listing.returncode == 0 and b"TABLE public events" in listing.stdout, listing.stderr


def test_restore_over_data_needs_force_and_then_replaces_it(db_url, tmp_path, capsys):
    populate(db_url)
    out = tmp_path / "before.backup"
    assert khien(capsys, "db", "backup", "--output", str(out), "--database-url", db_url)[0] == 0
    manifest, _ = read_backup(out)
    # In its own process: `khien unit add` keeps its connection pool until the process ends.
    assert run(db_url, "unit", "add", "AFTER", "--name", "Sau sao lưu", "--kind", "province").returncode == 0

    refused = khien(capsys, "db", "restore", "--input", str(out), "--database-url", db_url)
    assert_error(refused, "already holds data")
    assert "--force" in refused[2] and "AFTER" in unit_codes(db_url)

    # A backup whose checksum matches but whose payload the database tools reject changes nothing either.
    bogus = rewrite_backup(out, tmp_path / "bogus.backup", payload=lambda b: b"not a database " * 4096, reseal=True)
    assert_error(khien(capsys, "db", "restore", "--input", str(bogus), "--force", "--database-url", db_url),
                 "not a usable SQLite database" if db_url.startswith("sqlite") else "nothing was changed")
    assert "AFTER" in unit_codes(db_url)

    code, _out, err = khien(capsys, "db", "restore", "--input", str(out), "--force", "--database-url", db_url)
    assert code == 0, err
    assert "AFTER" not in unit_codes(db_url) and table_counts(db_url) == manifest["tables"]


def test_an_older_backup_is_restored_then_migrated(db_url, tmp_path, blank, capsys):
    old = blank("old")
    db = Database(old)
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0014")  # before 0015 added the pending_logins table and users' TOTP columns
    with db.engine.begin() as conn:
        conn.execute(Unit.__table__.insert().values(code="OLD", name="Sở cũ", kind="department",
                                                    created_at=NOW, synthetic=False))
    db.dispose()
    out = tmp_path / "old.backup"
    assert khien(capsys, "db", "backup", "--output", str(out), "--database-url", old)[0] == 0
    assert read_backup(out)[0]["revision"] == "0014"

    # The target is migrated to the newest schema but empty: no --force needed, and the restore must not
    # leave the newer tables behind (the migrations that follow would fail to create them).
    code, stdout, err = khien(capsys, "db", "restore", "--input", str(out), "--database-url", db_url)
    assert code == 0, err
    assert f"revision 0014, migrated to {head_revision()}" in stdout and "migrating the schema" in err
    engine = _engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head_revision()
            assert conn.execute(select(Unit.code)).scalars().all() == ["OLD"]
            assert "pending_logins" in inspect(conn).get_table_names()
            assert "totp_enabled" in {c["name"] for c in inspect(conn).get_columns("users")}
    finally:
        engine.dispose()


# --- online backup, a running server, interruption ------------------------------------------------

def test_online_sqlite_backup_holds_one_committed_state(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    db = Database(url)
    db.upgrade()
    h.seed_units(db)
    token = h.enroll_token(db)
    with db.transaction() as s:
        host_id = agents.enroll(s, token=token, identity=h.identity(), agent_version=None).host_id
        unit_id = s.execute(select(Unit.id).where(Unit.code == "D1")).scalar_one()
    batch = 25  # events per transaction, numbered: a committed state holds whole batches, none missing

    def insert_batches(first: int, count: int = 1) -> None:
        with db.transaction() as s:
            s.add_all(Event(unit_id=unit_id, host_id=host_id, type="auth.failure", ts=NOW,
                            data={"seq": seq, "pad": "x" * 200})
                      for seq in range(first * batch, (first + count) * batch))

    insert_batches(0, 400)  # ~4 MiB to copy
    committed, stop = [400], threading.Event()

    def writer() -> None:
        while not stop.is_set():
            insert_batches(committed[0])
            committed[0] += 1

    monkeypatch.setattr(backup_sqlite, "STEP_PAGES", 4)  # many small steps: the writer commits between them
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while committed[0] < 405:
            time.sleep(0.01)
        before = committed[0]
        backup.create_backup(database_url=url, output=tmp_path / "live.backup")
        after = committed[0]
    finally:
        stop.set()
        thread.join()
    db.dispose()
    assert after - before >= 3, "the writer should have committed while the copy ran"

    manifest, payload = read_backup(tmp_path / "live.backup")
    copy = tmp_path / "copy.db"
    copy.write_bytes(payload)
    con = sqlite3.connect(copy)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows, top = con.execute("SELECT count(*), max(json_extract(data, '$.seq')) FROM events").fetchone()
    finally:
        con.close()
    assert rows % batch == 0 and top == rows - 1  # whole transactions only
    assert before * batch <= rows <= after * batch
    assert manifest["tables"]["events"] == rows


def test_restore_refuses_while_a_server_has_the_database(db_url, tmp_path, capsys):
    db = Database(db_url)
    h.seed_units(db)
    db.dispose()
    out = tmp_path / "units.backup"
    assert khien(capsys, "db", "backup", "--output", str(out), "--database-url", db_url)[0] == 0
    assert run(db_url, "unit", "add", "LATER", "--name", "x", "--kind", "province").returncode == 0
    port = free_port()
    server = Server(url=f"http://127.0.0.1:{port}", db_url=db_url, data_dir=tmp_path / "server", port=port,
                    env=os.environ | {"KHIEN_SCHEDULER": "0"}, log=tmp_path / "server.log")
    server.start()
    try:
        assert_error(khien(capsys, "db", "restore", "--input", str(out), "--force", "--database-url", db_url),
                     "khien server")
        assert "LATER" in unit_codes(db_url)
    finally:
        server.stop()
    code, _out, err = khien(capsys, "db", "restore", "--input", str(out), "--force", "--database-url", db_url)
    assert code == 0, err
    assert unit_codes(db_url) == {"P", "D1", "D2"}


def test_an_interrupted_backup_leaves_no_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'big.db'}"
    db = Database(url)
    db.upgrade()
    with db.engine.begin() as conn:  # 96 MiB that gzip cannot shrink: the archive takes a while to write
        conn.exec_driver_sql("CREATE TABLE filler (blob BLOB)")
        conn.exec_driver_sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 96) "
                             "INSERT INTO filler SELECT randomblob(1048576) FROM n")
    db.dispose()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen([str(KHIEN_SCRIPT), "db", "backup", "--output", str(out_dir / "big.backup"),
                             "--database-url", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("khien: backup: copied") and line.rstrip().endswith("done"):
            proc.send_signal(signal.SIGTERM)  # while it checksums and writes the archive
            break
    proc.stderr.read()
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, seen
    assert list(out_dir.iterdir()) == []  # neither the final name nor a temporary file


# --- errors ---------------------------------------------------------------------------------------

def test_backup_errors(db_url, tmp_path, capsys):
    db = Database(db_url)
    h.seed_units(db)
    db.dispose()
    out = tmp_path / "b.backup"
    assert khien(capsys, "db", "backup", "--output", str(out), "--database-url", db_url)[0] == 0
    first = out.read_bytes()
    refused = khien(capsys, "db", "backup", "--output", str(out), "--database-url", db_url)
    assert_error(refused, "exists: use --force")
    assert len(refused[2].strip().splitlines()) == 1 and out.read_bytes() == first
    assert khien(capsys, "db", "backup", "--output", str(out), "--force", "--database-url", db_url)[0] == 0
    assert read_backup(out)[0]["tables"]["units"] == 3

    assert_error(khien(capsys, "db", "backup", "--output", str(tmp_path / "nowhere" / "b"), "--database-url", db_url),
                 "no such directory")
    assert_error(khien(capsys, "db", "backup", "--output", str(tmp_path), "--database-url", db_url), "is a directory")
    if db_url.startswith("sqlite"):
        database = db_url.removeprefix("sqlite:///")
        for target in (database, f"{database}-wal"):  # --force must not let a backup overwrite the database
            assert_error(khien(capsys, "db", "backup", "--output", target, "--force", "--database-url", db_url),
                         "is the database itself")
        assert table_counts(db_url)["units"] == 3
        missing, message = f"sqlite:///{tmp_path / 'none.db'}", "no SQLite database at"
    else:
        missing, message = "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/none", "database unreachable"
    failed = khien(capsys, "db", "backup", "--output", str(tmp_path / "x.backup"), "--database-url", missing)
    assert_error(failed, message)
    assert "s3cret" not in failed[2]
    assert leftovers(tmp_path) == [] and not (tmp_path / "x.backup").exists()


def test_restore_refuses_bad_input_and_changes_nothing(db_url, tmp_path, blank, capsys):
    db = Database(db_url)
    h.seed_units(db)
    db.dispose()
    good = tmp_path / "good.backup"
    assert khien(capsys, "db", "backup", "--output", str(good), "--database-url", db_url)[0] == 0
    garbage = tmp_path / "garbage.backup"
    garbage.write_text("hello, not a backup\n")
    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    no_manifest = tmp_path / "no-manifest.backup"
    with tarfile.open(no_manifest, "w") as tar:
        tar.add(garbage, arcname="khien.db")
    cases = {
        tmp_path / "missing.backup": "no such file",
        garbage: "not a Khiên backup",
        no_manifest: "not a Khiên backup",
        truncated: "damaged",
        rewrite_backup(good, tmp_path / "flipped.backup", payload=flip_middle_byte): "checksum mismatch",
        rewrite_backup(good, tmp_path / "newer.backup", manifest=lambda m: m | {"revision": "9999"}):
            "revision 9999, which this Khiên",
        rewrite_backup(good, tmp_path / "format.backup", manifest=lambda m: m | {"format_version": 2}):
            "newer than this Khiên reads",
        rewrite_backup(good, tmp_path / "fields.backup", manifest=lambda m: m | {"tables": {"units": -1}}):
            "field 'tables'",
    }
    target = blank("target")
    for path, fragment in cases.items():
        assert_error(khien(capsys, "db", "restore", "--input", str(path), "--force", "--database-url", target),
                     fragment)
    other = f"sqlite:///{tmp_path / 'other.db'}" if not db_url.startswith("sqlite") else PG_URL
    assert_error(khien(capsys, "db", "restore", "--input", str(good), "--database-url", other),
                 "is a backup of a")
    if not db_url.startswith("sqlite"):  # a target made by a newer Khiên: its unknown tables would survive
        engine = _engine(db_url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        engine.dispose()
        assert_error(khien(capsys, "db", "restore", "--input", str(good), "--force", "--database-url", db_url),
                     "is at schema revision 9999, which this Khiên does not know")
        assert unit_codes(db_url) == {"P", "D1", "D2"}
    # Nothing was created or changed anywhere.
    if db_url.startswith("sqlite"):
        assert not Path(target.removeprefix("sqlite:///")).parent.exists()
    else:
        assert table_counts(target) == {}
        assert not (tmp_path / "other.db").exists()
    assert leftovers(tmp_path) == []


def test_postgres_url_becomes_libpq_parameters_without_the_password():
    conninfo, env = libpq_target("postgresql+psycopg://khien:p%40ss%20w'rd@db.internal:5433/khien_prod"
                                 "?sslmode=verify-full&sslrootcert=/etc/khien/ca.pem")
    assert conninfo_to_dict(conninfo) == {"host": "db.internal", "port": "5433", "user": "khien",
                                          "dbname": "khien_prod", "sslmode": "verify-full",
                                          "sslrootcert": "/etc/khien/ca.pem", "application_name": "khien-backup"}
    assert "p@ss" not in conninfo and env["PGPASSWORD"] == "p@ss w'rd"
    socket_info, socket_env = libpq_target("postgresql+psycopg:///khien?host=/run/postgresql")
    assert conninfo_to_dict(socket_info) == {"host": "/run/postgresql", "dbname": "khien",
                                             "application_name": "khien-backup"}
    assert socket_env.get("PGPASSWORD") == os.environ.get("PGPASSWORD")  # a passfile / the environment still works


def test_restoring_onto_a_server_behind_the_source_keeps_detection_exact(tmp_path, request, capsys):
    """Events record the transaction that inserted them (detection's read order). A backup from a server
    whose transaction ids ran far ahead of the target's (a long-lived production cluster restored onto a
    fresh one) is renumbered: what detection had read stays read, the rest is read next, and events
    inserted after the restore are read too instead of sorting before the cursor for ever."""
    from collector.detection import DetectionWorker, get_position
    from collector.events import service as events
    from rules.detect import load_rules
    from tests.collector.events_helpers import failure, seed_host

    if "postgresql" not in BACKENDS:
        pytest.skip("postgresql excluded by KHIEN_TEST_BACKENDS")
    template = request.getfixturevalue("pg_template")
    source_url = new_pg_database(request, template=template, prefix="khien_src")
    target_url = new_pg_database(request, prefix="khien_dst")  # empty, at this server's own transaction ids
    source = Database(source_url)
    unit, host = seed_host(source)
    with source.transaction() as s:
        events.add_many(s, rows=[failure(unit, host, ts=NOW + timedelta(seconds=i), received_at=NOW, pid=i)
                                 for i in range(12)])
    ahead = 10**12  # the source server's transaction ids, far beyond this one's
    with source.engine.begin() as conn:
        ids = conn.execute(text("SELECT id FROM events ORDER BY id")).scalars().all()
        conn.execute(text("UPDATE events SET tx = :ahead + CASE WHEN id <= :i THEN 0 ELSE 1 END"),
                     {"ahead": ahead, "i": ids[3]})
        conn.execute(text("INSERT INTO pipeline_cursors (name, position, position_tx, updated_at) "
                          "VALUES ('detect', :i, :ahead, CURRENT_TIMESTAMP)"), {"i": ids[3], "ahead": ahead})
    source.dispose()
    out = tmp_path / "khien.backup"
    assert khien(capsys, "db", "backup", "--output", str(out), "--database-url", source_url)[0] == 0
    code, _stdout, err = khien(capsys, "db", "restore", "--input", str(out), "--database-url", target_url)
    assert code == 0, err
    assert "12 events renumbered" in err

    target = Database(target_url)
    with target.session() as s:
        assert get_position(s) == (0, ids[3])
    with target.transaction() as s:
        events.add_many(s, rows=[failure(unit, host, ts=NOW + timedelta(seconds=20 + i), received_at=NOW, pid=20 + i)
                                 for i in range(4)])
    worker = DetectionWorker(target, load_rules())
    assert worker.run_once() == 8 + 4  # the restored events not yet read, then the new ones; not ids[0:4]
    assert worker.run_once() == 0
    target.dispose()
