"""Cross-domain flows: a validated batch becomes host updates, inventory history and events.

This is the only module that touches several domains in one transaction (DESIGN.md §3). The hot
path (a batch of events) is Core statements only; ORM objects are loaded just for heartbeats and
inventory, which are rare next to events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from collector import producers
from collector.agents import service as agents
from collector.agents.models import Agent
from collector.compliance import service as compliance
from collector.db import Database
from collector.errors import KhienError
from collector.events import service as events
from collector.hosts import service as hosts
from collector.hosts.models import Host
from collector.ingest import service as ingest
from collector.ingest.schema import BatchIn, InventorySnapshot, parse_batch
from collector.ratelimit import RateLimiter
from collector.scoring import activity
from collector.types import utcnow
from rules.eol import eol_for_os

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicate: bool
    by_type: dict[str, int]


DUPLICATE = IngestResult(0, True, {})
# Last-seen times are kept to the minute: staleness is judged in quarters of an hour, and rewriting two
# rows on every batch was a tenth of the server's ingest time (bench/load.py, issue 8).
SEEN_RESOLUTION = timedelta(seconds=60)


def _not_after(agent_time: datetime, received: datetime) -> datetime:
    """When a check result or inventory state starts to hold: the host's time, but never later than the
    server received it, so a host whose clock runs ahead cannot date its state into the future (and so
    out of today's score). A clock behind is not corrected: a snapshot spooled during an outage and sent
    late legitimately carries an earlier time."""
    return min(agent_time, received)


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One ``POST /api/v1/agent/batches`` as received: the credential and the raw body."""

    credential: str
    body: bytes
    encoding: str | None


def receive_batch(
    db: Database, *, credential: str, body: bytes, encoding: str | None, limiter: RateLimiter, max_decompressed: int
) -> IngestResult:
    """Authenticate, rate-limit, decode, validate and store one agent batch in a single transaction."""

    def work(session: Session) -> IngestResult:
        agent, batch = _admit(session, BatchRequest(credential, body, encoding), limiter=limiter,
                              max_decompressed=max_decompressed)
        return _store_now(session, agent=agent, batch=batch)

    return _once(db, work)


def receive_batches(db: Database, *, requests: list[BatchRequest], limiter: RateLimiter,
                    max_decompressed: int) -> list[IngestResult | Exception]:
    """``receive_batch`` for each request, in one transaction: each answer is its result or its error.

    Under load the ingest threads find many batches queued (collector/ingest/worker.py); a transaction
    and a commit each was most of a batch's time on PostgreSQL (a WAL flush per commit, about ten round
    trips). Here they share one commit and one COPY of their events. A batch refused before anything
    is written (credential, rate limit, malformed body, replay) answers alone; any error once writing
    has begun fails the shared transaction, and then each batch is received on its own, so one batch
    never sinks another and none is stored in part.
    """
    if len(requests) == 1:
        return [_alone(db, requests[0], limiter=limiter, max_decompressed=max_decompressed)]
    answers: list[IngestResult | Exception | None] = [None] * len(requests)
    charged: set[int] = set()  # took a rate-limit token already: not charged again if retried alone
    try:
        with db.transaction() as session:
            rows: list[dict[str, Any]] = []
            for i, request in enumerate(requests):
                try:
                    agent, batch = _admit(session, request, limiter=limiter, max_decompressed=max_decompressed)
                except KhienError as exc:
                    answers[i] = exc
                    continue
                charged.add(i)
                answers[i] = _store(session, agent=agent, batch=batch, rows=rows)
            events.add_many(session, rows=rows)
    except Exception as exc:  # noqa: BLE001 - the shared transaction failed: each batch on its own
        log.warning("ingest: %d batches failed together (%s); receiving each alone", len(requests),
                    type(exc).__name__)
        return [_alone(db, request, limiter=_NOT_AGAIN if i in charged else limiter,
                       max_decompressed=max_decompressed) for i, request in enumerate(requests)]
    return answers  # type: ignore[return-value] - every slot was filled


def _alone(db: Database, request: BatchRequest, *, limiter: RateLimiter | _Charged,
           max_decompressed: int) -> IngestResult | Exception:
    """``receive_batch`` in a transaction of its own; its error, if any, is the answer."""
    try:
        return receive_batch(db, credential=request.credential, body=request.body, encoding=request.encoding,
                             limiter=limiter, max_decompressed=max_decompressed)
    except Exception as exc:  # noqa: BLE001 - handed back as this batch's answer
        return exc


class _Charged:
    """A limiter for a batch that took its token in a failed shared transaction."""

    def take(self, _key: str) -> None:
        return None


_NOT_AGAIN = _Charged()


def _admit(session: Session, request: BatchRequest, *, limiter: RateLimiter,
           max_decompressed: int) -> tuple[Agent, BatchIn]:
    """The agent and its validated batch; refuses (KhienError) before anything is written."""
    agent = agents.authenticate(session, credential=request.credential)
    limiter.take(agent.id)  # before any parsing: a flooding agent costs one lookup per request
    batch = parse_batch(ingest.decode_body(request.body, content_encoding=request.encoding,
                                           max_decompressed=max_decompressed))
    return agent, batch


def ingest_batch(db: Database, *, agent: Agent, batch: BatchIn) -> IngestResult:
    """Store an already validated batch for an authenticated agent (all-or-nothing, idempotent)."""
    return _once(db, lambda session: _store_now(session, agent=agent, batch=batch))


def _once(db: Database, work: Callable[[Session], IngestResult]) -> IngestResult:
    """Run ``work`` in a transaction; a batch id claimed before (a replay, or a racing retry) is a duplicate."""
    try:
        with db.transaction() as session:
            return work(session)
    except IntegrityError as exc:
        if "uq_ingest_agent_batch" in str(exc) or "ingest_batches" in str(exc):
            return DUPLICATE
        raise


def _store_now(session: Session, *, agent: Agent, batch: BatchIn) -> IngestResult:
    rows: list[dict[str, Any]] = []
    result = _store(session, agent=agent, batch=batch, rows=rows)
    events.add_many(session, rows=rows)
    return result


def _store(session: Session, *, agent: Agent, batch: BatchIn, rows: list[dict[str, Any]]) -> IngestResult:
    """Apply the batch's items; its events are appended to ``rows`` for the caller to insert."""
    # Claiming the batch id first makes a replay stop before anything else is written.
    if not ingest.record(session, agent_id=agent.id, batch_id=str(batch.batch_id), item_count=len(batch.items)):
        return DUPLICATE
    by_type = _apply_items(session, agent=agent, batch=batch, rows=rows)
    _mark_seen(session, agent=agent, at=utcnow())
    return IngestResult(len(batch.items), False, by_type)


def _mark_seen(session: Session, *, agent: Agent, at: datetime) -> None:
    # The first batch of a (local) day always counts, however soon after the last one: activity days
    # feed the score.
    new_day = agent.last_seen_at is None or activity.local_day(agent.last_seen_at) != activity.local_day(at)
    if not new_day and at - agent.last_seen_at < SEEN_RESOLUTION:
        return
    if new_day:
        activity.record(session, host_id=agent.host_id, unit_id=agent.unit_id, day=activity.local_day(at))
    conn = session.connection()
    conn.execute(update(Agent.__table__).where(Agent.id == agent.id).values(last_seen_at=at))
    conn.execute(update(Host.__table__).where(Host.id == agent.host_id).values(last_seen=at))


def _apply_items(session: Session, *, agent: Agent, batch: BatchIn, rows: list[dict[str, Any]]) -> dict[str, int]:
    received = utcnow()
    by_type: dict[str, int] = {}
    host: Host | None = None

    def event(type_: str, ts: datetime, data: dict[str, Any], origin: str = "agent") -> None:
        rows.append({"unit_id": agent.unit_id, "host_id": agent.host_id, "type": type_, "ts": ts,
                     "received_at": received, "origin": origin, "data": data})

    for item in batch.items:
        by_type[item.type] = by_type.get(item.type, 0) + 1
        if item.type == "host.heartbeat":
            host = host or session.get(Host, agent.host_id)
            live_agent = session.get(Agent, agent.id)
            beat = item.data.model_dump(mode="json")
            # Drops the agent admits to become events, so rules can alert on lost data.
            for loss in agents.loss_events(live_agent.last_heartbeat, beat):
                event("agent.loss", item.ts, loss, origin="collector")
            agents.record_heartbeat(session, agent=live_agent, host=host, data=beat)
        elif item.type == "patch.status":
            data = _with_eol(session, host_id=agent.host_id, data=item.data.model_dump(mode="json"),
                             on=_not_after(item.ts, received).date())
            event(item.type, item.ts, data)
            host = host or session.get(Host, agent.host_id)
            producers.from_patch_status(session, host=host, data=data, now=received)
        elif item.type == "facts.snapshot":
            data = item.data.model_dump(mode="json")
            event(item.type, item.ts, data)
            host = host or session.get(Host, agent.host_id)
            compliance.judge(session, host=host, kinds=data["kinds"], at=_not_after(item.ts, received))
            session.flush()
            producers.from_check_results(session, host=host, now=received)
        elif item.type == "inventory.snapshot":
            host = host or session.get(Host, agent.host_id)
            before = dict(host.inventory_hashes or {})
            for type_, data in _apply_inventory(session, host=host, snapshot=item.data,
                                                at=_not_after(item.ts, received)):
                event(type_, item.ts, data, origin="collector")
            changed = {k for k, v in (host.inventory_hashes or {}).items() if before.get(k) != v}
            producers.after_inventory(session, host=host, changed=changed, now=received)
        else:
            event(item.type, item.ts, item.data.model_dump(mode="json"))
    if host is not None:
        session.flush()
    return by_type


def _with_eol(session: Session, *, host_id: int, data: dict[str, Any], on: date) -> dict[str, Any]:
    """Patch status plus the OS end-of-life status, judged here from the rules' dated table.

    The agent cannot import rules (DESIGN.md §3), and the table changes without agent upgrades.
    """
    os_row = hosts.current_os(session, host_id=host_id)
    if os_row is None:
        return data | {"os_eol": None}
    status = eol_for_os(os_row, on)
    return data | {"os_eol": {"product": status.product, "version": status.version, "status": status.status,
                              "eol_date": status.eol_date.isoformat() if status.eol_date else None,
                              "days_left": status.days_left}}


def _apply_inventory(session: Session, *, host: Host, snapshot: InventorySnapshot, at: datetime):
    sections: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for name in type(snapshot.sections).model_fields:
        section = getattr(snapshot.sections, name)
        if section is not None:
            sections[name] = (section.hash, [r.model_dump(mode="json") for r in section.rows])
    if "identity" in sections and sections["identity"][1]:
        hosts.check_identity(host, sections["identity"][1][0])
    return hosts.update_from_inventory(session, host=host, sections=sections, at=at)
