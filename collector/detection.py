"""The pipeline's detection stage: stored events → ``rules.detect`` engine → alerts.

One worker thread reads the events table in ``(tx, id)`` order from a cursor (``pipeline_cursors``
row ``detect``) and commits the alerts it raised together with the new cursor, so after a crash or a
restart no event is evaluated twice and none is skipped. It reads only rows no running transaction
can still add to or before (``events.service.newest_final``: on PostgreSQL, below the oldest running
transaction; on SQLite, with one writer at a time, everything), so concurrent ingest never makes it
pass a row that commits later, and inserts need not wait for each other.

Correlation state (threshold windows, sequences) lives in the engine's memory; at start, and after
a failed write, it is rebuilt by replaying without alerting the events of the last
``max_window_s`` before the cursor. The same loop reports agents gone silent as ``agent.stale``
events, which the rules turn into alerts like any other event.

Of several server processes only the elected leader runs this worker (collector/leader.py); it
starts again (state rebuilt from the cursor another leader may have moved) each time this process
is elected. Should two workers ever overlap around a change of leader, the cursor is compare-and-set:
a batch commits only if the cursor is still where the batch began, so no event raises alerts twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, text, tuple_, update
from sqlmodel import Session, select

from collector.agents import service as agents
from collector.alerts import service as alerts
from collector.alerts.models import PipelineCursor
from collector.db import Database
from collector.events import service as events
from collector.events.models import Event
from collector.leader import STALE_CHECK_LOCK, serialise
from collector.types import utcnow
from collector.units import service as units
from rules.detect import Engine, EngineEvent, RuleSet

log = logging.getLogger(__name__)

CURSOR = "detect"
STALE_CHECK_S = 60.0
# A step costs about six queries and a commit whatever it reads: woken by every ingest commit, the
# worker would spend as much on the database as ingest itself. Steps that found little are at least
# this far apart (an alert comes at most this much later); a full batch goes on at once.
MIN_STEP_GAP_S = 0.25
REBUILD_CHUNK = 5000  # events read at a time when state is rebuilt
CONTEXT_REFRESH_S = 30.0  # unit settings the rules read (@ctx...) are re-read this often


class CursorMoved(Exception):
    """Another worker committed past the position this batch began at: its alerts are not ours to write."""


@dataclass
class DetectionStats:
    events: int = 0
    detections: int = 0
    alerts_new: int = 0
    alerts_folded: int = 0
    errors: int = 0
    rebuilds: int = 0
    fenced: int = 0  # batches dropped because another worker (an overlapping leader) moved the cursor first
    cursor: int = 0  # id of the last event evaluated
    lag_s: float = 0.0  # age of the newest event evaluated when it was evaluated
    by_rule: dict[str, int] = field(default_factory=dict)


class DetectionWorker:
    """Call ``start()`` with the app and ``stop()`` at shutdown; tests call ``run_once()`` directly."""

    def __init__(self, db: Database, ruleset: RuleSet, *, batch: int = 1000, poll_s: float = 1.0,
                 min_gap_s: float = MIN_STEP_GAP_S, stale_after_s: int = 900, heartbeat_s: int = 60,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.ruleset = db, ruleset
        self.batch, self.poll_s, self.min_gap_s = batch, poll_s, min_gap_s
        self.stale_after_s, self.heartbeat_s = stale_after_s, heartbeat_s
        self.clock = clock
        self.types = sorted({t for rule in ruleset.rules.values() for t in rule.event_types})
        self.stats = DetectionStats()
        self.engine: Engine | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_stale_check = 0.0
        self._context: dict[int, dict[str, object]] = {}
        self._context_at = float("-inf")

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start (or start again after ``stop()``): the state is rebuilt from the cursor as it is now."""
        if self._thread is not None and self._thread.is_alive():
            # A loop that did not end on stop() (stuck in the database) must not run beside a new one.
            raise RuntimeError("the previous detection loop has not ended yet")
        self.engine = None
        self._next_stale_check = 0.0
        self._stop = threading.Event()  # each loop watches its own flag
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), name="khien-detect", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            if self._thread.is_alive():
                log.warning("detection: the loop did not end within 30 s; it stops after its current step")

    def wake(self) -> None:
        """New events were committed: evaluate now rather than at the next poll."""
        self._wake.set()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            began = time.monotonic()
            try:
                if time.monotonic() >= self._next_stale_check:
                    self._next_stale_check = time.monotonic() + STALE_CHECK_S
                    self.report_stale_agents()
                busy = self.run_once() >= self.batch
            except CursorMoved as exc:
                log.warning("detection: %s; rebuilding state from the stored cursor", exc)
                self.stats.fenced += 1
                busy = False
            except Exception:  # the pipeline loop's one boundary: log, count, rebuild, continue
                log.exception("detection: evaluation failed; rebuilding state and retrying")
                self.stats.errors += 1
                self.engine = None
                busy = False
                stop.wait(self.poll_s)
            if not busy:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                stop.wait(self.min_gap_s - (time.monotonic() - began))

    # --- one step ----------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Evaluate up to ``batch`` new events; returns how many were read."""
        with self.db.session() as session:
            cursor = get_position(session)
            if self.engine is None:
                self._rebuild(session, cursor)
            newest = events.newest_final(session)
            if newest is None or newest <= cursor:
                return 0
            context = self._unit_context(session)
            rows = events.read_final(session, after=cursor, upto=newest, types=self.types, limit=self.batch,
                                     columns=(Event.unit_id, Event.host_id, Event.type, Event.ts, Event.data))
        until = (rows[-1][0], rows[-1][1]) if len(rows) == self.batch else newest
        found: list[alerts.NewDetection] = []
        for _tx, event_id, unit_id, host_id, type_, ts, data in rows:
            for hit in self.engine.process(EngineEvent(type=type_, ts=ts, host=str(host_id), data=data,
                                                       id=event_id, ctx=context.get(unit_id))):
                found.append(self._resolve(hit, unit_id=unit_id, host_id=host_id))
        try:
            with self.db.transaction() as session:
                _advance_cursor(session, expected=cursor, to=until)
                for detection, (_alert, new) in zip(found, alerts.record_many(session, detections=found),
                                                    strict=True):
                    self._count(detection, new=new)
        except Exception:
            self.engine = None  # its state ran ahead of what was stored: rebuild from the cursor
            raise
        self.stats.events += len(rows)
        self.stats.cursor = until[1]
        if rows:
            self.stats.lag_s = max(0.0, (self.clock() - rows[-1][5]).total_seconds())
        return len(rows)

    def _unit_context(self, session: Session) -> dict[int, dict[str, object]]:
        """What rules see as ``@ctx`` per unit: for now the effective listening-port allowlist."""
        if time.monotonic() - self._context_at >= CONTEXT_REFRESH_S:
            self._context = {unit_id: {"allowed_ports": ports}
                             for unit_id, ports in units.effective_allowed_ports(session).items()}
            self._context_at = time.monotonic()
        return self._context

    def _resolve(self, hit, *, unit_id: int, host_id: int) -> alerts.NewDetection:
        rule = self.ruleset.rules[hit.rule_id]
        return alerts.NewDetection(
            unit_id=unit_id, host_id=host_id, rule_id=hit.rule_id, severity=hit.severity, key=hit.key,
            group={name: value for name, value in hit.group}, first_ts=hit.first_ts, last_ts=hit.last_ts,
            event_count=hit.count, event_ids=tuple(hit.event_ids), suppress_s=rule.suppress_s)

    def _count(self, detection: alerts.NewDetection, *, new: bool) -> None:
        self.stats.detections += 1
        self.stats.by_rule[detection.rule_id] = self.stats.by_rule.get(detection.rule_id, 0) + 1
        if new:
            self.stats.alerts_new += 1
        else:
            self.stats.alerts_folded += 1

    def _rebuild(self, session: Session, cursor: events.Position) -> None:
        """A fresh engine warmed with the events of the last window before the cursor (no alerts)."""
        self.engine = Engine(self.ruleset)
        self.stats.rebuilds += 1
        if cursor == events.START:
            return
        order = tuple_(Event.tx, Event.id)
        last_ts = session.exec(select(Event.ts).where(order <= tuple_(*cursor))
                               .order_by(Event.tx.desc(), Event.id.desc()).limit(1)).first()
        if last_ts is None:
            return
        since = last_ts - timedelta(seconds=self.ruleset.max_window_s)
        # Streamed: under load the window holds hundreds of thousands of events, and reading them all at
        # once cost a new leader a gigabyte and held up its ingest (bench/load.py, 10,000 agents).
        rows = session.execute(select(Event.id, Event.host_id, Event.type, Event.ts, Event.data)
                               .where(order <= tuple_(*cursor), Event.ts >= since, Event.type.in_(self.types))
                               .order_by(Event.tx, Event.id).execution_options(yield_per=REBUILD_CHUNK))
        warmed = 0
        for event_id, host_id, type_, ts, data in rows:
            self.engine.warm(EngineEvent(type=type_, ts=ts, host=str(host_id), data=data, id=event_id))
            warmed += 1
        log.info("detection: state rebuilt from %d events since %s", warmed, since.isoformat())

    # --- silent agents -----------------------------------------------------------------------------

    def report_stale_agents(self) -> int:
        """One ``agent.stale`` event per agent that fell silent (again); returns how many."""
        now = self.clock()
        with self.db.transaction() as session:
            # Two overlapping leaders take turns here, so the second sees the first's marks.
            serialise(session, STALE_CHECK_LOCK)
            silent = agents.list_newly_stale(session, now=now, stale_after_s=self.stale_after_s)
            rows = [{"unit_id": a.unit_id, "host_id": a.host_id, "type": "agent.stale", "ts": now, "received_at": now,
                     "origin": "collector", "data": {
                         "agent_id": a.id, "last_seen": a.last_seen_at.isoformat(),
                         "silent_s": int((now - a.last_seen_at).total_seconds()),
                         "expected_interval_s": self.heartbeat_s}} for a in silent]
            events.add_many(session, rows=rows)
            agents.mark_stale_reported(session, agents=silent, at=now)
        if rows:
            self.wake()
        return len(rows)


