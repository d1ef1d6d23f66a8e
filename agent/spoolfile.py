"""The spool's SQLite file: schema, connection settings, what a failed write means, read-only stats."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Drop reasons for items the disk would not take (heartbeat keys and metric labels, like the others).
DISK_FULL = "disk_full"  # the state directory's filesystem has no room left
SPOOL_UNWRITABLE = "spool_unwritable"  # read-only filesystem, I/O error

# SQLite primary result codes that say the storage, not the data, is the problem:
# SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR (and its extended codes), SQLITE_CANTOPEN.
_STORAGE_FAILURES = {13: DISK_FULL, 8: SPOOL_UNWRITABLE, 10: SPOOL_UNWRITABLE, 14: SPOOL_UNWRITABLE}

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT,
    size INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_batch ON items(batch_id) WHERE batch_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    agent_time TEXT NOT NULL,
    first_id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (kind, reason)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT,
    at TEXT NOT NULL,
    size INTEGER NOT NULL,
    body TEXT NOT NULL
);
"""


def storage_failure(exc: sqlite3.Error) -> str | None:
    """The drop reason when ``exc`` means the disk cannot take writes; None for any other error."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return _STORAGE_FAILURES.get(code & 0xFF)
    return DISK_FULL if "disk is full" in str(exc) else None


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the spool database with its durability settings."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect on a new file; that is enough
    db.execute("PRAGMA journal_mode = WAL")
    # FULL: an acknowledged-then-lost delete or a lost batch assignment would mean duplicates.
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA cache_size = -256")  # reads are sequential: a 256 KiB page cache is plenty
    db.executescript(SCHEMA)
    return db


def stats_of(db: sqlite3.Connection, items: int, size: int) -> dict[str, Any]:
    """Depth, bytes, pending batches, drops and dead letters by reason, as stored."""
    counters: dict[str, dict[str, int]] = {"dropped": {}, "dead_letter": {}}
    for kind, reason, count in db.execute("SELECT kind, reason, count FROM counters ORDER BY reason"):
        counters.setdefault(kind, {})[reason] = count
    pending = db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
    kept = db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
    return {
        "items": items,
        "bytes": size,
        "pending_batches": pending,
        "dropped": counters["dropped"],
        "dead_letters": sum(counters["dead_letter"].values()),
        "dead_letter_reasons": counters["dead_letter"],
        "dead_letters_kept": kept,
    }


def read_stats(path: Path) -> dict[str, Any] | None:
    """Spool stats read without writing (for ``status``); None if there is no readable spool.

    Drops a running agent could not write yet (a full disk) are only in its own memory: its
    heartbeat carries them.
    """
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            items, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items").fetchone()
            return stats_of(db, items, size)
        finally:
            db.close()
    except sqlite3.Error as exc:
        log.debug("cannot read spool %s: %s", path, exc)
        return None
