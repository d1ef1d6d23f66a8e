"""What the database says after a run: stored counts, the detection cursor, the PostgreSQL backends.

``stored_exactly_once`` compares what the agents were told was stored (202, not duplicate) with what
the database holds, type by type: each auth/FIM item is one event row from the agent, each package
delta one change event the collector derives, each acknowledged batch one ``ingest_batches`` row.
Heartbeats and inventory snapshots update rows instead of adding them, so they are checked through
the derived events and the batch count only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.exc import SQLAlchemyError

from bench.load_stats import ClientStats
from collector.db import Database
from collector.detection import get_position
from collector.events.models import Event
from collector.ingest.models import IngestBatch

NOT_EVENTS = frozenset({"host.heartbeat", "inventory.snapshot"})


def count_stored(db: Database) -> dict[str, Any]:
    """Event rows by (type, origin) and the number of ingest batches."""
    with db.session() as session:
        events = {f"{type_}|{origin}": n for type_, origin, n in session.execute(
            select(Event.type, Event.origin, func.count()).group_by(Event.type, Event.origin))}
        batches = session.scalar(select(func.count()).select_from(IngestBatch)) or 0
    return {"events": events, "batches": batches}


def stored_exactly_once(db: Database, *, before: dict[str, Any], after: dict[str, Any],
                        stats: ClientStats) -> dict[str, Any]:
    """Per type: acknowledged by the server vs added to the database during the run; ok when all match."""
    def added(type_: str, origin: str) -> int:
        key = f"{type_}|{origin}"
        return after["events"].get(key, 0) - before["events"].get(key, 0)

    rows = {}
    for type_, n in sorted(stats.accepted_by_type.items()):
        if type_ not in NOT_EVENTS:
            rows[type_] = {"acknowledged": n, "stored": added(type_, "agent")}
    for type_, n in sorted(stats.derived_expected.items()):
        rows[f"{type_} (derived)"] = {"acknowledged": n, "stored": added(type_, "collector")}
    rows["batches"] = {"acknowledged": stats.batches, "stored": after["batches"] - before["batches"]}
    mismatched = [name for name, row in rows.items() if row["acknowledged"] != row["stored"]]
    lost = stats.undelivered + sum(stats.dead_lettered.values())
    return {"ok": not mismatched and lost == 0, "mismatched": mismatched, "undelivered": stats.undelivered,
            "dead_lettered": dict(stats.dead_lettered), "by_type": rows}


def detection_position(db: Database, servers: list, *, scrape: bool = True) -> dict[str, Any]:
    """The stored detection cursor, the events after it, and (scraped) each server's lag gauge."""
    with db.session() as session:
        cursor = get_position(session)
        newest = session.scalar(select(func.max(Event.id))) or 0
        backlog = session.scalar(select(func.count()).select_from(Event)
                                 .where(tuple_(Event.tx, Event.id) > tuple_(*cursor))) or 0
    out: dict[str, Any] = {"cursor": cursor[1], "newest_event": newest, "backlog_events": backlog}
    if scrape:
        for server in servers:
            metrics = server.metrics()
            out[f"server-{server.index}"] = {"lag_s": metrics.get('khien_detection{what="lag_s"}'),
                                             "cursor": metrics.get('khien_detection{what="cursor"}'),
                                             "events": metrics.get('khien_detection{what="events"}')}
    return out


def database_pids(db: Database) -> Callable[[], list[int]]:
    """A function listing the PostgreSQL backends connected to the bench database (not this one)."""
    def pids() -> list[int]:
        try:
            with db.engine.connect() as conn:
                return [row[0] for row in conn.execute(text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))]
        except SQLAlchemyError:
            return []  # unreachable for a moment: database CPU reads 0 until the next lookup (5 s)
    return pids
