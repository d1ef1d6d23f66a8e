"""Cross-domain flows: a validated batch becomes host updates, inventory history and events.

This is the only module that touches several domains in one transaction (DESIGN.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from collector.agents import service as agents
from collector.agents.models import Agent
from collector.db import Database
from collector.events import service as events
from collector.hosts import service as hosts
from collector.hosts.models import Host
from collector.ingest import service as ingest
from collector.ingest.schema import BatchIn, InventorySnapshot
from collector.types import utcnow


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicate: bool
    by_type: dict[str, int]
    dropped_reported: dict[str, int]


def ingest_batch(db: Database, *, agent_id: str, batch: BatchIn) -> IngestResult:
    """Store a batch all-or-nothing; a replayed ``(agent_id, batch_id)`` writes nothing."""
    batch_id = str(batch.batch_id)
    try:
        with db.transaction() as session:
            if ingest.seen(session, agent_id=agent_id, batch_id=batch_id):
                return IngestResult(0, True, {}, {})
            ingest.record(session, agent_id=agent_id, batch_id=batch_id, item_count=len(batch.items))
            agent = session.get(Agent, agent_id)
            host = session.get(Host, agent.host_id)
            by_type, dropped = _apply_items(session, agent=agent, host=host, batch=batch)
            now = utcnow()
            agent.last_seen_at = now
            hosts.touch(host, at=now)
            session.add(agent)
            session.add(host)
    except IntegrityError as exc:
        if "uq_ingest_agent_batch" in str(exc) or "ingest_batches" in str(exc):
            return IngestResult(0, True, {}, {})  # lost a race with the same batch from a retry
        raise
    return IngestResult(len(batch.items), False, by_type, dropped)


def _apply_items(session, *, agent: Agent, host: Host, batch: BatchIn) -> tuple[dict[str, int], dict[str, int]]:
    received = utcnow()
    rows: list[dict[str, Any]] = []
    by_type: dict[str, int] = {}
    dropped: dict[str, int] = {}

    def event(type_: str, ts: datetime, data: dict[str, Any], origin: str = "agent") -> None:
        rows.append({"unit_id": host.unit_id, "host_id": host.id, "type": type_, "ts": ts,
                     "received_at": received, "origin": origin, "data": data})

    for item in batch.items:
        by_type[item.type] = by_type.get(item.type, 0) + 1
        if item.type == "host.heartbeat":
            data = item.data.model_dump(mode="json")
            agents.record_heartbeat(session, agent=agent, host=host, data=data)
            dropped = data.get("dropped") or {}
        elif item.type == "inventory.snapshot":
            for type_, data in _apply_inventory(session, host=host, snapshot=item.data, at=item.ts):
                event(type_, item.ts, data, origin="collector")
        else:
            event(item.type, item.ts, item.data.model_dump(mode="json"))
    events.add_many(session, rows=rows)
    return by_type, dropped


def _apply_inventory(session, *, host: Host, snapshot: InventorySnapshot, at: datetime):
    sections: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for name in type(snapshot.sections).model_fields:
        section = getattr(snapshot.sections, name)
        if section is not None:
            sections[name] = (section.hash, [r.model_dump(mode="json") for r in section.rows])
    if "identity" in sections and sections["identity"][1]:
        hosts.check_identity(host, sections["identity"][1][0])
    return hosts.update_from_inventory(session, host=host, sections=sections, at=at)
