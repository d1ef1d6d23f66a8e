"""``khien db backup`` / ``khien db restore``: the whole database to one file and back (docs/backup.md).

Progress goes to stderr as ``khien: ...`` lines; the result is one line on stdout. Neither command
migrates the database first: a backup records the revision the database is at, and a restore
migrates only after the backup's data is in place.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from khien import cli_retention
from khien.cli_common import settings_of


def _progress(line: str) -> None:
    print(f"khien: {line}", file=sys.stderr, flush=True)


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM (systemd stopping a timer's job, ``timeout``) unwinds like Ctrl-C: temp files are removed,
    pg_dump/psql are stopped, and a restore in progress is rolled back."""
    def handler(signum: int, _frame) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_db_backup(args: argparse.Namespace) -> None:
    from collector import backup
    from collector.backup_archive import human

    with _terminate_cleanly():
        result = backup.create_backup(database_url=settings_of(args).database_url, output=Path(args.output),
                                      force=args.force, progress=_progress)
    m = result.manifest
    print(f"backup written: {result.path} ({human(result.size)}; {m.backend}, revision {m.revision}, "
          f"{len(m.tables)} tables, {m.rows:,} rows; sha256 {m.sha256}) in {result.seconds:.1f} s")


def cmd_db_restore(args: argparse.Namespace) -> None:
    from collector import backup
    from collector.db import redact

    url = settings_of(args).database_url
    with _terminate_cleanly():
        result = backup.restore_backup(database_url=url, path=Path(args.input), force=args.force,
                                       progress=_progress)
    m = result.manifest
    migrated = f", migrated to {result.revision}" if result.migrated else ""
    print(f"restored {redact(url)} from {args.input} (backup of {m.created_at}, revision {m.revision}{migrated}; "
          f"{len(m.tables)} tables, {m.rows:,} rows) in {result.seconds:.1f} s")


def register(sub, command: Callable) -> None:
    """Add ``khien db`` to the ``khien`` parser (``command`` adds the database options)."""
    db = sub.add_parser("db", help="back up, restore and prune the database").add_subparsers(dest="action",
                                                                                          required=True)
    p = command("backup", cmd_db_backup, "write an online, consistent backup of the whole database to one file "
                "(SQLite backup API or pg_dump); safe while the server runs", db)
    p.add_argument("--output", required=True, metavar="PATH", help="the backup file to write (mode 0600)")
    p.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    p = command("restore", cmd_db_restore, "replace the database with a backup (checked first), then migrate "
                "it if it is older; stop the server first", db)
    p.add_argument("--input", required=True, metavar="PATH", help="a file written by 'khien db backup'")
    p.add_argument("--force", action="store_true", help="replace a database that already holds data")
    cli_retention.register(db, command)
