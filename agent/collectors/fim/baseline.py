"""The FIM baseline: one SQLite row per watched path, kept on disk so memory stays flat at 100k files.

Rows are keyed by path and indexed by parent directory, so a scan compares one directory at a time
and a deleted directory's subtree is one range query (``/d/`` <= path < ``/d0``, as '0' follows '/').
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

COLUMNS = ("size", "mode", "uid", "gid", "mtime", "inode", "kind", "sha256", "target")

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, parent TEXT NOT NULL, size INTEGER, mode INTEGER, uid INTEGER,
    gid INTEGER, mtime REAL, inode INTEGER, kind TEXT, sha256 TEXT, target TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_parent ON files(parent);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


class Record(NamedTuple):
    """What the baseline knows about one path."""

    size: int
    mode: int
    uid: int
    gid: int
    mtime: float
    inode: int
    kind: str  # file | dir | symlink | other
    sha256: str | None = None
    target: str | None = None


def subtree_bounds(path: str) -> tuple[str, str]:
    """Range of paths strictly below ``path``."""
    prefix = path.rstrip("/") + "/"
    return prefix, prefix[:-1] + "0"


class Baseline:
    """SQLite store of records; callers commit at the end of each batch of work."""

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = self._open(db_path)
        except sqlite3.DatabaseError as exc:
            # A corrupt baseline must not stop the agent: set it aside and rebuild (silently, as at
            # install) rather than report every file as new.
            log.warning("fim: baseline %s unusable (%s); rebuilding", db_path, exc)
            for suffix in ("", "-wal", "-shm"):
                side = Path(f"{db_path}{suffix}")
                if side.exists():
                    side.replace(f"{side}.corrupt")
            self.db = self._open(db_path)
        self.pending = 0
        self._count = self.db.execute("SELECT COUNT(*) FROM files").fetchone()[0]

    @staticmethod
    def _open(db_path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(str(db_path), check_same_thread=False)
        try:
            db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                             "PRAGMA cache_size=-1024;" + SCHEMA)
            db.execute("SELECT COUNT(*) FROM files").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def __len__(self) -> int:
        return self._count

    def count_dirs(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM files WHERE kind='dir'").fetchone()[0]

    def get(self, path: str) -> Record | None:
        row = self.db.execute(f"SELECT {','.join(COLUMNS)} FROM files WHERE path=?", (path,)).fetchone()
        return Record(*row) if row else None

    def children(self, parent: str) -> dict[str, Record]:
        """Direct children of one directory (one directory's worth of rows in memory at a time)."""
        rows = self.db.execute(f"SELECT path,{','.join(COLUMNS)} FROM files WHERE parent=?", (parent,))
        return {row[0]: Record(*row[1:]) for row in rows}

    def subtree(self, path: str) -> Iterator[tuple[str, Record]]:
        lo, hi = subtree_bounds(path)
        rows = self.db.execute(f"SELECT path,{','.join(COLUMNS)} FROM files WHERE path>=? AND path<? "
                               "ORDER BY path", (lo, hi))
        for row in rows:  # streamed: a deleted tree of 100k rows is never all in memory
            yield row[0], Record(*row[1:])

    def put(self, path: str, record: Record, *, new: bool) -> None:
        self.db.execute(f"INSERT OR REPLACE INTO files (path,parent,{','.join(COLUMNS)}) "
                        f"VALUES (?,?,{','.join('?' * len(COLUMNS))})",
                        (path, os.path.dirname(path), *record))
        self._count += int(new)
        self._touch()

    def delete(self, path: str) -> None:
        self._count -= self.db.execute("DELETE FROM files WHERE path=?", (path,)).rowcount
        self._touch()

    def delete_subtree(self, path: str) -> None:
        lo, hi = subtree_bounds(path)
        self._count -= self.db.execute("DELETE FROM files WHERE path>=? AND path<?", (lo, hi)).rowcount
        self._touch()

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        self.commit()

    def _touch(self) -> None:
        # Commit in chunks: one transaction per 5,000 writes keeps a 100k baseline fast and bounded.
        self.pending += 1
        if self.pending >= 5000:
            self.commit()

    def commit(self) -> None:
        self.db.commit()
        self.pending = 0

    def close(self) -> None:
        self.commit()
        self.db.close()
