"""Running a scan: validate targets against the unit's ranges, nmap chunk by chunk, store, reconcile.

No database transaction is open while nmap runs: each chunk is scanned first, then stored and
turned into findings in one short transaction. A run that reaches the end of its window stops
between (or inside) chunks, is recorded as interrupted, and the addresses it did not finish stay
due, so the next window picks them up.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from collector.db import Database
from collector.errors import InvalidInput
from collector.scans import service as scans
from collector.scans.models import PROFILES, ScanRun
from collector.scans.nmap import ScanError, ScanInterrupted, run_nmap
from collector.scans.targets import TargetError, check_size, check_within, expand_chunks, parse_targets
from collector.types import utcnow
from collector.units import service as units

log = logging.getLogger(__name__)
DEFAULT_MAX_ADDRESSES = 65_536


@dataclass(frozen=True, slots=True)
class Progress:
    chunk: int
    chunks: int
    percent: float  # of the whole run
    message: str


def plan(session: Session, *, unit_code: str, targets: list[str] | None, max_addresses: int,
         skip: set[str] = frozenset()) -> tuple[int, list[str], list[str], list[list[str]]]:
    """(unit id, targets, excludes, address chunks) — refuses bad CIDRs, oversize and out-of-range targets."""
    unit = units.get_by_code(session, code=unit_code)
    owned, excluded = scans.ranges_of(session, unit_id=unit.id)
    if not owned:
        raise InvalidInput(f"unit {unit_code} has no declared ranges: khien unit ranges {unit_code} --add CIDR")
    try:
        nets = parse_targets(targets) if targets else parse_targets(owned)
        check_within(nets, allowed=parse_targets(owned), excludes=parse_targets(excluded), unit=unit_code)
        check_size(nets, max_addresses=max_addresses)
        chunks = expand_chunks(nets, excludes=parse_targets(excluded))
    except TargetError as exc:
        raise InvalidInput(str(exc)) from exc
    if skip:
        chunks = [kept for kept in ([a for a in c if a not in skip] for c in chunks) if kept]
    return unit.id, [str(n) for n in nets], excluded, chunks


def run(db: Database, *, unit_code: str, targets: list[str] | None = None, profile: str = "standard",
        trigger: str = "cli", max_addresses: int = DEFAULT_MAX_ADDRESSES, deadline: float | None = None,
        only_due: bool = False, nmap: str | None = None, ports: str | None = None,
        on_progress: Callable[[Progress], None] | None = None) -> ScanRun | None:
    """Scan now; returns the stored run (completed, interrupted at the deadline, or failed).

    With ``only_due`` only addresses whose rescan interval ran out are scanned (None: nothing due).
    """
    say = on_progress or (lambda _p: None)
    if profile not in PROFILES:
        raise InvalidInput(f"unknown scan profile {profile!r}; choose {', '.join(PROFILES)}")
    with db.transaction() as session:
        skip = set()
        if only_due:
            skip = scans.not_due(session, unit_id=units.get_by_code(session, code=unit_code).id, now=utcnow())
        unit_id, nets, excluded, chunks = plan(session, unit_code=unit_code, targets=targets,
                                               max_addresses=max_addresses, skip=skip)
        if only_due and not chunks:
            return None
        run_row = ScanRun(unit_id=unit_id, profile=profile, targets=nets, excludes=excluded, trigger=trigger,
                          started_at=utcnow(), chunks_total=len(chunks), addresses=sum(len(c) for c in chunks))
        session.add(run_row)
        session.flush()
        run_id = run_row.id
    status, error, nmap_seconds, hosts_up, command = "completed", None, 0.0, 0, ""
    totals: dict[str, int] = {}
    try:
        status, error, nmap_seconds, hosts_up, command = _scan_chunks(
            db, run_id=run_id, unit_id=unit_id, chunks=chunks, profile=profile, deadline=deadline, nmap=nmap,
            ports=ports, totals=totals, say=say)
    except BaseException as exc:  # a run never stays "running": record why, then re-raise
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        row = _finish(db, run_id=run_id, status=status, error=error, hosts_up=hosts_up,
                      nmap_seconds=nmap_seconds, command=command, totals=totals)
    return row


def _scan_chunks(db: Database, *, run_id: int, unit_id: int, chunks: list[list[str]], profile: str,
                 deadline: float | None, nmap: str | None, ports: str | None, totals: dict[str, int],
                 say: Callable[[Progress], None]) -> tuple[str, str | None, float, int, str]:
    """nmap chunk by chunk, each stored in its own transaction: (status, error, nmap s, hosts up, command)."""
    status, error, nmap_seconds, hosts_up, command = "completed", None, 0.0, 0, ""
    # What storing needs is imported in the background while the first chunk's nmap runs (a separate
    # process, so this costs the scan nothing): a fresh `khien scan` saves that much start-up.
    preload = threading.Thread(target=importlib.import_module, args=("collector.scans.store",), daemon=True)
    preload.start()
    for i, chunk in enumerate(chunks):
        def progress(fraction: float, i: int = i, size: int = len(chunk)) -> None:
            say(Progress(i + 1, len(chunks), round(100 * (i + fraction) / len(chunks), 1),
                         f"chunk {i + 1}/{len(chunks)}: {size} addresses"))
        progress(0.0)
        try:
            output = run_nmap(chunk, profile=profile, on_progress=progress, deadline=deadline, nmap=nmap,
                              ports=ports)
        except ScanInterrupted as exc:
            status, error = "interrupted", str(exc)[:2000]
            break
        except ScanError as exc:
            status, error = "failed", str(exc)[:2000]
            break
        nmap_seconds += output.elapsed_s
        command = " ".join(output.command)[:2000]
        preload.join()
        from collector.scans.store import store_chunk

        with db.transaction() as session:
            counted = store_chunk(session, run_id=run_id, unit_id=unit_id, chunk=chunk, output=output)
            hosts_up += counted.pop("hosts_up")
            for k, v in counted.items():
                totals[k] = totals.get(k, 0) + v
            session.get(ScanRun, run_id).chunks_done = i + 1
        progress(1.0)
    return status, error, nmap_seconds, hosts_up, command


def _finish(db: Database, *, run_id: int, status: str, error: str | None, hosts_up: int, nmap_seconds: float,
            command: str, totals: dict[str, int]) -> ScanRun:
    with db.transaction() as session:
        row = session.get(ScanRun, run_id)
        row.status, row.error, row.finished_at = status, error, utcnow()
        row.hosts_up, row.nmap_seconds, row.command, row.findings = hosts_up, round(nmap_seconds, 3), command, totals
        session.add(row)
        session.flush()
        session.expunge(row)
    return row


def run_due(db: Database, *, unit_code: str, profile: str, deadline: float | None,
            max_addresses: int) -> ScanRun | None:
    """The scheduler's entry: scan the unit's addresses whose rescan interval ran out (None if none)."""
    try:
        return run(db, unit_code=unit_code, profile=profile, trigger="schedule", deadline=deadline,
                   max_addresses=max_addresses, only_due=True)
    except InvalidInput as exc:  # e.g. ranges larger than the cap: the operator must see why nothing runs
        log.warning("scheduled scan of %s refused: %s", unit_code, exc)
        return None


def monotonic_deadline(until: datetime) -> float:
    return time.monotonic() + max(0.0, (until - utcnow()).total_seconds())