def get_position(session: Session) -> events.Position:
    row = session.get(PipelineCursor, CURSOR)
    return (row.position_tx, row.position) if row is not None else events.START


def _advance_cursor(session: Session, *, expected: events.Position, to: events.Position) -> None:
    """Move the cursor ``expected`` → ``to`` first thing in the batch's transaction; CursorMoved if it
    no longer stands at ``expected``.

    A compare-and-set in one statement: on PostgreSQL a second worker's update waits for the first
    one's commit, then finds the position changed; on SQLite the update takes the database's write lock.
    """
    moved = session.connection().execute(
        update(PipelineCursor.__table__)
        .where(PipelineCursor.name == CURSOR, PipelineCursor.position_tx == expected[0],
               PipelineCursor.position == expected[1])
        .values(position_tx=to[0], position=to[1], updated_at=utcnow()))
    if moved.rowcount == 1:
        return
    if expected == events.START and session.get(PipelineCursor, CURSOR) is None:
        session.add(PipelineCursor(name=CURSOR, position_tx=to[0], position=to[1]))
        session.flush()  # a worker inserting the first row at the same time fails on the primary key
        return
    raise CursorMoved(f"the cursor moved on from {expected} under this worker")


def rebase_commit_order(session: Session) -> int:
    """After a PostgreSQL restore: make the restored events sort before every event this server will
    insert, keeping the detection cursor exact; returns how many rows were renumbered.

    ``events.tx`` holds transaction ids of the server the backup came from. A fresh server's ids may
    be far lower, so new events would sort before the restored cursor and never be read. When that is
    the case, the rows the cursor has passed become ``tx`` 0, the rest 1 (still ahead of the cursor,
    read next), and the cursor ``(0, the newest id it passed)``; every later transaction id is above 1.
    """
    if session.connection().dialect.name != "postgresql":
        return 0  # SQLite: tx is always 0
    now = session.connection().execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one()
    newest = session.exec(select(func.max(Event.tx))).one()
    if newest is None or newest < now:
        return 0  # restored into a server already past every restored id: the order holds as it is
    position = get_position(session)
    passed = tuple_(Event.tx, Event.id) <= tuple_(*position)
    rank = case((passed, 0), else_=1)
    renumbered = session.connection().execute(update(Event.__table__).where(Event.tx != rank).values(tx=rank)).rowcount
    last_passed = session.exec(select(func.max(Event.id)).where(Event.tx == 0)).one() or 0
    session.connection().execute(update(PipelineCursor.__table__).where(PipelineCursor.name == CURSOR)
                                 .values(position_tx=0, position=last_passed if position != events.START else 0))
    return renumbered
