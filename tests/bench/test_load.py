"""bench/load.py can be trusted: what it counts as acknowledged is what the database holds, exactly once.

The generator runs as a command (``python -m bench.load``) against real ``khien server`` processes; the
database is then counted here, independently of the tool's own check.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agent.wire import Batch, section_hash
from bench.load_enroll import state_path
from bench.load_items import EventPool, Inventory, heartbeat, identity
from collector.db import Database
from collector.events.models import Event
from collector.ingest.models import IngestBatch
from collector.ingest.schema import parse_batch
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
EVENT_TYPES = ("auth.failure", "auth.success", "auth.sudo", "auth.su", "file.change")


def test_generated_items_pass_the_collectors_validators() -> None:
    """Every kind of item the simulated agents send is valid wire format (a 422 would be counted, not hidden)."""
    rng = random.Random(3)
    pool, inventory = EventPool.build(per_kind=50), Inventory(packages=50)
    extras: set[int] = set()
    delta, derived = inventory.delta(extras, rng)
    items = [{"type": t, "ts": "2026-01-02T03:04:05.000+00:00", "data": d} for kind in pool.by_kind.values()
             for t, d in kind]
    items += [{"type": "host.heartbeat", "ts": "2026-01-02T03:04:05.000+00:00",
               "data": heartbeat(uptime_s=120, spool_items=3, items_sent=40, rng=rng)},
              {"type": "inventory.snapshot", "ts": "2026-01-02T03:04:05.000+00:00", "data": delta},
              {"type": "inventory.snapshot", "ts": "2026-01-02T03:04:05.000+00:00",
               "data": inventory.full_snapshot(identity(7, "t"), extras)}]
    batch = parse_batch(json.dumps(Batch(items).to_dict()).encode())
    assert len(batch.items) == len(items)
    assert {i.type for i in batch.items} >= {*EVENT_TYPES, "host.heartbeat", "inventory.snapshot"}
    assert derived == "package.installed" and len(extras) == 1
    # the delta's hash is the agent's own section hash, so the server sees a real change of that section
    section = delta["sections"]["packages"]
    assert section["hash"] == section_hash(section["rows"])
    campaign = "203.0.113.250"
    picked = [pool.pick(rng, campaign) for _ in range(400)]
    assert any(d.get("source_ip") == campaign and campaign in d["raw"] for t, d in picked if t == "auth.failure")


def _stored(db_url: str) -> tuple[dict[tuple[str, str], int], int]:
    db = Database(db_url)
    try:
        with db.session() as session:
            events = {(t, o): n for t, o, n in session.execute(
                select(Event.type, Event.origin, func.count()).group_by(Event.type, Event.origin))}
            batches = session.scalar(select(func.count()).select_from(IngestBatch))
    finally:
        db.dispose()
    return events, batches


@pytest.mark.integration
def test_every_acknowledged_item_is_stored_exactly_once(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    port = free_port()
    command = [sys.executable, "-m", "bench.load", "--agents", "50", "--duration", "10", "--servers", "2",
               "--client-procs", "2", "--database-url", db_url, "--reuse", "--port", str(port),
               "--inventory-every-s", "20", "--drain-s", "30", "--settle-s", "30", "--output", str(out)]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    finally:
        state_path(db_url).unlink(missing_ok=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = json.loads(out.read_text())["runs"][0]
    assert run["check"]["ok"], run["check"]
    assert run["run"]["errors"] == 0, run["run"]
    assert run["run"]["undelivered"] == 0
    accepted = run["run"]["accepted_by_type"]
    assert set(EVENT_TYPES) <= set(accepted) and accepted["host.heartbeat"] > 0

    # independently of the tool: every acknowledged auth/FIM item is one event row from the agents ...
    events, batches = _stored(db_url)
    for type_ in EVENT_TYPES:
        assert events.get((type_, "agent"), 0) == accepted[type_], type_
    # ... each acknowledged package change one derived event, and every acknowledged batch one row
    derived = run["run"]["derived_expected"]
    assert sum(derived.values()) == accepted.get("inventory.snapshot", 0) > 0
    for type_, n in derived.items():
        assert events.get((type_, "collector"), 0) == n, type_
    first_inventories = run["prepare"]["first_inventories"]
    assert batches == run["run"]["batches"] + first_inventories
    # both servers took a share of the agents
    assert all(m.get("khien_ingest_batches_total", 0) > 0 for m in run["server_metrics"].values())
