"""``khien db retention``: remove events older than the retention period (whole months on PostgreSQL)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from collector.events.retention_policy import DEFAULT_KEEP_DAYS, ENV_VAR, MIN_KEEP_DAYS, configured_keep_days
from khien.cli_common import database

PROGRESS_EVERY_S = 2.0  # a long SQLite run prints where it is this often (stderr), not once per batch


def cmd_db_retention(args: argparse.Namespace) -> None:
    from collector.events import retention
    from collector.types import utcnow

    last = [time.monotonic()]

    def progress(step: retention.Progress) -> None:
        if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            print(f"... {step.rows_removed} events removed in {step.batches} batches "
                  f"(id {step.next_id} of {step.boundary_id})", file=sys.stderr, flush=True)

    keep_days = args.keep_days if args.keep_days is not None else configured_keep_days(os.environ)
    result = retention.run_retention(database(args), now=utcnow(), keep_days=keep_days,
                                     dry_run=args.dry_run, progress=progress)
    print(result.summary())


def register(db_sub, command: Callable) -> None:
    """Add ``retention`` to the ``khien db`` group's subparsers."""
    p = command("retention", cmd_db_retention,
                "remove events received before the retention period (PostgreSQL: whole monthly partitions; "
                "SQLite: deletes in batches); alerts, findings and scores keep their own rows", db_sub)
    p.add_argument("--dry-run", action="store_true", help="only report what would be removed")
    p.add_argument("--keep-days", type=int, metavar="N",
                   help=f"days of events to keep (default ${ENV_VAR} or {DEFAULT_KEEP_DAYS}, as the server uses; "
                        f"at least {MIN_KEEP_DAYS}, what the annual ranking's evidence needs)")
